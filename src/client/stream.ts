/**
 * A task's SSE stream as an async iterable that survives dropped connections.
 *
 * State machine, one loop turn per connection:
 *   connect (with `Last-Event-ID` = last seq yielded)
 *     ├─ 204                      → done (the task ended and nothing is left after our id)
 *     ├─ 400/401/403/404/…        → throw TaskstreamClientError (retrying cannot help)
 *     ├─ network error, 5xx, 429  → back off, reconnect
 *     └─ 200 text/event-stream    → yield each event; after a terminal event → done
 *          ended without a terminal event:
 *            some events came     → reconnect after the server's `retry:` (server restart, slow-client drop)
 *            nothing came         → GET the task: finished with nothing after our id → done; else back off
 * Backoff: `retry:` (or `initialDelayMs`) doubled per consecutive failure, capped, with jitter
 * (50–100 %), at least the server's `Retry-After`; a connection that delivered an event resets it.
 * The seq cursor only moves forward and is updated before each yield, so a reconnect never
 * repeats or skips an event.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { errorFromResponse, TaskstreamClientError, type TaskPointer } from './errors.js';
import { TERMINAL_EVENT_TYPES, type StreamItem, type TaskJson } from './types.js';

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface ReconnectOptions {
  /** First reconnect delay when the server sent no `retry:` field. Default 1000 ms. */
  readonly initialDelayMs?: number;
  /** Cap of the doubling backoff. Default 30 000 ms. */
  readonly maxDelayMs?: number;
  /** Consecutive failed connections (none delivering an event) before giving up. Default: never give up. */
  readonly maxAttempts?: number;
}

export interface StreamOptions {
  /** Resume after this event id (seq): only later events are yielded. */
  readonly lastEventId?: number | string;
  /** Aborting closes the connection at once; the iteration then throws `signal.reason`. */
  readonly signal?: AbortSignal;
  readonly reconnect?: ReconnectOptions;
}

/** What the stream needs from the client: transport and addresses, nothing else. */
export interface StreamTransport {
  readonly fetch: FetchLike;
  readonly headers: () => Promise<Headers>;
  readonly streamUrl: string;
  readonly taskUrl: string;
  readonly task: TaskPointer;
}

/** Non-2xx statuses worth retrying: the server (or a proxy in front of it) may recover. */
const RETRYABLE = new Set([408, 425, 429, 500, 502, 503, 504]);
const WIRE_KEYS = ['_task_id', '_app', '_model', '_timestamp', '_seq'];

type Turn =
  | { readonly kind: 'done' }
  | { readonly kind: 'reconnect'; readonly received: number; readonly cause?: unknown; readonly retryAfterMs?: number }
  | { readonly kind: 'ended_empty' };

export async function* streamTask(transport: StreamTransport, options: StreamOptions = {}): AsyncGenerator<StreamItem, void, undefined> {
  const { signal } = options;
  const cursor = { lastId: parseLastEventId(options.lastEventId), retryMs: undefined as number | undefined };
  const initialDelayMs = options.reconnect?.initialDelayMs ?? 1000;
  const maxDelayMs = options.reconnect?.maxDelayMs ?? 30_000;
  const maxAttempts = options.reconnect?.maxAttempts ?? Infinity;
  let failures = 0;
  for (;;) {
    signal?.throwIfAborted();
    const turn: Turn = yield* connectOnce(transport, cursor, signal);
    if (turn.kind === 'done') return;
    let cause: unknown;
    let retryAfterMs = 0;
    if (turn.kind === 'ended_empty') {
      const finished = await finishedAfter(transport, cursor.lastId, signal);
      if (finished === true) return;
      if (finished !== false) cause = finished.cause;
    } else {
      if (turn.received > 0) failures = 0;
      cause = turn.cause;
      retryAfterMs = turn.retryAfterMs ?? 0;
    }
    failures++;
    if (failures > maxAttempts) {
      throw new TaskstreamClientError('stream_failed', `stream of ${label(transport.task)}: gave up after ${maxAttempts} failed reconnects`, { cause });
    }
    const base = Math.min(maxDelayMs, (cursor.retryMs ?? initialDelayMs) * 2 ** (failures - 1));
    await sleep(Math.max(retryAfterMs, base * (0.5 + Math.random() * 0.5)), signal);
  }
}

/** One connection: yields its events, and says how it ended. Always closes the connection. */
async function* connectOnce(
  transport: StreamTransport,
  cursor: { lastId: number | undefined; retryMs: number | undefined },
  signal: AbortSignal | undefined,
): AsyncGenerator<StreamItem, Turn, undefined> {
  const connection = new AbortController();
  const onAbort = (): void => connection.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const headers = await transport.headers();
    headers.set('accept', 'text/event-stream, application/json');
    if (cursor.lastId !== undefined) headers.set('last-event-id', String(cursor.lastId));
    let response: Response;
    try {
      response = await transport.fetch(transport.streamUrl, { headers, signal: connection.signal, cache: 'no-store' });
    } catch (cause) {
      if (signal?.aborted) throw signal.reason;
      return { kind: 'reconnect', received: 0, cause };
    }
    if (response.status === 204) return { kind: 'done' };
    if (!response.ok) {
      if (!RETRYABLE.has(response.status)) throw await errorFromResponse(response, `stream of ${label(transport.task)}`);
      await response.body?.cancel().catch(() => {});
      return { kind: 'reconnect', received: 0, cause: new TaskstreamClientError(`http_${response.status}`, `stream: ${response.status}`, { status: response.status }), retryAfterMs: retryAfter(response) };
    }
    const contentType = response.headers.get('content-type') ?? '';
    if (!contentType.includes('text/event-stream') || response.body === null) {
      await response.body?.cancel().catch(() => {});
      throw new TaskstreamClientError('bad_response', `stream of ${label(transport.task)}: expected text/event-stream, got ${contentType || 'no body'}`, { status: response.status });
    }
    return yield* readEvents(response.body, cursor, signal);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    // Closes the response if still open: the consumer stopped, a terminal event arrived, or an error.
    connection.abort();
  }
}

