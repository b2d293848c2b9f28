import { randomUUID } from 'node:crypto';
import type { Taskstream } from '../runtime/runtime.js';
import { type HttpOptions, resolveHttpOptions, SSE_HEADERS, stripBase } from './options.js';
import { answer } from './pipeline.js';
import { logRequest, safeRequestId } from './request-log.js';
import type { HttpRequest } from './routes.js';
import { Heartbeat, SseSession, sseShared, type SseTransport } from './sse-session.js';

/** What a Fetch server knows about the connection: the client's address (rate limit) and the address it accepted on (Host check). */
export interface ConnectionInfo {
  readonly remoteAddress?: string;
  readonly localAddress?: string;
}

export type FetchHandler = (request: Request, connection?: ConnectionInfo) => Promise<Response>;

/**
 * The same routes as a Fetch-API handler (`Request → Response`), for Hono, Next.js route handlers,
 * Bun, Deno and anything else that speaks Fetch. SSE responses are a byte stream whose queue is
 * bounded by `maxBufferedBytes`: a reader that falls behind is errored, and resumes by Last-Event-ID.
 */
export function createFetchHandler(runtime: Taskstream, options: HttpOptions = {}): FetchHandler {
  const opts = resolveHttpOptions(runtime, options);
  const heartbeat = new Heartbeat(opts.heartbeatMs);
  const streams = sseShared(runtime, opts, heartbeat, false);
  return async (request, connection = {}) => {
    const started = performance.now();
    const requestId = safeRequestId(request.headers.get('x-request-id')) ?? randomUUID();
    const url = new URL(request.url);
    const req: HttpRequest = {
      method: request.method,
      path: stripBase(url.pathname, opts.basePath),
      query: url.searchParams,
      basePath: opts.basePath,
      atMountWithoutSlash: opts.basePath !== '' && url.pathname === opts.basePath,
      header: (name) => request.headers.get(name) ?? undefined,
      body: (limit) => readBody(request, limit),
      remoteAddress: connection.remoteAddress,
      localAddress: connection.localAddress,
      requestId,
    };
    const result = await answer(runtime, req, opts, () => heartbeat.size);
    const reply = result.reply;
    const status = reply.kind === 'body' ? reply.status : 200;
    const seconds = (performance.now() - started) / 1000;
    opts.metrics?.observeRequest(result.route, req.method, status, seconds);
    logRequest(opts.logger, { requestId, method: req.method, route: result.route, url: `${url.pathname}${url.search}`, status, seconds, reply });
    if (reply.kind === 'body') {
      const body = request.method === 'HEAD' || reply.status === 204 ? null : reply.body;
      return new Response(body as BodyInit | null, { status: reply.status, headers: reply.headers });
    }
    const metrics = opts.metrics;
    const taskId = reply.task.id;
    const encoder = new TextEncoder();
    let session: SseSession | undefined;
    let drained: (() => void) | undefined;
    const stream = new ReadableStream<Uint8Array>(
      {
        start(controller) {
          let closed = false;
          const transport: SseTransport = {
            write: (chunk) => {
              if (closed) return;
              if (metrics !== undefined && chunk.charCodeAt(0) === 0x69) metrics.framesSent(1);
              controller.enqueue(encoder.encode(chunk));
            },
            buffered: () => Math.max(0, opts.maxBufferedBytes - (controller.desiredSize ?? 0)),
            end: () => {
              if (!closed) controller.close();
              closed = true;
            },
            destroy: () => {
              if (!closed) controller.error(new Error('taskstream: stalled reader dropped; resume with Last-Event-ID'));
              closed = true;
            },
            onDrain: (callback) => {
              drained = callback;
            },
          };
          session = new SseSession(transport, reply.task, streams);
          heartbeat.add(session);
          runtime.report('stream:opened', { taskId });
          session.start(runtime, reply.afterSeq);
        },
        pull(controller) {
          // The reader took enough to make room again: a paused stream resumes.
          if (drained !== undefined && (controller.desiredSize ?? 0) > 0) {
            const callback = drained;
            drained = undefined;
            callback();
          }
        },
        cancel() {
          session?.disconnected();
        },
      },
      { highWaterMark: opts.maxBufferedBytes, size: (chunk) => chunk.byteLength },
    );
    request.signal.addEventListener('abort', () => session?.disconnected(), { once: true });
    return new Response(stream, { status: 200, headers: { ...reply.headers, ...SSE_HEADERS } });
  };
}

async function readBody(request: Request, limit: number): Promise<Uint8Array | 'too_large'> {
  if (Number(request.headers.get('content-length') ?? 0) > limit) return 'too_large';
  if (request.body === null) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return 'too_large';
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}
