import { checkPositive } from '../task/define.js';

export interface HttpOptions {
  /** Mount prefix: stripped from request paths that start with it, and put in front of generated URLs. */
  readonly basePath?: string;
  /** Comment lines keep idle streams open at least this often. Default 15000. */
  readonly heartbeatMs?: number;
  /** The SSE `retry:` field: how long clients wait before reconnecting. Default 2000. */
  readonly retryMs?: number;
  /** Largest request body. Default 1 MiB. */
  readonly maxBodyBytes?: number;
  /** A stream's unsent backlog at most; past it the stream pauses and later catches up from the store. Default 256 KiB. */
  readonly maxBufferedBytes?: number;
  /** A paused stream whose client takes nothing for this long is dropped (it resumes by Last-Event-ID). Default 30000. */
  readonly stalledClientMs?: number;
  /** Serve the dashboard at `/`. Default true. */
  readonly dashboard?: boolean;
}

export type ResolvedHttpOptions = Required<HttpOptions>;

export function resolveHttpOptions(options: HttpOptions = {}): ResolvedHttpOptions {
  const basePath = options.basePath ?? '';
  if (typeof basePath !== 'string' || (basePath !== '' && (!basePath.startsWith('/') || basePath.endsWith('/')))) {
    throw new TypeError(`basePath must be '' or start with '/' and not end with '/', got ${JSON.stringify(basePath)}`);
  }
  const resolved = {
    basePath,
    heartbeatMs: options.heartbeatMs ?? 15_000,
    retryMs: options.retryMs ?? 2000,
    maxBodyBytes: options.maxBodyBytes ?? 1 << 20,
    maxBufferedBytes: options.maxBufferedBytes ?? 256 * 1024,
    stalledClientMs: options.stalledClientMs ?? 30_000,
    dashboard: options.dashboard ?? true,
  };
  for (const key of ['heartbeatMs', 'retryMs', 'maxBodyBytes', 'maxBufferedBytes', 'stalledClientMs'] as const) {
    checkPositive(`http option ${key}`, resolved[key]);
  }
  return resolved;
}

export function stripBase(pathname: string, basePath: string): string {
  if (basePath === '' || !pathname.startsWith(basePath)) return pathname;
  const rest = pathname.slice(basePath.length);
  return rest === '' ? '/' : rest.startsWith('/') ? rest : pathname;
}

export const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
} as const;