async function* readEvents(
  body: ReadableStream<Uint8Array>,
  cursor: { lastId: number | undefined; retryMs: number | undefined },
  signal: AbortSignal | undefined,
): AsyncGenerator<StreamItem, Turn, undefined> {
  const queue: Array<{ event: StreamItem; sequenced: boolean }> = [];
  let parseError: unknown;
  const parser = createParser({
    onEvent: (message) => {
      try {
        queue.push(toStreamEvent(message, cursor.lastId));
      } catch (err) {
        parseError ??= err;
      }
    },
    onRetry: (ms) => {
      cursor.retryMs = ms;
    },
  });
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let received = 0;
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (cause) {
      if (signal?.aborted) throw signal.reason;
      return { kind: 'reconnect', received, cause };
    }
    // A frame cut off by the end of the body is dropped (not consumed): it is resent after our id.
    if (!chunk.done) parser.feed(decoder.decode(chunk.value, { stream: true }));
    if (parseError !== undefined) throw parseError;
    while (queue.length > 0) {
      const { event, sequenced } = queue.shift()!;
      if (sequenced) {
        // The server never repeats a seq; this keeps "no duplicate" true even behind a proxy that replays.
        if (cursor.lastId !== undefined && event.seq <= cursor.lastId) continue;
        cursor.lastId = event.seq;
      }
      received++;
      yield event;
      if (TERMINAL_EVENT_TYPES.has(event.type)) return { kind: 'done' };
      // Aborted while the consumer held the event: stop now, not after the rest of this chunk.
      if (signal?.aborted) throw signal.reason;
    }
    if (chunk.done) return received > 0 ? { kind: 'reconnect', received } : { kind: 'ended_empty' };
  }
}

function toStreamEvent(message: EventSourceMessage, lastId: number | undefined): { event: StreamItem; sequenced: boolean } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message.data);
  } catch (cause) {
    throw new TaskstreamClientError('bad_response', `stream: event data is not JSON: ${message.data.slice(0, 200)}`, { cause });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new TaskstreamClientError('bad_response', `stream: event data is not a JSON object: ${message.data.slice(0, 200)}`);
  }
  const wire = parsed as Record<string, unknown>;
  const data: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(wire)) if (!WIRE_KEYS.includes(key)) data[key] = value;
  // Every protocol v1 frame has `id:`; a frame without one carries the last id and does not move the cursor.
  const own = toSeq(message.id) ?? toSeq(wire._seq);
  const seq = own ?? lastId ?? 0;
  const timestamp = typeof wire._timestamp === 'string' ? wire._timestamp : new Date().toISOString();
  if (message.event === 'gap') {
    const fromSeq = toSeq(data.from_seq);
    const toSeqValue = toSeq(data.to_seq);
    if (fromSeq === undefined || toSeqValue === undefined || fromSeq > toSeqValue) {
      throw new TaskstreamClientError('bad_response', `stream: a gap frame needs whole from_seq ≤ to_seq: ${message.data.slice(0, 200)}`);
    }
    const gap = { kind: 'gap', id: seq, seq, type: 'gap', fromSeq, toSeq: toSeqValue, data: { from_seq: fromSeq, to_seq: toSeqValue }, timestamp } as const;
    return { event: gap, sequenced: own !== undefined };
  }
  return { event: { kind: 'event', id: seq, seq, type: message.event ?? 'message', data, timestamp }, sequenced: own !== undefined };
}

/** After an empty stream: true when the task ended with nothing after `lastId`; false to reconnect. */
async function finishedAfter(transport: StreamTransport, lastId: number | undefined, signal: AbortSignal | undefined): Promise<boolean | { cause: unknown }> {
  let response: Response;
  try {
    const headers = await transport.headers();
    headers.set('accept', 'application/json');
    response = await transport.fetch(transport.taskUrl, { headers, ...(signal ? { signal } : {}), cache: 'no-store' });
  } catch (cause) {
    if (signal?.aborted) throw signal.reason;
    return { cause };
  }
  if (!response.ok) {
    if (!RETRYABLE.has(response.status)) throw await errorFromResponse(response, `get ${label(transport.task)}`);
    await response.body?.cancel().catch(() => {});
    return false;
  }
  const task = (await response.json()) as TaskJson;
  const ended = task.status === 'completed' || task.status === 'failed' || task.status === 'cancelled' || task.status === 'timed_out';
  return ended && task.last_seq <= (lastId ?? 0);
}

function parseLastEventId(value: number | string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const seq = toSeq(typeof value === 'string' ? value.trim() : value);
  if (seq === undefined) throw new TypeError(`lastEventId must be a whole number (an event seq), got ${JSON.stringify(value)}`);
  return seq;
}

function toSeq(value: unknown): number | undefined {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function retryAfter(response: Response): number {
  const value = response.headers.get('retry-after');
  if (value === null) return 0;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? 0 : Math.max(0, at - Date.now());
}

/** An abortable delay; removes its listener either way. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function label(task: TaskPointer): string {
  return `${task.app}/${task.type}/${task.id}`;
}
