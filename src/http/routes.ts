import type { StandardSchemaV1 } from '@standard-schema/spec';
import { InputValidationError, RuntimeClosedError, TaskstreamError, UnknownTaskTypeError } from '../errors.js';
import type { Taskstream } from '../runtime/runtime.js';
import type { TaskRecord, TaskStatus } from '../store/types.js';
import { TERMINAL_STATUSES } from '../store/types.js';
import { NAME_PATTERN } from '../task/names.js';
import { dashboardAsset } from '../dashboard/index.js';
import { jsonDepthExceeds } from './limits.js';
import type { TaskstreamMetrics } from './metrics.js';
import { SSE_HEADERS } from './options.js';
import { finishedJson, taskJson } from './task-json.js';

/** A request as the routes see it, whatever the transport (Node or Fetch). */
export interface HttpRequest {
  readonly method: string;
  /** Path below the mount point, still percent-encoded, without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  /** Prefix of generated URLs (`Location`, `stream_url`). */
  readonly basePath: string;
  /**
   * The request named the mount point itself without its trailing slash (`/ts`, not `/ts/`): it is
   * redirected (308) to `/ts/`, so the dashboard's relative asset URLs resolve under the prefix.
   */
  readonly atMountWithoutSlash?: boolean;
  header(name: string): string | undefined;
  /** The body, or 'too_large' past `limit` bytes. */
  body(limit: number): Promise<Uint8Array | 'too_large'>;
  /** The client's address (rate limit key), when the transport knows it. */
  readonly remoteAddress?: string | undefined;
  /** The address the server accepted the connection on (loopback-bound servers check `Host`). */
  readonly localAddress?: string | undefined;
  /** Echoed as `X-Request-Id` and put on the request's log lines. */
  readonly requestId?: string | undefined;
}

export type Reply =
  | { readonly kind: 'body'; readonly status: number; readonly headers: Record<string, string>; readonly body: string | Uint8Array }
  /** An SSE response for `task` after `afterSeq`: the adapter streams it. */
  | { readonly kind: 'stream'; readonly task: TaskRecord; readonly afterSeq: number; readonly headers?: Record<string, string> };

export interface RouteOptions {
  readonly maxBodyBytes: number;
  readonly maxJsonDepth: number;
  readonly dashboard: boolean;
  /** With Access on: mints the `stream_token` a create returns. */
  readonly mint?: (task: { app: string; type: string; id: number }) => Promise<string>;
  readonly metrics?: TaskstreamMetrics;
}

const STATUSES: ReadonlySet<string> = new Set(['pending', 'running', 'completed', 'failed', 'cancelled', 'timed_out']);
const ID_PATTERN = /^[1-9][0-9]{0,15}$/;

/**
 * The routes of the protocol (docs/http-api.md). Every answer is a defined status with a JSON body `{error, message}`
 * on failure (the Django Streaming Coordinator's plain-text 400/404 on /stream for clients that do not ask for JSON).
 * Paths tolerate one trailing slash; ids are canonical positive decimal integers (`+1`, `01`,
 * `1e3`, `-1`, and numbers past 2^53 are a 400 "Invalid task ID").
 */
