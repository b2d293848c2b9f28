/**
 * What the dashboard knows about tasks, independent of how it is fetched: the protocol's task
 * JSON, stream events, and how a progress fraction and a status are read from events.
 */

export type { TaskJson } from '../../client/index.js';

export interface TaskRef {
  readonly app: string;
  readonly type: string;
  readonly id: number;
}

/** One event of a task's log, as the stream delivers it (`data` without the `_`-prefixed envelope keys). */
export interface StreamEvent {
  readonly seq: number;
  readonly type: string;
  readonly data: Record<string, unknown>;
  /** Milliseconds since the epoch (the event's `_timestamp`). */
  readonly at: number;
  /** Set on the stand-in for events the server's retention pruned (`type` 'gap', seqs from..to). */
  readonly gap?: { readonly fromSeq: number; readonly toSeq: number };
}

/**
 * What a cancel reason means, in words: the protocol's `external_cancellation` (cancelled through
 * the API without a reason) and `shutdown` are names, not sentences; a given reason is shown as given.
 */
export function describeCancelReason(reason: unknown): string {
  if (reason === undefined || reason === null || reason === '' || reason === 'external_cancellation') return 'cancelled on request, no reason given';
  if (reason === 'shutdown') return 'the server shut down';
  return `reason: “${String(reason)}”`;
}

/** The state of one live stream: the page shows it, so a dropped connection is visible. */
export type LinkState = 'connecting' | 'live' | 'reconnecting' | 'ended' | 'failed';

export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled', 'timed_out']);

/** Terminal event name → the status it ends the task in (docs/http-api.md, "Terminal events"). */
export const TERMINAL_EVENTS: Readonly<Record<string, string>> = {
  complete: 'completed',
  error: 'failed',
  cancelled: 'cancelled',
  timeout: 'timed_out',
};

export function isTerminal(status: string): boolean {
  return TERMINAL_STATUSES.has(status);
}

export function keyOf(ref: TaskRef): string {
  return `${ref.app}/${ref.type}/${ref.id}`;
}

/**
 * The fraction done that an event reports, if it reports one. Understands the shapes of the
 * example tasks and the common conventions: `percentage` (0..100), `step` of `total_steps` or
 * `total`, `current` of `total`, and `progress` as a 0..1 fraction.
 */
export function progressOf(data: Record<string, unknown>): number | undefined {
  const num = (key: string): number | undefined => {
    const value = data[key];
    return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
  };
  const percentage = num('percentage');
  if (percentage !== undefined) return clamp(percentage / 100);
  const total = num('total_steps') ?? num('total');
  const done = num('step') ?? num('current');
  if (total !== undefined && total > 0 && done !== undefined) return clamp(done / total);
  const progress = num('progress');
  if (progress !== undefined && progress <= 1) return clamp(progress);
  return undefined;
}

/** The status a task has after `event`, given the status before it. */
export function statusAfter(status: string, event: Pick<StreamEvent, 'type'>): string {
  const terminal = TERMINAL_EVENTS[event.type];
  if (terminal !== undefined) return terminal;
  if (isTerminal(status)) return status;
  if (event.type === 'interrupted' || event.type === 'retry') return 'pending';
  return 'running';
}

function clamp(fraction: number): number {
  return Math.min(1, Math.max(0, fraction));
}
