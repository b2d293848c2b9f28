/**
 * Access: API keys for every route but `/health`, `/ready` and the dashboard's files, and
 * per-task stream tokens (JWT, HS256) for the routes of one task.
 *
 * Keys are compared in constant time: each configured key and the presented value are hashed
 * (SHA-256, so lengths match) and compared with `timingSafeEqual`, every key every time, so
 * neither the position of a match nor a common prefix shows in the timing.
 *
 * Tokens are plain JWTs, so any backend can mint them with any JWT library:
 *   header `{"alg":"HS256","typ":"JWT"}`,
 *   claims `aud: "taskstream"`, `sub: "{app}/{type}/{id}"`, `scope: "read[ cancel][ signal]"`, `exp`.
 * Verification pins the algorithm to HS256 (so `alg: none` and asymmetric-key confusion are
 * refused), checks the audience and requires `sub`, `scope` and `exp`. Cost: one HMAC per
 * verified request (a few microseconds); a stream is verified once, when it opens.
 */
import { createHash, createSecretKey, type KeyObject, randomBytes, timingSafeEqual } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';

export type Scope = 'read' | 'cancel' | 'signal';

export interface AccessOptions {
  /** API keys (several at once for rotation). Any of them opens every route. Required to turn Access on. */
  readonly apiKeys?: readonly string[];
  /**
   * The HS256 secret stream tokens are signed with, at least 32 bytes. Give the same secret to
   * every process of a cluster and to the backend that mints tokens. Default: a random secret
   * per handler (tokens minted by this handler work only here).
   */
  readonly tokenSecret?: string | Uint8Array;
  /** Lifetime of the `stream_token` a create returns. Default 15 minutes. */
  readonly tokenTtlMs?: number;
}

export interface TaskName {
  readonly app: string;
  readonly type: string;
  readonly id: number | string;
}

export interface StreamTokenOptions {
  /** The same secret the server has (`tokenSecret`, `--token-secret`), at least 32 bytes. */
  readonly secret: string | Uint8Array;
  readonly task: TaskName;
  /** Scopes beyond `read` (always included): `cancel`, `signal`. Default: read only. */
  readonly scope?: readonly Scope[];
  /** Lifetime. Default 15 minutes. */
  readonly ttlMs?: number;
}

export const TOKEN_AUDIENCE = 'taskstream';
export const DEFAULT_TOKEN_TTL_MS = 15 * 60_000;
const SCOPES: ReadonlySet<string> = new Set<Scope>(['read', 'cancel', 'signal']);

/**
 * Mints a stream token for one task, as the server does for `stream_token`. Use it in the
 * backend that creates tasks for a browser: the browser can then read (and, with the scopes,
 * cancel or signal) that task and nothing else.
 */
export async function createStreamToken(options: StreamTokenOptions): Promise<string> {
  if (options === null || typeof options !== 'object') throw new TypeError('createStreamToken: options are required ({ secret, task })');
  const key = secretKey('createStreamToken: secret', options.secret);
  const scope = scopeClaim(options.scope ?? []);
  const ttlMs = options.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
  checkTtl('createStreamToken: ttlMs', ttlMs);
  return sign(key, subjectOf(options.task), scope, ttlMs);
}

export type Verdict =
  | { readonly ok: true; readonly via: 'key' }
  | { readonly ok: true; readonly via: 'token'; readonly sub: string; readonly scopes: ReadonlySet<string> }
  | { readonly ok: false; readonly status: 401 | 403; readonly message: string };

/** A handler's resolved Access configuration. */
export class Access {
  readonly #keyDigests: readonly Buffer[];
  readonly #secret: KeyObject;
  readonly tokenTtlMs: number;

  private constructor(keys: readonly string[], secret: KeyObject, ttlMs: number) {
    this.#keyDigests = keys.map(digest);
    this.#secret = secret;
    this.tokenTtlMs = ttlMs;
  }

  /** Validates the options; undefined when no API key is configured (the server is open). */
  static from(options: AccessOptions | undefined): Access | undefined {
    if (options === undefined) return undefined;
    if (options === null || typeof options !== 'object') throw new TypeError('http option access must be an object { apiKeys, tokenSecret, tokenTtlMs }');
    const keys = options.apiKeys ?? [];
    if (!Array.isArray(keys)) throw new TypeError('http option access.apiKeys must be an array of strings');
    for (const key of keys) {
      if (typeof key !== 'string' || key.length < 16 || /\s/.test(key)) {
        throw new TypeError('http option access.apiKeys: each key must be a string of at least 16 characters without spaces (e.g. `openssl rand -hex 32`)');
      }
    }
    const ttlMs = options.tokenTtlMs ?? DEFAULT_TOKEN_TTL_MS;
    checkTtl('http option access.tokenTtlMs', ttlMs);
    if (keys.length === 0) {
      if (options.tokenSecret !== undefined) throw new TypeError('http option access.tokenSecret needs access.apiKeys: without an API key the server is open and tokens mean nothing');
      return undefined;
    }
    const secret = options.tokenSecret === undefined ? createSecretKey(randomBytes(32)) : secretKey('http option access.tokenSecret', options.tokenSecret);
    return new Access(keys, secret, ttlMs);
  }

