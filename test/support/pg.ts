/**
 * The test PostgreSQL: `TASKSTREAM_TEST_PG_URL` (default the local server's `postgres` database,
 * used only to create and drop the per-file databases) and `TASKSTREAM_TEST_PG_PREFIX` (the
 * prefix of every database the tests create, default `ts_test_`).
 */
import pg from 'pg';

export function pgSettings(): { url: string; prefix: string } {
  return {
    url: process.env.TASKSTREAM_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    prefix: process.env.TASKSTREAM_TEST_PG_PREFIX ?? 'ts_test_',
  };
}

/** `url` naming database `name` instead (a URL without a path gets one). */
export function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Runs one statement on the admin database (CREATE/DROP DATABASE cannot run in a transaction or a pool's prepared path). */
export async function pgAdmin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: pgSettings().url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Terminates every connection to database `name` but the admin one; returns how many. */
export async function pgTerminate(name: string): Promise<number> {
  const client = new pg.Client({ connectionString: pgSettings().url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    const r = await client.query<{ n: number }>(
      'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
    return r.rows[0]?.n ?? 0;
  } finally {
    await client.end();
  }
}

let reachable: Promise<string | undefined> | undefined;

/** Undefined when the test PostgreSQL answers; else why not. Asked once per process. */
export function pgReachable(): Promise<string | undefined> {
  reachable ??= (async () => {
    const { url } = pgSettings();
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return undefined;
    } catch (err) {
      const where = url.replace(/\/\/[^@]*@/, '//');
      return `PostgreSQL not reachable at ${where} (${(err as Error).message || (err as { code?: string }).code}); set TASKSTREAM_TEST_PG_URL`;
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return reachable;
}
