/**
 * `taskstream/react`: `useTaskStream(ref, { client } | { baseUrl })` watches one task's events.
 *
 * One connection per mounted ref: opened in an effect, closed (AbortController) on unmount or
 * when the ref changes; none at all while `ref` is null. The client's stream already resumes
 * dropped connections with `Last-Event-ID` and ends after the terminal event, so the hook has no
 * reconnect loop of its own; a remount for the same task (React StrictMode) resumes after the
 * last event it holds, and after a terminal event it does not connect again.
 * Imports only `react` and the isomorphic client: it bundles for the browser as is.
 *
 * @module taskstream/react
 */
import { useCallback, useEffect, useMemo, useReducer, useRef } from 'react';
import {
  type CancelResult, type ClientTaskDefinition, createClient, type HeadersSource, parseRef, type StreamEvent,
  type TaskRefInput, type TaskstreamClient,
} from '../client/index.js';
import {
  initialTaskStreamState, isFinalStatus, type TaskStreamState, taskStreamReducer, type TaskStreamStatus,
} from './state.js';

export { initialTaskStreamState, isFinalStatus, progressOf, taskStreamReducer, DEFAULT_MAX_EVENTS } from './state.js';
export type { TaskStreamAction, TaskStreamState, TaskStreamStatus } from './state.js';

interface CommonOptions {
  /** Keep at most this many events in `events` (the newest). Default 1000. */
  readonly maxEvents?: number;
  /**
   * A stream token for the task (the `stream_token` your backend got from the create). A task JSON
   * passed as `ref` carries its own; an API key goes in `headers` (or the client's) instead.
   */
  readonly token?: string;
}

/**
 * Either a client you made (`createClient`), or where the server is: a client is then made once
 * per `baseUrl` (`headers` and `fetch` are read when it is made; pass a client to change them).
 */
export type UseTaskStreamOptions<Defs extends readonly ClientTaskDefinition[] = readonly ClientTaskDefinition[]> = CommonOptions & (
  | { readonly client: TaskstreamClient<Defs> }
  | { readonly baseUrl: string; readonly headers?: HeadersSource; readonly fetch?: typeof globalThis.fetch }
);

export interface UseTaskStreamResult {
  /** `idle` (no ref), `connecting` (no event yet), the task's status from its events, or `error` (the stream failed). */
  readonly status: TaskStreamStatus;
  readonly events: readonly StreamEvent[];
  readonly last: StreamEvent | null;
  /** 0..1 from the last progress-like event, or null. */
  readonly progress: number | null;
  /** The outcome error of a task that did not complete, or the error that stopped the stream. */
  readonly error: Error | null;
  /** Events the server's retention pruned before they reached this reader (`fromSeq`..`toSeq`), or null. */
  readonly gap: { readonly fromSeq: number; readonly toSeq: number } | null;
  /** Cancels the watched task; its `cancelled` event then arrives through the stream. */
  readonly cancel: (reason?: string) => Promise<CancelResult>;
}

export function useTaskStream<Defs extends readonly ClientTaskDefinition[] = readonly ClientTaskDefinition[]>(
  ref: TaskRefInput | null,
  options: UseTaskStreamOptions<Defs>,
): UseTaskStreamResult {
  const given = 'client' in options ? options.client : undefined;
  const baseUrl = 'baseUrl' in options ? options.baseUrl : undefined;
  const client = useMemo<Pick<TaskstreamClient, 'stream' | 'cancel'>>(() => {
    if (given) return given as unknown as TaskstreamClient;
    if (baseUrl === undefined) throw new TypeError('useTaskStream: pass { client } or { baseUrl }');
    const o = options as { headers?: HeadersSource; fetch?: typeof globalThis.fetch };
    return createClient({ baseUrl, ...(o.headers ? { headers: o.headers } : {}), ...(o.fetch ? { fetch: o.fetch } : {}) });
    // Made once per baseUrl on purpose (see UseTaskStreamOptions): headers/fetch are not deps.
  }, [given, baseUrl]);
  const key = ref === null ? null : keyOf(ref);
  const refToken = ref !== null && typeof ref === 'object' ? ref.stream_token : undefined;
  const token = options.token ?? refToken;
  const [state, dispatch] = useReducer(taskStreamReducer, key, initialTaskStreamState);
  // Read by the stream effect without reconnecting when they change.
  const latest = useRef<TaskStreamState>(state);
  const maxEvents = useRef(options.maxEvents);
  useEffect(() => {
    latest.current = state;
    maxEvents.current = options.maxEvents;
  });

  useEffect(() => {
    dispatch({ type: 'start', key });
    if (key === null) return;
    const held = latest.current.key === key && latest.current.status !== 'error' ? latest.current : undefined;
    if (held !== undefined && isFinalStatus(held.status)) return;
    const controller = new AbortController();
    const lastEventId = held?.last?.seq;
    const run = async (): Promise<void> => {
      try {
        const events = client.stream(withToken(key, token), { signal: controller.signal, ...(lastEventId === undefined ? {} : { lastEventId }) });
        for await (const event of events) {
          if (controller.signal.aborted) return;
          dispatch({ type: 'event', key, event, ...(maxEvents.current === undefined ? {} : { maxEvents: maxEvents.current }) });
        }
      } catch (error) {
        if (!controller.signal.aborted) dispatch({ type: 'failed', key, error });
      }
    };
    void run();
    return () => controller.abort();
  }, [client, key, token]);

  const cancel = useCallback(async (reason?: string): Promise<CancelResult> => {
    if (key === null) throw new TypeError('useTaskStream: no task to cancel (ref is null)');
    return client.cancel(withToken(key, token), reason);
  }, [client, key, token]);

  // Until the effect has started the new ref's stream, show its fresh state, never the old ref's.
  const view = state.key === key ? state : initialTaskStreamState(key);
  return { status: view.status, events: view.events, last: view.last, progress: view.progress, error: view.error, gap: view.gap, cancel };
}

function withToken(key: string, token: string | undefined): TaskRefInput {
  return token === undefined ? key : { ...parseRef(key), stream_token: token };
}

function keyOf(ref: TaskRefInput): string {
  const { app, type, id } = parseRef(ref);
  return `${app}/${type}/${id}`;
}