  /** Mints the `read` token a create returns. */
  mint(task: TaskName): Promise<string> {
    return sign(this.#secret, subjectOf(task), 'read', this.tokenTtlMs);
  }

  /** True when `candidate` is one of the API keys; constant time in the candidate and the keys. */
  isKey(candidate: string): boolean {
    const d = digest(candidate);
    let match = false;
    for (const key of this.#keyDigests) match = timingSafeEqual(d, key) || match;
    return match;
  }

  /**
   * Judges the credentials of a request. `bearer` is the Authorization header's token,
   * `queryToken` the `?token=` parameter; `target` is the task the route is about (undefined for
   * routes that need a key) and the scope it needs.
   */
  async judge(bearer: string | undefined, queryToken: string | undefined, target: { sub: string; scope: Scope } | undefined): Promise<Verdict> {
    if (bearer !== undefined && this.isKey(bearer)) return { ok: true, via: 'key' };
    const token = bearer ?? queryToken;
    if (token === undefined) return deny(401, 'credentials required: Authorization: Bearer <API key or stream token>');
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) return deny(401, bearer !== undefined ? 'wrong API key' : 'malformed stream token');
    let payload: { sub?: unknown; scope?: unknown };
    try {
      ({ payload } = await jwtVerify(token, this.#secret, { algorithms: ['HS256'], audience: TOKEN_AUDIENCE, requiredClaims: ['sub', 'scope', 'exp'] }));
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      return deny(401, code === 'ERR_JWT_EXPIRED' ? 'stream token expired' : 'invalid stream token');
    }
    const scopes = typeof payload.scope === 'string' ? new Set(payload.scope.split(' ')) : new Set<string>();
    if (typeof payload.sub !== 'string' || !scopes.has('read')) return deny(401, 'invalid stream token: needs sub and a scope with read');
    if (target === undefined) return deny(403, 'a stream token opens only its own task\'s stream, task, cancel and signal routes; this route needs an API key');
    if (payload.sub !== target.sub) return deny(403, 'this stream token is for another task');
    if (!scopes.has(target.scope)) return deny(403, `this stream token lacks the ${target.scope} scope`);
    return { ok: true, via: 'token', sub: payload.sub, scopes };
  }
}

function deny(status: 401 | 403, message: string): Verdict {
  return { ok: false, status, message };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function sign(key: KeyObject, sub: string, scope: string, ttlMs: number): Promise<string> {
  return new SignJWT({ scope })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setAudience(TOKEN_AUDIENCE)
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor((Date.now() + ttlMs) / 1000))
    .sign(key);
}

export function subjectOf(task: TaskName): string {
  if (task === null || typeof task !== 'object' || typeof task.app !== 'string' || typeof task.type !== 'string' || !/^[1-9]\d*$/.test(String(task.id))) {
    throw new TypeError('stream token: task must be { app, type, id } with a positive whole id');
  }
  return `${task.app}/${task.type}/${task.id}`;
}

function scopeClaim(extra: readonly Scope[]): string {
  if (!Array.isArray(extra)) throw new TypeError('createStreamToken: scope must be an array, e.g. ["cancel"]');
  for (const s of extra) {
    if (!SCOPES.has(s)) throw new TypeError(`createStreamToken: unknown scope ${JSON.stringify(s)}; scopes: read, cancel, signal`);
  }
  return ['read', ...new Set(extra.filter((s) => s !== 'read'))].join(' ');
}

function secretKey(what: string, secret: string | Uint8Array): KeyObject {
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret instanceof Uint8Array ? Buffer.from(secret) : undefined;
  if (bytes === undefined || bytes.length < 32) {
    throw new TypeError(`${what} must be at least 32 bytes (e.g. \`openssl rand -hex 32\`)`);
  }
  return createSecretKey(bytes);
}

function checkTtl(what: string, ms: number): void {
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 1000 || ms > 366 * 86_400_000) {
    throw new TypeError(`${what} must be a whole number of milliseconds from 1000 to a year, got ${String(ms)}`);
  }
}
