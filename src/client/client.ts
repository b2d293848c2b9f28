/**
 * The isomorphic taskstream client: plain `fetch`, no Node imports, so one module serves browsers,
 * Node 20, Deno, Bun and workers. It speaks the protocol (docs/http-api.md) and nothing else; server code reaches it
 * only as types (`createClient<typeof tasks>()`).
 */
import {
  errorFromResponse, TaskCancelledError, TaskFailedError, TaskstreamClientError, TaskTimedOutError, type TaskPointer,
} from './errors.js';
import { streamTask, type FetchLike, type StreamOptions } from './stream.js';
import type {
  AppOf, CancelResult, ClientTaskDefinition, InputFor, KindOf, KindRef, KnownKind, ListQuery, ResultFor, SignalResult, StreamEvent, StreamItem,
  TaskJson, TaskList, TaskRefInput, TypeOf,
} from './types.js';
import { TERMINAL_EVENT_TYPES } from './types.js';

export type HeadersSource = HeadersInit | (() => HeadersInit | Promise<HeadersInit>);

export interface ClientOptions {
  /** Where the server is mounted, e.g. `http://127.0.0.1:8000` or `/api/tasks` in a browser. */
  readonly baseUrl: string;
  /** Sent with every request, e.g. `{ authorization: 'Bearer …' }`; a function is called per request (rotating tokens). */
  readonly headers?: HeadersSource;
  /** Defaults to the global `fetch`. */
  readonly fetch?: typeof globalThis.fetch;
}

export interface CreateTaskOptions {
  /** A second create with the same key returns the first task (HTTP 200) instead of another. */
  readonly idempotencyKey?: string;
  readonly signal?: AbortSignal;
}

export interface RequestOptions {
  readonly signal?: AbortSignal;
}

export interface TaskstreamClient<Defs extends readonly ClientTaskDefinition[] = readonly ClientTaskDefinition[]> {
  /** `POST /tasks/{app}/{type}`: creates a task of `kind` (`'app/type'`) and returns its task JSON. */
  create<K extends KindOf<Defs>>(
    kind: K, input: InputFor<Defs, K>, options?: CreateTaskOptions,
  ): Promise<TaskJson<ResultFor<Defs, K>, AppOf<K>, TypeOf<K>>>;
  /** `GET /tasks/{app}/{type}/{id}`. */
  get(ref: TaskRefInput, options?: RequestOptions): Promise<TaskJson>;
  /** `GET /tasks?…`: newest first; pass `next` back as `before` for the next page. */
  list(query?: ListQuery, options?: RequestOptions): Promise<TaskList>;
  /** Cancels a pending or running task. A task that already ended answers `{cancelled: false, status}` (not an error). */
  cancel(ref: TaskRefInput, reason?: string, options?: RequestOptions): Promise<CancelResult>;
  /** Delivers `payload` to the task's `waitForSignal(name)`. A task that already ended answers `{delivered: false, status}`. */
  signal(ref: TaskRefInput, name: string, payload?: unknown, options?: RequestOptions): Promise<SignalResult>;
  /**
   * The task's events, from the first (or after `lastEventId`), live, ending after the terminal
   * event. Reconnects by itself with `Last-Event-ID`, never skipping or repeating an event.
   * Where the server's retention pruned events this reader had not seen, a {@link StreamGap}
   * (`kind: 'gap'`, `fromSeq`..`toSeq`) comes first, in their place.
   *
   * Stopping: `break` out of the loop, or abort `signal`. On abort the connection closes at once
   * and the iteration throws `signal.reason` (as Node's `events.on` does), so a loop never
   * mistakes an abort for the end of the task. HTTP 400/401/403/404 throw `TaskstreamClientError`.
   */
  stream(ref: TaskRefInput, options?: StreamOptions): AsyncIterable<StreamItem>;
  /**
   * Waits for the task's outcome and resolves with its final value. Rejects with
   * `TaskFailedError`, `TaskCancelledError` or `TaskTimedOutError` for the other endings.
   */
  result<A extends string, T extends string>(ref: KindRef<A, T> & KnownKind<Defs, A, T>, options?: StreamOptions): Promise<ResultFor<Defs, `${A}/${T}`>>;
}

/**
 * Creates a client. Pass the server's task definitions as a type to check inputs and type results:
 *
 * ```ts
 * import type { tasks } from '../server/tasks.js'; // type-only: no server code is bundled
 * const client = createClient<typeof tasks>({ baseUrl: 'http://127.0.0.1:8000' });
 * const task = await client.create('reports/Build', { month: '2026-11' });
 * const value = await client.result(task);
 * ```
 */
