/**
 * The Backend over `taskstream/client`. The client reconnects streams by itself and says nothing
 * about it, so each stream gets a client whose `fetch` reports its connections opening and
 * closing: that is how the page can show "reconnecting" while the client resumes with
 * `Last-Event-ID`.
 */
import { createClient, TaskstreamClientError } from '../../client/index.js';
import type { Backend, TaskType } from './api.js';
import { ApiError } from './api.js';
import { authHeaders } from './key.js';
import type { LinkState, StreamEvent } from './model.js';
import { TERMINAL_EVENTS } from './model.js';

export function clientBackend(baseUrl: string): Backend {
  const base = baseUrl.replace(/\/+$/, '');
  // The API key (when the server has Access on) is read per request: entering one takes effect at once.
  const client = createClient({ baseUrl: base, headers: authHeaders });
  const wrap = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      throw toApiError(err);
    }
  };
  return {
    async types() {
      const response = await fetch(`${base}/tasks/types`, { headers: { accept: 'application/json', ...authHeaders() } });
      if (response.status === 404) return undefined;
      if (!response.ok) throw new ApiError(`task types: HTTP ${response.status}`, response.status, `http_${response.status}`);
      return ((await response.json()) as { types: TaskType[] }).types;
    },
    list: (limit) => wrap(async () => (await client.list({ limit })).tasks),
    get: (ref) => wrap(() => client.get(ref)),
    create: (kind, input) => wrap(() => client.create(`${kind.app}/${kind.type}`, input)),
    cancel: (ref, reason) => wrap(() => client.cancel(ref, reason)),
    async *stream(ref, options) {
      let terminal = false;
      const report = (state: LinkState): void => {
        if (!terminal && !options.signal.aborted) options.onState(state);
      };
      const streaming = createClient({ baseUrl: base, headers: authHeaders, fetch: observedFetch(report) });
      report('connecting');
      try {
        for await (const event of streaming.stream(ref, { lastEventId: options.afterSeq, signal: options.signal })) {
          const at = Date.parse(event.timestamp) || Date.now();
          const out: StreamEvent = event.kind === 'gap'
            ? { seq: event.seq, type: 'gap', data: event.data, at, gap: { fromSeq: event.fromSeq, toSeq: event.toSeq } }
            : { seq: event.seq, type: event.type, data: event.data, at };
          // The client closes the connection after the terminal event: that close is not a drop.
          if (TERMINAL_EVENTS[event.type] !== undefined) terminal = true;
          yield out;
        }
      } catch (err) {
        throw toApiError(err);
      } finally {
        terminal = true;
      }
    },
  };
}

/**
 * `fetch` that reports stream connections: 'live' when one opens, 'reconnecting' when one fails
 * to open or its body ends or breaks (the client then resumes after the last event it yielded).
 */
function observedFetch(report: (state: LinkState) => void): typeof fetch {
  return async (input, init) => {
    const isStream = String(input).includes('/stream/');
    let response: Response;
    try {
      response = await fetch(input, init);
    } catch (err) {
      if (isStream) report('reconnecting');
      throw err;
    }
    if (!isStream || !response.ok || response.body === null || !(response.headers.get('content-type') ?? '').includes('text/event-stream')) {
      if (isStream && response.status >= 500) report('reconnecting');
      return response;
    }
    report('live');
    const reader = response.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            report('reconnecting');
            controller.close();
          } else {
            controller.enqueue(value);
          }
        } catch (err) {
          report('reconnecting');
          controller.error(err);
        }
      },
      cancel: (reason) => reader.cancel(reason),
    });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

function toApiError(err: unknown): unknown {
  if (!(err instanceof TaskstreamClientError) || err.status === undefined) return err;
  const body = err.body !== null && typeof err.body === 'object' ? (err.body as Record<string, unknown>) : {};
  const message = typeof body.message === 'string' ? body.message : err.message;
  return new ApiError(message, err.status, err.code, problemsOf(body.issues));
}

function problemsOf(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.map((problem: unknown) => {
    if (problem === null || typeof problem !== 'object') return String(problem);
    const p = problem as { path?: unknown; message?: unknown };
    // The server sends the path as a dotted string; other producers as an array of keys.
    const path = Array.isArray(p.path) && p.path.length > 0 ? `${p.path.map(String).join('.')}: ` : typeof p.path === 'string' && p.path !== '' ? `${p.path}: ` : '';
    return `${path}${typeof p.message === 'string' ? p.message : JSON.stringify(p)}`;
  });
}
