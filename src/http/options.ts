import type { Logger } from '../logger.js';
import type { Taskstream } from '../runtime/runtime.js';
import { checkPositive } from '../task/define.js';
import { Access, type AccessOptions } from './access.js';
import { type LimitsOptions, type ResolvedLimits, resolveLimits } from './limits.js';
import { createMetrics, type TaskstreamMetrics } from './metrics.js';
import { type CorsPolicy, type HostPolicy, resolveCors, resolveHosts } from './security-headers.js';

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
  /** API keys and stream tokens. Without `apiKeys` the server is open (bind it to loopback only). */
  readonly access?: AccessOptions;
  /** Open streams, rate limit, JSON depth, body timeout. */
  readonly limits?: LimitsOptions;
  /** Origins that get CORS headers (preflight included); no other origin does. Default none. */
  readonly corsOrigins?: readonly string[];
  /** Names besides localhost, 127.x.x.x and [::1] a loopback-bound server answers to (DNS rebinding guard). */
  readonly allowedHosts?: readonly string[];
  /** `/metrics`: a registry made for this handler (default), one shared with another handler (`createMetrics`), or false for none. */
  readonly metrics?: TaskstreamMetrics | false;
  /** Request log lines (a pino logger fits). Default: the runtime's logger. */
  readonly logger?: Logger;
}

type Plain = Omit<HttpOptions, 'access' | 'limits' | 'corsOrigins' | 'allowedHosts' | 'metrics' | 'logger'>;

export interface ResolvedHttpOptions extends Required<Plain> {
  readonly access: Access | undefined;
  readonly limits: ResolvedLimits;
  readonly cors: CorsPolicy;
  readonly hosts: HostPolicy;
  readonly metrics: TaskstreamMetrics | undefined;
  readonly logger: Logger;
}

export function resolveHttpOptions(runtime: Taskstream, options: HttpOptions = {}): ResolvedHttpOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('http options must be an object');
  const plain = resolvePlain(options);
  return {
    ...plain,
    access: Access.from(options.access),
    limits: resolveLimits(options.limits),
    cors: resolveCors(options.corsOrigins),
    hosts: resolveHosts(options.allowedHosts),
    metrics: options.metrics === false ? undefined : options.metrics ?? createMetrics(runtime),
    logger: options.logger ?? runtime.logger,
  };
}

function resolvePlain(options: HttpOptions): Required<Plain> {
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
