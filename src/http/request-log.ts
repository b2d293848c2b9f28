/**
 * One log line per request, with its request id. Credentials never reach a line: headers are not
 * logged, and every query parameter but a known few is replaced by `[redacted]` (a stream token
 * travels as `?token=`).
 *
 * Levels: routine reads that succeed (GET/HEAD below 400, and /health, /ready, /metrics) at
 * debug, so a dashboard polling the list does not flood the log; writes and refusals at info;
 * 5xx at error.
 */
import type { Logger } from '../logger.js';
import type { Reply } from './routes.js';

const SAFE_PARAMS: ReadonlySet<string> = new Set(['app', 'type', 'status', 'limit', 'before', 'last_event_id']);

/** The request URL with every parameter not known to be harmless redacted. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  const out = new URLSearchParams();
  for (const [key, value] of params) out.append(key, SAFE_PARAMS.has(key) ? value : '[redacted]');
  return `${url.slice(0, q)}?${out.toString().replaceAll('%5Bredacted%5D', '[redacted]')}`;
}

/** A client's `X-Request-Id` when it is a plain token (so it cannot forge log lines); else undefined. */
export function safeRequestId(value: string | string[] | undefined | null): string | undefined {
  return typeof value === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(value) ? value : undefined;
}

export interface RequestSummary {
  readonly requestId: string;
  readonly method: string;
  readonly route: string;
  readonly url: string;
  readonly status: number;
  readonly seconds: number;
  readonly reply: Reply;
}

export function logRequest(logger: Logger, r: RequestSummary): void {
  const line: Record<string, unknown> = {
    reqId: r.requestId, method: r.method, route: r.route, url: redactUrl(r.url), status: r.status, ms: Math.round(r.seconds * 1e4) / 10,
  };
  if (r.status >= 400 && r.reply.kind === 'body') line.error = errorCode(r.reply.body);
  const routine = ((r.method === 'GET' || r.method === 'HEAD') && r.status < 400) || r.route === '/health' || r.route === '/ready' || r.route === '/metrics';
  if (r.status >= 500) logger.error(line, 'request');
  else if (routine) logger.debug(line, 'request');
  else logger.info(line, 'request');
}

function errorCode(body: string | Uint8Array): string | undefined {
  if (typeof body !== 'string' || !body.startsWith('{')) return undefined;
  try {
    const code = (JSON.parse(body) as { error?: unknown }).error;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}
