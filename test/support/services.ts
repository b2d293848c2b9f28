/**
 * "Skip unless PostgreSQL / Redis is reachable", for the tests that need one:
 *
 *   import { skipUnlessPostgres, skipUnlessRedis } from '../support/services.js';
 *   describe('postgres store', { skip: await skipUnlessPostgres() }, () => { … });
 *
 * Each resolves to false when the service answers (the suite runs) or to the reason it does not
 * (node's test runner reports the suite as skipped with that reason, never as passed). The check
 * is a real round trip (`SELECT 1`, `PING`) bounded by two seconds, done once per process.
 *
 * Where the services must be there (CI), TASKSTREAM_TEST_REQUIRE=postgres,redis turns a missing
 * one into a failure instead of a skip.
 */
import pg from 'pg';
import { createClient } from 'redis';
import { within } from './within.js';

/** The server the PostgreSQL tests use (they create and drop their own databases on it). */
export const POSTGRES_URL = process.env.TASKSTREAM_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** The Redis the tests use (each with its own key prefix). */
export const REDIS_URL = process.env.TASKSTREAM_TEST_REDIS ?? 'redis://127.0.0.1:6379';

const CHECK_MS = 2000;
const required = new Set((process.env.TASKSTREAM_TEST_REQUIRE ?? '').split(',').map((s) => s.trim()).filter(Boolean));
/** One probe per URL per process. */
const checks = new Map<string, Promise<string | false>>();

export function skipUnlessPostgres(url = POSTGRES_URL): Promise<string | false> {
  return once('postgres', url, async () => {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CHECK_MS });
    try {
      await client.connect();
      await client.query('SELECT 1');
    } finally {
      await client.end().catch(() => undefined);
    }
  });
}

export function skipUnlessRedis(url = REDIS_URL): Promise<string | false> {
  return once('redis', url, async () => {
    // No reconnection: one attempt, then the reason.
    const client = createClient({ url, socket: { connectTimeout: CHECK_MS, reconnectStrategy: false } });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
    } finally {
      client.destroy();
    }
  });
}

function once(name: string, url: string, probe: () => Promise<void>): Promise<string | false> {
  let check = checks.get(url);
  if (!check) {
    check = within(CHECK_MS + 500, probe(), `${name} at ${url}`).then(
      () => false as const,
      (err: unknown) => {
        const reason = `${name} not reachable at ${url} (${err instanceof Error ? err.message : String(err)}); set TASKSTREAM_TEST_${name.toUpperCase()} to use another`;
        if (required.has(name)) throw new Error(`${reason}, and TASKSTREAM_TEST_REQUIRE names it`);
        return reason;
      },
    );
    checks.set(url, check);
  }
  return check;
}
