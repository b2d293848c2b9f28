import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Taskstream } from '../runtime/runtime.js';
import { type HttpOptions, resolveHttpOptions, SSE_HEADERS, stripBase } from './options.js';
import { type HttpRequest, type Reply, route } from './routes.js';
import { Corker, NodeTransport } from './node-transport.js';
import { Heartbeat, SseSession } from './sse-session.js';

export type NodeHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;

/**
 * The routes as a plain Node `(req, res)` handler: `http.createServer(createHandler(runtime))`, or
 * mounted in Express (`app.use('/ts', handler)`, which strips the prefix itself) and Fastify.
 */
export function createHandler(runtime: Taskstream, options: HttpOptions = {}): NodeHandler {
  const opts = resolveHttpOptions(options);
  const heartbeat = new Heartbeat(opts.heartbeatMs);
  const corker = new Corker();
  return (req, res, next) => {
    handle(runtime, opts, heartbeat, corker, req, res).catch((err: unknown) => {
      if (next) return next(err);
      runtime.logger.error({ err }, 'taskstream http: request failed');
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ error: 'internal', message: 'internal server error' }));
      } else {
        res.destroy();
      }
    });
  };
}

async function handle(runtime: Taskstream, opts: ReturnType<typeof resolveHttpOptions>, heartbeat: Heartbeat, corker: Corker, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  // Express strips its mount path into req.baseUrl; otherwise strip `basePath` ourselves.
  const mounted = (req as { baseUrl?: unknown }).baseUrl;
  const basePath = typeof mounted === 'string' && mounted !== '' ? mounted : opts.basePath;
  // Express keeps the unstripped URL in req.originalUrl.
  const original = (req as { originalUrl?: unknown }).originalUrl;
  const fullPath = typeof original === 'string' ? new URL(original, 'http://localhost').pathname : url.pathname;
  const request: HttpRequest = {
    method: req.method ?? 'GET',
    path: stripBase(url.pathname, opts.basePath),
    query: url.searchParams,
    basePath,
    atMountWithoutSlash: basePath !== '' && fullPath === basePath,
    header: (name) => {
      const value = req.headers[name];
      return Array.isArray(value) ? value.join(', ') : value;
    },
    body: (limit) => readBody(req, limit),
  };
  const reply = await route(runtime, request, { maxBodyBytes: opts.maxBodyBytes, dashboard: opts.dashboard });
  if (reply.kind === 'body') return send(req, res, reply);
  startStream(runtime, opts, heartbeat, corker, req, res, reply);
}

function send(req: IncomingMessage, res: ServerResponse, reply: Reply & { kind: 'body' }): void {
  const headers: Record<string, string | number> = { ...reply.headers };
  if (reply.status !== 204) headers['content-length'] = Buffer.byteLength(reply.body);
  // A body we did not read (413) must not be parsed as the next request.
  if (!req.complete) headers.connection = 'close';
  res.writeHead(reply.status, headers);
  res.end(req.method === 'HEAD' || reply.status === 204 ? undefined : reply.body);
}

function startStream(runtime: Taskstream, opts: ReturnType<typeof resolveHttpOptions>, heartbeat: Heartbeat, corker: Corker, req: IncomingMessage, res: ServerResponse, reply: Reply & { kind: 'stream' }): void {
  req.socket.setNoDelay(true);
  req.socket.setTimeout(0);
  res.writeHead(200, SSE_HEADERS);
  flattenHeader(res);
  const session = new SseSession(new NodeTransport(res, corker), reply.task, opts, heartbeat.remove);
  heartbeat.add(session);
  onClose(res, session);
  session.start(runtime, reply.afterSeq);
}

/**
 * Node builds the response's header block with `+=`, which V8 keeps as a tree of about 20 pieces
 * (32 bytes each) until something reads the string by index, and the response keeps it for its
 * whole life. Reading one character flattens it in place: about 450 bytes less per open stream.
 * (`_header` is Node's internal; if it is not a string this does nothing.)
 */
function flattenHeader(res: ServerResponse): void {
  const header = (res as { _header?: unknown })._header;
  if (typeof header === 'string') header.charCodeAt(0);
}

/** In its own function so that the listener's context holds the session alone. */
function onClose(res: ServerResponse, session: SseSession): void {
  res.on('close', () => session.disconnected());
}

function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array | 'too_large'> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return Promise.resolve('too_large');
  // A framework (Express with express.json()) may have read the body already and left it in req.body.
  const parsed = (req as { body?: unknown }).body;
  if (req.readableEnded) {
    if (parsed !== undefined) {
      return Promise.resolve(Buffer.from(typeof parsed === 'string' || parsed instanceof Uint8Array ? parsed : JSON.stringify(parsed)));
    }
    // Read elsewhere and not left in req.body (Fastify's own parsers): waiting for 'end' would hang.
    if (declared === 0 && req.headers['transfer-encoding'] === undefined) return Promise.resolve(new Uint8Array());
    return Promise.reject(new Error('taskstream: the request body was already read by another parser; leave it unread for the handler (see examples/README.md)'));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.pause();
        resolve('too_large');
      } else {
        chunks.push(chunk);
      }
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