export function createClient<Defs extends readonly ClientTaskDefinition[] = readonly ClientTaskDefinition[]>(
  options: ClientOptions,
): TaskstreamClient<Defs> {
  if (options === null || typeof options !== 'object' || typeof options.baseUrl !== 'string') {
    throw new TypeError('createClient: options.baseUrl is required, e.g. createClient({ baseUrl: "http://127.0.0.1:8000" })');
  }
  const base = options.baseUrl.replace(/\/+$/, '');
  const userFetch = options.fetch;
  // Called through a closure: a browser's `fetch` must not be called as a method of another object.
  const doFetch: FetchLike = (input, init) => (userFetch ? userFetch(input, init) : globalThis.fetch(input, init));
  const headers = async (): Promise<Headers> => {
    const source = options.headers;
    return new Headers(typeof source === 'function' ? await source() : source);
  };

  // Stream tokens seen on task JSON (create responses, or refs the caller passes), used for that
  // task's routes when no Authorization header is configured. Bounded: oldest forgotten first.
  const tokens = new Map<string, string>();
  const remember = (ref: TaskRefInput, task: TaskPointer): string | undefined => {
    const given = typeof ref === 'object' && ref !== null ? (ref as { stream_token?: unknown }).stream_token : undefined;
    const key = label(task);
    if (typeof given === 'string' && given !== '') {
      tokens.delete(key);
      tokens.set(key, given);
      if (tokens.size > 256) tokens.delete(tokens.keys().next().value!);
    }
    return tokens.get(key);
  };
  /** The configured headers, plus the task's stream token when they carry no Authorization. */
  const taskHeaders = async (token: string | undefined): Promise<Headers> => {
    const h = await headers();
    if (token !== undefined && !h.has('authorization')) h.set('authorization', `Bearer ${token}`);
    return h;
  };

  async function request(method: string, path: string, what: string, init: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal | undefined; allow?: number[]; token?: string | undefined } = {}): Promise<unknown> {
    const h = await taskHeaders(init.token);
    h.set('accept', 'application/json');
    for (const [key, value] of Object.entries(init.headers ?? {})) h.set(key, value);
    // Every POST says JSON, even without a body: the server refuses other POSTs (CSRF guard).
    if (method === 'POST') h.set('content-type', 'application/json');
    let body: string | undefined;
    if (init.body !== undefined) body = JSON.stringify(init.body);
    const response = await doFetch(`${base}${path}`, {
      method, headers: h, ...(body === undefined ? {} : { body }), ...(init.signal ? { signal: init.signal } : {}),
    });
    if (!response.ok && !(init.allow ?? []).includes(response.status)) throw await errorFromResponse(response, what);
    try {
      return (await response.json()) as unknown;
    } catch (cause) {
      throw new TaskstreamClientError('bad_response', `${what}: the response is not JSON`, { status: response.status, cause });
    }
  }

  const client: TaskstreamClient<readonly ClientTaskDefinition[]> = {
    async create(kind, input, createOptions = {}) {
      const [app, type] = parseKind(kind);
      const extra: Record<string, string> = createOptions.idempotencyKey === undefined ? {} : { 'idempotency-key': createOptions.idempotencyKey };
      const task = (await request('POST', `/tasks/${enc(app)}/${enc(type)}`, `create ${kind}`, {
        body: input ?? {}, headers: extra, signal: createOptions.signal,
      })) as TaskJson;
      if (typeof task.stream_token === 'string') remember(task, { app: task.app, type: task.type, id: task.id });
      return task as never;
    },
    async get(ref, requestOptions = {}) {
      const task = parseRef(ref);
      return (await request('GET', taskPath(task), `get ${label(task)}`, { signal: requestOptions.signal, token: remember(ref, task) })) as TaskJson;
    },
    async list(query = {}, requestOptions = {}) {
      const params = new URLSearchParams();
      for (const key of ['app', 'type', 'status', 'limit', 'before'] as const) {
        const value = query[key];
        if (value !== undefined) params.set(key, String(value));
      }
      const qs = params.toString() === '' ? '' : `?${params.toString()}`;
      return (await request('GET', `/tasks${qs}`, 'list tasks', { signal: requestOptions.signal })) as TaskList;
    },
    async cancel(ref, reason, requestOptions = {}) {
      const task = parseRef(ref);
      const body = (await request('POST', `${taskPath(task)}/cancel`, `cancel ${label(task)}`, {
        body: reason === undefined ? undefined : { reason }, signal: requestOptions.signal, allow: [409], token: remember(ref, task),
      })) as CancelResult;
      return { cancelled: body.cancelled, status: body.status };
    },
    async signal(ref, name, payload, requestOptions = {}) {
      const task = parseRef(ref);
      const body = (await request('POST', `${taskPath(task)}/signals/${enc(name)}`, `signal ${name} to ${label(task)}`, {
        body: payload, signal: requestOptions.signal, allow: [409], token: remember(ref, task),
      })) as SignalResult;
      return body.delivered ? { delivered: true } : { delivered: false, ...(body.status ? { status: body.status } : {}) };
    },
    stream(ref, streamOptions) {
      const task = parseRef(ref);
      const token = remember(ref, task);
      return streamTask({
        fetch: doFetch, headers: () => taskHeaders(token), task,
        streamUrl: `${base}/stream/${enc(task.app)}/${enc(task.type)}/${task.id}`,
        taskUrl: `${base}${taskPath(task)}`,
      }, streamOptions);
    },
    async result(ref, streamOptions = {}) {
      const task = parseRef(ref);
      remember(ref, task);
      const current = await client.get(task, streamOptions.signal ? { signal: streamOptions.signal } : {});
      if (isTerminal(current.status)) return outcomeOfTask(current) as never;
      // Everything up to last_seq is history; the terminal event comes after it.
      for await (const event of client.stream(task, { ...streamOptions, lastEventId: current.last_seq })) {
        if (event.kind !== 'gap' && TERMINAL_EVENT_TYPES.has(event.type)) return outcomeOfEvent(task, event) as never;
      }
      // The stream ended without a terminal event after our id: the task JSON has the outcome.
      const final = await client.get(task, streamOptions.signal ? { signal: streamOptions.signal } : {});
      if (isTerminal(final.status)) return outcomeOfTask(final) as never;
      throw new TaskstreamClientError('bad_response', `result of ${label(task)}: the stream ended while the task is ${final.status}`);
    },
  };
  return client as unknown as TaskstreamClient<Defs>;
}

