/**
 * `serve`'s flags for access, limits, browser safety and logging, mapped onto the library's
 * options. serve.ts only calls these.
 */
import { pino } from 'pino';
import type { HttpOptions } from '../http/index.js';
import type { Logger } from '../logger.js';
import { UsageError } from './args.js';

export interface ServeHttpFlags {
  readonly host: string;
  readonly socket?: string;
  readonly apiKey?: readonly string[];
  readonly tokenSecret?: string;
  readonly tokenTtl?: number;
  readonly maxStreams?: number;
  readonly rateLimit?: number;
  readonly corsOrigin?: readonly string[];
  readonly allowedHost?: readonly string[];
  readonly insecure?: boolean;
  readonly examples?: boolean;
  readonly logLevel: string;
  readonly logFormat?: 'json' | 'pretty';
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost', '::ffff:127.0.0.1']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** API keys from `--api-key` (repeatable) and `TASKSTREAM_API_KEYS=k1,k2`. */
export function apiKeys(flags: ServeHttpFlags, env: NodeJS.ProcessEnv = process.env): string[] {
  const fromEnv = (env.TASKSTREAM_API_KEYS ?? '').split(',').map((k) => k.trim()).filter((k) => k !== '');
  return [...new Set([...(flags.apiKey ?? []), ...fromEnv])];
}

/** The handler options `serve` passes to createHandler; throws UsageError for a bad combination. */
export function serveHttpOptions(flags: ServeHttpFlags, env: NodeJS.ProcessEnv = process.env): HttpOptions {
  const keys = apiKeys(flags, env);
  const secret = flags.tokenSecret ?? env.TASKSTREAM_TOKEN_SECRET;
  const local = flags.socket !== undefined || isLoopbackHost(flags.host);
  if (!local && keys.length === 0 && flags.insecure !== true) {
    throw new UsageError(`--host ${flags.host}: refusing to serve beyond loopback without an API key; pass --api-key KEY (or TASKSTREAM_API_KEYS), or --insecure to serve it open anyway`);
  }
  if (secret !== undefined && keys.length === 0) throw new UsageError('--token-secret needs --api-key: without a key the server is open and tokens mean nothing');
  if (secret !== undefined && Buffer.byteLength(secret) < 32) throw new UsageError('--token-secret must be at least 32 bytes (e.g. `openssl rand -hex 32`)');
  if (flags.tokenTtl !== undefined && keys.length === 0) throw new UsageError('--token-ttl needs --api-key');
  try {
    return {
      ...(keys.length === 0 ? {} : {
        access: { apiKeys: keys, ...(secret === undefined ? {} : { tokenSecret: secret }), ...(flags.tokenTtl === undefined ? {} : { tokenTtlMs: flags.tokenTtl }) },
      }),
      limits: {
        ...(flags.maxStreams === undefined ? {} : { maxStreams: flags.maxStreams }),
        ...(flags.rateLimit === undefined ? {} : { rateLimit: { points: flags.rateLimit } }),
      },
      ...(flags.corsOrigin === undefined ? {} : { corsOrigins: flags.corsOrigin }),
      ...(flags.allowedHost === undefined ? {} : { allowedHosts: flags.allowedHost }),
    };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** The examples are a demo (HttpFetchTask fetches any URL): served by default only on loopback or a Unix socket. */
export function servesExamples(flags: ServeHttpFlags): boolean {
  return flags.examples ?? (flags.socket !== undefined || isLoopbackHost(flags.host));
}

/**
 * The server's logger: pino JSON on stderr, or a human format when stderr is a terminal
 * (`--log-format` overrides). Authorization headers and tokens are redacted should any log call
 * carry them.
 */
export function serveLogger(flags: ServeHttpFlags): Logger {
  const pretty = (flags.logFormat ?? (process.stderr.isTTY ? 'pretty' : 'json')) === 'pretty';
  const options = {
    name: 'taskstream',
    level: flags.logLevel,
    redact: { paths: ['headers.authorization', 'req.headers.authorization', 'token', 'apiKey', 'access.apiKeys', 'access.tokenSecret'], censor: '[redacted]' },
  };
  if (pretty) {
    const transport = pino.transport({ target: 'pino-pretty', options: { destination: 2, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' } });
    return pino(options, transport) as Logger;
  }
  return pino(options, pino.destination({ fd: 2, sync: true })) as Logger;
}
