/**
 * The state behind `useTaskStream`, as a pure reducer so it is tested without a DOM.
 *
 * Transitions, per watched task (`key` = 'app/type/id'):
 *   start(key)        new key (or after `error`) → fresh state (`connecting`, `idle` for null); same key → kept (resume)
 *   event(key, e)     appended unless stale (another key) or already seen (seq ≤ last seq);
 *                     status: terminal event → its status; `interrupted` → `pending`; else `running`
 *                     a gap (retention pruned events before this reader's position) → `gap`, not an event
 *   failed(key, err)  the stream gave up (404, 401, too many failed reconnects) → `error`
 * Every event for another key is dropped, so a late event of an aborted stream never leaks in.
 */
import {
  outcomeOfEvent, parseRef, type StreamEvent, type StreamItem, type TaskstreamClientError,
} from '../client/index.js';

export type TaskStreamStatus =
  | 'idle' | 'connecting' | 'pending' | 'running' | 'completed' | 'failed' | 'cancelled' | 'timed_out' | 'error';

export interface TaskStreamState {
  /** The task these events belong to, `'app/type/id'`; null when no task is watched. */
  readonly key: string | null;
  readonly status: TaskStreamStatus;
  /** The events seen, oldest first (the last `maxEvents` of them). */
  readonly events: readonly StreamEvent[];
  readonly last: StreamEvent | null;
  /** 0..1 from the last progress-like event (`step/total_steps`, `step/total` or `percentage`); null before one. */
  readonly progress: number | null;
  /**
   * Why the task did not complete: `TaskFailedError`, `TaskCancelledError`, `TaskTimedOutError`
   * (as `result()` would reject), or the `TaskstreamClientError` that stopped the stream.
   */
  readonly error: Error | null;
  /** Events the server's retention pruned before this reader saw them (inclusive seqs); null when none. */
  readonly gap: { readonly fromSeq: number; readonly toSeq: number } | null;
}

export type TaskStreamAction =
  | { readonly type: 'start'; readonly key: string | null }
  | { readonly type: 'event'; readonly key: string; readonly event: StreamItem; readonly maxEvents?: number }
  | { readonly type: 'failed'; readonly key: string; readonly error: unknown };

export const DEFAULT_MAX_EVENTS = 1000;

const TERMINAL_STATUS: Readonly<Record<string, TaskStreamStatus>> = {
  complete: 'completed', error: 'failed', cancelled: 'cancelled', timeout: 'timed_out',
};

export function initialTaskStreamState(key: string | null): TaskStreamState {
  return { key, status: key === null ? 'idle' : 'connecting', events: [], last: null, progress: null, error: null, gap: null };
}

export function isFinalStatus(status: TaskStreamStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled' || status === 'timed_out' || status === 'error';
}

export function taskStreamReducer(state: TaskStreamState, action: TaskStreamAction): TaskStreamState {
  switch (action.type) {
    case 'start':
      // Same task: keep what was seen and resume after it; after a stream error, start over.
      return action.key === state.key && state.status !== 'error' ? state : initialTaskStreamState(action.key);
    case 'event': {
      const { event } = action;
      if (action.key !== state.key || isFinalStatus(state.status)) return state;
      if (state.last !== null && event.seq <= state.last.seq) return state;
      if (event.kind === 'gap') {
        return { ...state, status: state.status === 'connecting' ? 'running' : state.status, gap: { fromSeq: event.fromSeq, toSeq: event.toSeq } };
      }
      const max = Math.max(1, action.maxEvents ?? DEFAULT_MAX_EVENTS);
      const events = state.events.length >= max ? [...state.events.slice(state.events.length - max + 1), event] : [...state.events, event];
      const terminal = TERMINAL_STATUS[event.type];
      return {
        key: state.key,
        status: terminal ?? (event.type === 'interrupted' ? 'pending' : 'running'),
        events,
        last: event,
        progress: progressOf(event.data) ?? state.progress,
        error: terminal === undefined || terminal === 'completed' ? null : outcomeError(action.key, event),
        gap: state.gap,
      };
    }
    case 'failed':
      if (action.key !== state.key || isFinalStatus(state.status)) return state;
      return { ...state, status: 'error', error: toError(action.error) };
  }
}

/**
 * A 0..1 fraction from an event's data: `step`/`total_steps`, `step`/`total`, or `percentage`
 * (0..100). Null when the data has none of them (or a total of 0).
 */
export function progressOf(data: Readonly<Record<string, unknown>>): number | null {
  const { step, total_steps: totalSteps, total, percentage } = data;
  let fraction: number | undefined;
  if (isNumber(step) && isNumber(totalSteps) && totalSteps > 0) fraction = step / totalSteps;
  else if (isNumber(step) && isNumber(total) && total > 0) fraction = step / total;
  else if (isNumber(percentage)) fraction = percentage / 100;
  return fraction === undefined ? null : Math.min(1, Math.max(0, fraction));
}

function outcomeError(key: string, event: StreamEvent): Error | null {
  try {
    outcomeOfEvent(parseRef(key), event);
    return null;
  } catch (err) {
    return toError(err);
  }
}

function toError(err: unknown): Error | TaskstreamClientError {
  return err instanceof Error ? err : new Error(String(err));
}

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}