export async function route(runtime: Taskstream, req: HttpRequest, options: RouteOptions): Promise<Reply> {
  if (req.atMountWithoutSlash === true && req.basePath !== '') {
    const search = req.query.toString();
    return { kind: 'body', status: 308, headers: { location: `${req.basePath}/${search === '' ? '' : `?${search}`}` }, body: '' };
  }
  const segments = splitPath(req.path);
  if (segments === undefined) return error(400, 'bad_path', 'the path is not valid percent-encoding');
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  const [first, app, type, id, action, name, ...rest] = segments;

  if (segments.length === 0 || (options.dashboard && first !== 'tasks' && first !== 'stream' && first !== 'health' && first !== 'ready' && first !== 'metrics')) {
    if (method === 'GET' && options.dashboard) {
      const asset = dashboardAsset(req.path);
      if (asset) return { kind: 'body', status: 200, headers: { 'content-type': asset.contentType, 'cache-control': 'no-cache' }, body: asset.body };
    }
    return error(404, 'not_found', `no route for ${req.method} ${req.path}`);
  }
  switch (first) {
    case 'health':
      if (segments.length !== 1) break;
      if (method !== 'GET') return notAllowed('GET');
      return { kind: 'body', status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'OK' };
    case 'ready':
      if (segments.length !== 1) break;
      if (method !== 'GET') return notAllowed('GET');
      return ready(runtime);
    case 'metrics':
      if (segments.length !== 1 || options.metrics === undefined) break;
      if (method !== 'GET') return notAllowed('GET');
      return { kind: 'body', status: 200, headers: { 'content-type': options.metrics.registry.contentType, 'cache-control': 'no-store' }, body: await options.metrics.render() };
    case 'stream':
      if (segments.length !== 4 || rest.length > 0) break;
      if (method !== 'GET') return notAllowed('GET');
      return stream(runtime, req, app!, type!, id!);
    case 'tasks':
      if (segments.length === 1) {
        if (method !== 'GET') return notAllowed('GET');
        return list(runtime, req);
      }
      if (segments.length === 2 && app === 'types') {
        if (method !== 'GET') return notAllowed('GET');
        return json(200, { types: runtime.definitions.map((d) => ({ app: d.app, type: d.type, input_schema: inputSchema(d.input) })) });
      }
      if (segments.length === 3) {
        if (method !== 'POST') return notAllowed('POST');
        return create(runtime, req, options, app!, type!);
      }
      if (segments.length === 4) {
        if (method !== 'GET') return notAllowed('GET');
        const found = await findTask(runtime, app!, type!, id!);
        return 'task' in found ? json(200, taskJson(found.task, req.basePath)) : found.reply;
      }
      if (segments.length === 5 && action === 'cancel') {
        if (method !== 'POST') return notAllowed('POST');
        return cancel(runtime, req, options, app!, type!, id!);
      }
      if (segments.length === 6 && action === 'signals') {
        if (method !== 'POST') return notAllowed('POST');
        return signal(runtime, req, options, app!, type!, id!, name!);
      }
      break;
  }
  return error(404, 'not_found', `no route for ${req.method} ${req.path}`);
}

