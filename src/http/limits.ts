/**
 * Limits that answer instead of hanging: open streams per handler (503), requests per second per
 * client address (429), body size (413), JSON depth (400), and how long a request may take to
 * arrive (the connection is closed).
 *
 * The rate limiter is rate-limiter-flexible's: in memory by default (per process), or on a Redis
 * client (node-redis v4+) so the limit holds across a cluster. Each client address gets
 * `points` requests per second; a refused request is told when the next one is allowed.
 */
import { checkCount } from '../task/define.js';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

export interface RateLimitOptions {
  /** Requests per client address per window (also the burst). */
  readonly points: number;
  /** The window, in seconds. Default 1 (`points` requests per second). */
  readonly durationSec?: number;
  /**
   * Where the counters live: `'memory'` (default; this process only) or a connected node-redis
   * client, so every process of a cluster shares them.
   */
  readonly store?: 'memory' | object;
  /** Prefix of the Redis keys. Default `taskstream:rl`. */
  readonly keyPrefix?: string;
}

export interface LimitsOptions {
  /** Open SSE streams per handler; the next one gets 503 with Retry-After. Default: no limit. */
  readonly maxStreams?: number;
  readonly rateLimit?: RateLimitOptions;
  /** Deepest JSON nesting a request body may have. Default 64. */
  readonly maxJsonDepth?: number;
  /** A request body that has not fully arrived this long after the request began: the connection is closed. Default 30000. */
  readonly bodyTimeoutMs?: number;
  /** For the Node server (`serverTimeouts`): request headers must arrive within this. Default 10000. */
  readonly headersTimeoutMs?: number;
}

export interface ResolvedLimits {
  readonly maxStreams: number;
  readonly maxJsonDepth: number;
  readonly bodyTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly limiter: RateLimiter | undefined;
}

export function resolveLimits(options: LimitsOptions | undefined): ResolvedLimits {
  const o = options ?? {};
  if (o === null || typeof o !== 'object') throw new TypeError('http option limits must be an object');
  const resolved = {
    maxStreams: o.maxStreams ?? Infinity,
    maxJsonDepth: o.maxJsonDepth ?? 64,
    bodyTimeoutMs: o.bodyTimeoutMs ?? 30_000,
    headersTimeoutMs: o.headersTimeoutMs ?? 10_000,
  };
  for (const key of ['maxStreams', 'maxJsonDepth', 'bodyTimeoutMs', 'headersTimeoutMs'] as const) {
    const value = resolved[key];
    if (value === Infinity && key === 'maxStreams') continue;
    checkCount(`http option limits.${key}`, value, 1);
  }
  return { ...resolved, limiter: o.rateLimit === undefined ? undefined : new RateLimiter(o.rateLimit) };
}

/** Sets a Node server's header and request timeouts from the limits (what `taskstream serve` does). */
export function serverTimeouts(limits: LimitsOptions = {}): { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number } {
  const resolved = resolveLimits({ ...limits, rateLimit: undefined });
  // requestTimeout covers headers and body; it must not be shorter than headersTimeout. An SSE
  // response is not affected: the timeout stops once the request has been received. Node checks
  // both on an interval (default 30 s, which would triple a 10 s limit): a quarter of the limit,
  // at most a second (one walk over the open connections).
  return {
    headersTimeout: resolved.headersTimeoutMs,
    requestTimeout: Math.max(resolved.headersTimeoutMs, resolved.bodyTimeoutMs),
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(resolved.headersTimeoutMs / 4))),
  };
}

export class RateLimiter {
  readonly #limiter: RateLimiterAbstract;

  constructor(options: RateLimitOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('http option limits.rateLimit must be { points, store? }');
    const { points } = options;
    checkCount('http option limits.rateLimit.points', points, 1);
    const duration = options.durationSec ?? 1;
    checkCount('http option limits.rateLimit.durationSec', duration, 1);
    const store = options.store ?? 'memory';
    if (store === 'memory') {
      this.#limiter = new RateLimiterMemory({ points, duration });
    } else if (store !== null && typeof store === 'object') {
      this.#limiter = new RateLimiterRedis({
        storeClient: store, useRedisPackage: true, points, duration, keyPrefix: options.keyPrefix ?? 'taskstream:rl',
        // Redis down: fall back to a per-process limit rather than refusing everyone.
        insuranceLimiter: new RateLimiterMemory({ points, duration }),
      });
    } else {
      throw new TypeError("http option limits.rateLimit.store must be 'memory' or a connected node-redis client");
    }
  }

  /** Takes one request from `address`'s budget: undefined when allowed, else seconds until the next is. */
  async take(address: string): Promise<number | undefined> {
    try {
      await this.#limiter.consume(address, 1);
      return undefined;
    } catch (res) {
      if (res instanceof RateLimiterRes) return Math.max(1, Math.ceil(res.msBeforeNext / 1000));
      throw res;
    }
  }
}

/**
 * The deepest nesting of arrays and objects in a JSON text, stopping early past `limit`: one
 * pass over the characters, skipping strings. Run before `JSON.parse`, so a hostile body never
 * builds a value that `JSON.stringify` later overflows the stack on.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}
