/**
 * What every request goes through before and after its route, whatever the transport:
 *
 *   Host check (loopback-bound: 403) → CORS preflight → rate limit (429) → credentials (401/403)
 *   → route → stream limit (503) → headers every answer carries
 *
 * `/health` and `/ready` skip the rate limit and credentials; the dashboard's files skip
 * credentials (the page asks for a key itself). A 401 carries `WWW-Authenticate: Bearer`.
 */
import type { Taskstream } from '../runtime/runtime.js';
import type { Scope } from './access.js';
import { routeTemplate } from './metrics.js';
import type { ResolvedHttpOptions } from './options.js';
import { error, type HttpRequest, type Reply, route, splitPath } from './routes.js';
import { BASE_HEADERS, corsHeaders, DASHBOARD_HEADERS, hostAllowed, preflightHeaders } from './security-headers.js';

export interface Answer {
  readonly reply: Reply;
  /** The route template (metrics label, log field). */
  readonly route: string;
}

export async function answer(runtime: Taskstream, req: HttpRequest, opts: ResolvedHttpOptions, openStreams: () => number): Promise<Answer> {
  const segments = splitPath(req.path) ?? ['(bad path)', '', '', '', '', '', ''];
  const template = routeTemplate(segments);
  const reply = await gateAndRoute(runtime, req, opts, segments, template, openStreams);
  return { reply: withHeaders(reply, template, opts, req), route: template };
}

async function gateAndRoute(
  runtime: Taskstream, req: HttpRequest, opts: ResolvedHttpOptions, segments: readonly string[], template: string, openStreams: () => number,
): Promise<Reply> {
  if (!hostAllowed(opts.hosts, req.header('host'), req.localAddress)) {
    return error(403, 'forbidden_host', 'this server is bound to loopback and answers only loopback host names (DNS rebinding guard); add the name with --allowed-host');
  }
  const origin = req.header('origin');
  if (req.method === 'OPTIONS' && origin !== undefined && req.header('access-control-request-method') !== undefined) {
    if (!opts.cors.origins.has(origin)) return error(403, 'forbidden_origin', `origin ${origin} is not allowed (--cors-origin)`);
    return { kind: 'body', status: 204, headers: preflightHeaders(opts.cors, origin), body: '' };
  }
  const exempt = template === '/health' || template === '/ready';
  if (!exempt && opts.limits.limiter !== undefined) {
    const wait = await opts.limits.limiter.take(req.remoteAddress ?? 'unknown');
    if (wait !== undefined) return error(429, 'rate_limited', `too many requests from this address; retry in ${wait} s`, { 'retry-after': String(wait) });
  }
  const isAsset = opts.dashboard && (template === '/' || template === '/{asset}');
  if (opts.access !== undefined && !exempt && !isAsset && req.atMountWithoutSlash !== true) {
    const refusal = await authorize(req, opts, segments);
    if (refusal !== undefined) return refusal;
  }
  const reply = await route(runtime, req, {
    maxBodyBytes: opts.maxBodyBytes,
    maxJsonDepth: opts.limits.maxJsonDepth,
    dashboard: opts.dashboard,
    ...(opts.access === undefined ? {} : { mint: opts.access.mint.bind(opts.access) }),
    ...(opts.metrics === undefined ? {} : { metrics: opts.metrics }),
  });
  if (reply.kind === 'stream' && req.method === 'GET' && openStreams() >= opts.limits.maxStreams) {
    return error(503, 'too_many_streams', `this server has ${opts.limits.maxStreams} streams open; retry shortly or connect to another instance`, { 'retry-after': '1' });
  }
  return reply;
}

/** Undefined when the request's credentials open its route; else the 401 or 403 to send. */
async function authorize(req: HttpRequest, opts: ResolvedHttpOptions, segments: readonly string[]): Promise<Reply | undefined> {
  const header = req.header('authorization');
  let bearer: string | undefined;
  if (header !== undefined) {
    const match = /^Bearer +([^\s]+) *$/i.exec(header);
    if (match === null) return unauthorized('malformed Authorization header; expected "Bearer <API key or stream token>"');
    bearer = match[1];
  }
  const target = taskTarget(req.method, segments);
  const queryToken = req.query.get('token') ?? undefined;
  const verdict = await opts.access!.judge(bearer, queryToken, target);
  if (verdict.ok) return undefined;
  return verdict.status === 401 ? unauthorized(verdict.message) : error(403, 'forbidden', verdict.message);
}

function unauthorized(message: string): Reply {
  return error(401, 'unauthorized', message, { 'www-authenticate': 'Bearer realm="taskstream"' });
}

/** The task a route is about and the scope it needs, for the routes a stream token may open. */
function taskTarget(method: string, segments: readonly string[]): { sub: string; scope: Scope } | undefined {
  const [first, app, type, id, action] = segments;
  const read = method === 'GET' || method === 'HEAD';
  const sub = `${app}/${type}/${id}`;
  if (first === 'stream' && segments.length === 4 && read) return { sub, scope: 'read' };
  if (first !== 'tasks' || app === 'types') return undefined;
  if (segments.length === 4 && read) return { sub, scope: 'read' };
  if (segments.length === 5 && action === 'cancel' && method === 'POST') return { sub, scope: 'cancel' };
  if (segments.length === 6 && action === 'signals' && method === 'POST') return { sub, scope: 'signal' };
  return undefined;
}

function withHeaders(reply: Reply, template: string, opts: ResolvedHttpOptions, req: HttpRequest): Reply {
  const extra: Record<string, string> = { ...BASE_HEADERS, ...corsHeaders(opts.cors, req.header('origin')) };
  if (req.requestId !== undefined) extra['x-request-id'] = req.requestId;
  if ((template === '/' || template === '/{asset}') && reply.kind === 'body' && reply.status === 200) Object.assign(extra, DASHBOARD_HEADERS);
  return { ...reply, headers: { ...extra, ...reply.headers } };
}
