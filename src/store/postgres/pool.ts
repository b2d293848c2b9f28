import { StoreUnavailableError } from '../../errors.js';

/**
 * The slice of a node-postgres pool the store uses. A `pg.Pool` fits as it is; anything else that
 * fits (a wrapper that injects faults, a pool with its own metrics) can be given instead.
 */
export interface PgQueryResult<R> {
  readonly rows: R[];
  readonly rowCount: number | null;
}

export interface PgQueryConfig {
  /** A name makes node-postgres prepare the statement once per connection. */
  readonly name?: string;
  readonly text: string;
  readonly values?: readonly unknown[];
}

export interface PgClient {
  query<R = Record<string, unknown>>(query: PgQueryConfig | string, values?: readonly unknown[]): Promise<PgQueryResult<R>>;
  /** Pass the error when the connection may be broken, so the pool discards it instead of reusing it. */
  release(err?: Error | boolean): void;
}

export interface PgPool {
  query<R = Record<string, unknown>>(query: PgQueryConfig | string, values?: readonly unknown[]): Promise<PgQueryResult<R>>;
  connect(): Promise<PgClient>;
  end(): Promise<void>;
  /** node-postgres emits `error` for an idle connection the server dropped; without a listener that would crash the process. */
  on?(event: 'error', listener: (err: Error) => void): unknown;
}

export interface PoolSettings {
  readonly connectionString: string;
  readonly max: number;
  readonly connectionTimeoutMillis: number;
}

/** Opens a `pg.Pool`; `pg` is an optional peer dependency, loaded only when a connection string is given. */
export async function openPool(settings: PoolSettings): Promise<PgPool> {
  let pg: typeof import('pg');
  try {
    pg = await import('pg');
  } catch (cause) {
    throw new Error('postgresStore: the "pg" package is not installed; npm install pg', { cause });
  }
  const Pool = pg.default?.Pool ?? pg.Pool;
  return new Pool({
    connectionString: settings.connectionString,
    max: settings.max,
    connectionTimeoutMillis: settings.connectionTimeoutMillis,
    idleTimeoutMillis: 30_000,
  }) as unknown as PgPool;
}

/**
 * Errors that say the connection or the server went away, not that the statement was wrong:
 * worth a retry on another connection. Class 08 (connection exception), 57P01-57P03 (admin or
 * crash shutdown, cannot connect now), 53300 (too many connections), 40001/40P01 (serialization
 * failure, deadlock), and the socket errors node reports before any SQLSTATE exists.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return true;
    if (code === '40001' || code === '40P01') return true;
    if (['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH'].includes(code)) return true;
  }
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i.test(err.message);
}

/**
 * Runs `work`, retrying transient failures with a short backoff (20 ms doubling, up to `attempts`
 * tries), then gives up with a StoreUnavailableError carrying the driver's error. Only for work
 * that is safe to run again: each store operation says whether it is.
 */
export async function withRetry<T>(what: string, attempts: number, work: () => Promise<T>): Promise<T> {
  let delay = 20;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (!isTransient(err)) throw err;
      if (attempt >= attempts) {
        if (err instanceof StoreUnavailableError) throw err;
        throw new StoreUnavailableError(`postgres store: ${what} failed: ${(err as Error).message}`, { cause: err });
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 1000);
    }
  }
}