async function ready(runtime: Taskstream): Promise<Reply> {
  // Each dependency is asked for real, each within a short bound, both at once: a hung connection
  // answers 503 in about a second rather than holding the load balancer's probe.
  const check = async (probe: () => Promise<void>): Promise<string> => {
    if (runtime.closed) return 'closed';
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<string>((resolve) => { timer = setTimeout(() => resolve('timeout'), READY_CHECK_MS); });
    try {
      return await Promise.race([probe().then(() => 'ok', () => 'error'), timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  const [store, bus] = await Promise.all([check(() => runtime.store.ping()), check(() => runtime.bus.ping())]);
  const draining = runtime.closed;
  const ok = !draining && store === 'ok' && bus === 'ok';
  const { running, subscribers } = runtime.stats;
  return json(ok ? 200 : 503, { status: draining ? 'draining' : ok ? 'ready' : 'unavailable', checks: { store, bus }, running, subscribers });
}

/** How long `/ready` waits for each of store and bus. */
const READY_CHECK_MS = 1000;

async function create(runtime: Taskstream, req: HttpRequest, options: RouteOptions, app: string, type: string): Promise<Reply> {
  if (!runtime.definitions.some((d) => d.app === app && d.type === type)) {
    return fromError(new UnknownTaskTypeError(app, type, runtime.definitions.map((d) => `${d.app}/${d.type}`)));
  }
  const body = await readJson(req, options, {});
  if ('reply' in body) return body.reply;
  const idempotencyKey = req.header('idempotency-key');
  if (idempotencyKey !== undefined && (idempotencyKey.length === 0 || idempotencyKey.length > 255)) {
    return error(400, 'bad_idempotency_key', 'Idempotency-Key must be 1 to 255 characters');
  }
  try {
    const { task, created } = await runtime.createTask({ app, type }, body.value, idempotencyKey === undefined ? {} : { idempotencyKey });
    const reply: Record<string, unknown> = { ...taskJson(task, req.basePath) };
    if (options.mint !== undefined) {
      const token = await options.mint(task);
      reply.stream_token = token;
      reply.stream_url = `${String(reply.stream_url)}?token=${token}`;
    }
    return json(created ? 201 : 200, reply, { location: `${req.basePath}/tasks/${app}/${type}/${task.id}` });
  } catch (err) {
    return fromError(err);
  }
}

async function list(runtime: Taskstream, req: HttpRequest): Promise<Reply> {
  const q = req.query;
  for (const key of q.keys()) {
    if (!['app', 'type', 'status', 'limit', 'before'].includes(key)) return error(400, 'bad_filter', `unknown filter "${key}"; filters: app, type, status, limit, before`);
  }
  const status = q.get('status') ?? undefined;
  if (status !== undefined && !STATUSES.has(status)) return error(400, 'bad_filter', `status must be one of ${[...STATUSES].join(', ')}`);
  for (const key of ['app', 'type'] as const) {
    const value = q.get(key);
    if (value !== null && !NAME_PATTERN.test(value)) return error(400, 'bad_filter', `${key} must match ${NAME_PATTERN.source}`);
  }
  const limit = q.get('limit');
  if (limit !== null && !(ID_PATTERN.test(limit) && Number(limit) <= 1000)) return error(400, 'bad_filter', 'limit must be a whole number from 1 to 1000');
  const before = q.get('before');
  if (before !== null && !ID_PATTERN.test(before)) return error(400, 'bad_filter', 'before must be a task id');
  const page = await runtime.list({
    app: q.get('app') ?? undefined, type: q.get('type') ?? undefined, status: status as TaskStatus | undefined,
    limit: limit === null ? 50 : Number(limit), before: before === null ? undefined : Number(before),
  });
  return json(200, { tasks: page.tasks.map((t) => taskJson(t, req.basePath)), next: page.next });
}

async function cancel(runtime: Taskstream, req: HttpRequest, options: RouteOptions, app: string, type: string, id: string): Promise<Reply> {
  const found = await findTask(runtime, app, type, id);
  if (!('task' in found)) return found.reply;
  const body = await readJson(req, options, {});
  if ('reply' in body) return body.reply;
  const reason = (body.value as { reason?: unknown } | null)?.reason;
  if (body.value === null || typeof body.value !== 'object' || Array.isArray(body.value) || (reason !== undefined && (typeof reason !== 'string' || reason.length === 0 || reason.length > 500))) {
    return error(400, 'invalid_body', 'the body must be empty or {"reason": "<1 to 500 characters>"}');
  }
  const cancelled = await runtime.cancel(found.task, reason as string | undefined);
  const status = (await runtime.get(found.task.id))?.status ?? found.task.status;
  if (cancelled) return json(202, { cancelled: true, status });
  return json(409, { error: 'conflict', message: `task ${app}/${type}/${found.task.id} is already ${status}`, cancelled: false, status });
}

async function signal(runtime: Taskstream, req: HttpRequest, options: RouteOptions, app: string, type: string, id: string, name: string): Promise<Reply> {
  const found = await findTask(runtime, app, type, id);
  if (!('task' in found)) return found.reply;
  if (!NAME_PATTERN.test(name)) return error(400, 'bad_signal', `signal name must match ${NAME_PATTERN.source}`);
  const body = await readJson(req, options, null);
  if ('reply' in body) return body.reply;
  try {
    const delivered = await runtime.signal(found.task, name, body.value);
    if (delivered) return json(202, { delivered: true });
    const status = (await runtime.get(found.task.id))?.status ?? found.task.status;
    return json(409, { error: 'conflict', message: `task ${app}/${type}/${found.task.id} is already ${status}`, delivered: false, status });
  } catch (err) {
    return fromError(err);
  }
}

async function stream(runtime: Taskstream, req: HttpRequest, app: string, type: string, id: string): Promise<Reply> {
  const wantsJson = (req.header('accept') ?? '').includes('application/json');
  const wantsSse = (req.header('accept') ?? '').includes('text/event-stream');
  const plain = (status: number, code: string, message: string): Reply =>
    wantsJson ? error(status, code, message) : { kind: 'body', status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: message };
  if (!ID_PATTERN.test(id) || !Number.isSafeInteger(Number(id))) return plain(400, 'invalid_id', 'Invalid task ID');
  const raw = req.header('last-event-id') ?? req.query.get('last_event_id') ?? undefined;
  let afterSeq = 0;
  if (raw !== undefined && raw.trim() !== '') {
    if (!/^(0|[1-9][0-9]{0,15})$/.test(raw.trim())) return plain(400, 'invalid_last_event_id', 'Invalid Last-Event-ID: expected a whole number (an event seq)');
    afterSeq = Number(raw.trim());
  }
  const task = await runtime.get({ id: Number(id), app, type });
  if (task === undefined) return plain(404, 'not_found', 'Task not found');
  if (TERMINAL_STATUSES.has(task.status)) {
    if (!wantsSse) return json(200, finishedJson(task));
    if (afterSeq >= task.lastSeq) return { kind: 'body', status: 204, headers: {}, body: '' };
  }
  if (runtime.closed) return error(503, 'draining', 'the server is shutting down; reconnect to another instance', { 'retry-after': '1' });
  // HEAD: the stream's headers at once, without waiting for the task.
  if (req.method === 'HEAD') return { kind: 'body', status: 200, headers: { ...SSE_HEADERS }, body: '' };
  return { kind: 'stream', task, afterSeq };
}

async function findTask(runtime: Taskstream, app: string, type: string, id: string): Promise<{ task: TaskRecord } | { reply: Reply }> {
  if (!ID_PATTERN.test(id) || !Number.isSafeInteger(Number(id))) return { reply: error(400, 'invalid_id', 'Invalid task ID: expected a positive whole number') };
  const task = await runtime.get({ id: Number(id), app, type });
  if (task === undefined) return { reply: error(404, 'not_found', `task ${app}/${type}/${id} not found`) };
  return { task };
}

/**
 * A POST body as JSON. `Content-Type: application/json` is required even for an empty body: a
 * page on another origin can send a POST without a CORS preflight only with a "simple" content
 * type (or none), so requiring JSON keeps cross-origin pages out.
 */
async function readJson(req: HttpRequest, options: RouteOptions, empty: unknown): Promise<{ value: unknown } | { reply: Reply }> {
  const type = (req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json' && !(type.startsWith('application/') && type.endsWith('+json'))) {
    return { reply: error(415, 'unsupported_media_type', 'a POST needs Content-Type: application/json (even with an empty body)') };
  }
  const bytes = await req.body(options.maxBodyBytes);
  if (bytes === 'too_large') return { reply: error(413, 'too_large', `the body is over ${options.maxBodyBytes} bytes`) };
  if (bytes.length === 0) return { value: empty };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { reply: error(400, 'invalid_json', 'the body is not valid UTF-8') };
  }
  if (jsonDepthExceeds(text, options.maxJsonDepth)) {
    return { reply: error(400, 'too_deep', `the body nests arrays and objects deeper than ${options.maxJsonDepth} levels`) };
  }
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return { reply: error(400, 'invalid_json', 'the body is not valid JSON') };
  }
}

/** Path segments below the mount point, percent-decoded (one trailing slash tolerated); undefined for bad encoding. */
export function splitPath(rawPath: string): string[] | undefined {
  const path = rawPath.length > 1 && rawPath.endsWith('/') ? rawPath.slice(0, -1) : rawPath;
  try {
    return path === '/' || path === '' ? [] : path.slice(1).split('/').map(decodeURIComponent);
  } catch {
    return undefined;
  }
}

function fromError(err: unknown): Reply {
  if (err instanceof InputValidationError) return json(400, { error: err.code, message: err.message, issues: err.issues });
  if (err instanceof UnknownTaskTypeError) return error(404, err.code, err.message);
  if (err instanceof RuntimeClosedError) return error(503, 'draining', err.message, { 'retry-after': '1' });
  if (err instanceof TaskstreamError && err.code === 'store_unavailable') return error(503, err.code, err.message, { 'retry-after': '1' });
  if (err instanceof TaskstreamError) return error(err.code === 'not_found' ? 404 : err.code === 'invalid_state' ? 409 : 400, err.code, err.message);
  // Anything else (a TypeError included) is a fault of the server, not of the request: a 500.
  throw err;
}

/** The type's input as JSON Schema when its schema library can say (Standard JSON Schema); else null. */
function inputSchema(schema: StandardSchemaV1): unknown {
  const converter = (schema['~standard'] as { jsonSchema?: { input?: (o: { target: string }) => unknown } }).jsonSchema;
  try {
    return converter?.input?.({ target: 'draft-2020-12' }) ?? null;
  } catch {
    return null;
  }
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { kind: 'body', status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers }, body: JSON.stringify(body) };
}

export function error(status: number, code: string, message: string, headers: Record<string, string> = {}): Reply {
  return json(status, { error: code, message }, headers);
}

function notAllowed(allow: string): Reply {
  return error(405, 'method_not_allowed', `use ${allow}`, { allow: allow === 'GET' ? 'GET, HEAD' : allow });
}