/** Parses `'app/type/id'`, `{app, type, id}` or a task JSON object. */
export function parseRef(ref: TaskRefInput): TaskPointer {
  let app: unknown, type: unknown, id: unknown;
  if (typeof ref === 'string') {
    const parts = ref.split('/');
    if (parts.length !== 3) throw new TypeError(`task ref must be "app/type/id", got ${JSON.stringify(ref)}`);
    [app, type, id] = parts;
  } else if (ref !== null && typeof ref === 'object') {
    ({ app, type, id } = ref);
  } else {
    throw new TypeError(`task ref must be "app/type/id" or {app, type, id}, got ${String(ref)}`);
  }
  const n = typeof id === 'string' && /^[1-9]\d*$/.test(id) ? Number(id) : id;
  if (typeof app !== 'string' || app === '' || typeof type !== 'string' || type === '' || typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) {
    throw new TypeError(`task ref needs a non-empty app and type and a positive whole id, got ${JSON.stringify(ref)}`);
  }
  return { app, type, id: n };
}

function parseKind(kind: string): [string, string] {
  const parts = typeof kind === 'string' ? kind.split('/') : [];
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
    throw new TypeError(`task kind must be "app/type", got ${JSON.stringify(kind)}`);
  }
  return [parts[0]!, parts[1]!];
}

function isTerminal(status: string): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled' || status === 'timed_out';
}

function outcomeOfTask(task: TaskJson): unknown {
  const pointer = { app: task.app, type: task.type, id: task.id };
  switch (task.status) {
    case 'completed':
      return task.final_value;
    case 'failed':
      throw new TaskFailedError(pointer, task.error?.type ?? 'Error', task.error?.message ?? 'unknown error');
    case 'cancelled':
      throw new TaskCancelledError(pointer, task.cancel_reason ?? 'external_cancellation');
    default:
      throw new TaskTimedOutError(pointer, undefined);
  }
}

/** The final value of a `complete` event; throws the matching outcome error for the other terminal events. */
export function outcomeOfEvent(task: TaskPointer, event: StreamEvent): unknown {
  const data = event.data;
  switch (event.type) {
    case 'complete':
      return data.final_value;
    case 'error':
      throw new TaskFailedError(task, str(data.error_type) ?? 'Error', str(data.message) ?? 'unknown error');
    case 'cancelled':
      throw new TaskCancelledError(task, str(data.reason) ?? 'external_cancellation');
    case 'timeout':
      throw new TaskTimedOutError(task, typeof data.timeout_ms === 'number' ? data.timeout_ms : undefined);
    default:
      throw new TypeError(`outcomeOfEvent: "${event.type}" is not a terminal event`);
  }
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function taskPath(task: TaskPointer): string {
  return `/tasks/${enc(task.app)}/${enc(task.type)}/${task.id}`;
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

function label(task: TaskPointer): string {
  return `${task.app}/${task.type}/${task.id}`;
}
