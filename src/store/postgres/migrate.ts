import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { MigrationReport } from '../types.js';
import type { PgPool } from './pool.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

/**
 * Applies the numbered SQL files not yet recorded in `<schema>.schema_migrations`, in order, in one
 * transaction. A transaction-scoped advisory lock (keyed by the schema) serialises processes that
 * migrate at once: the second waits, then finds everything applied and reports nothing.
 */
export async function migrate(pool: PgPool, schema: string): Promise<MigrationReport> {
  const files = readdirSync(MIGRATIONS_DIR).filter((f) => /^\d+_.*\.sql$/.test(f)).sort();
  const client = await pool.connect();
  let failure: Error | undefined;
  try {
    await client.query('BEGIN');
    await client.query({ text: "SELECT pg_advisory_xact_lock(hashtext('taskstream.migrate'), hashtext($1))", values: [schema] });
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query(`CREATE TABLE IF NOT EXISTS "${schema}".schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await client.query<{ version: number }>(`SELECT version FROM "${schema}".schema_migrations`)).rows.map((r) => r.version));
    const applied: string[] = [];
    for (const file of files) {
      const version = Number.parseInt(file, 10);
      if (done.has(version)) continue;
      await client.query(`SET LOCAL search_path TO "${schema}"`);
      await client.query(readFileSync(MIGRATIONS_DIR + file, 'utf8'));
      await client.query({ text: `INSERT INTO "${schema}".schema_migrations (version, name) VALUES ($1, $2)`, values: [version, file] });
      applied.push(file);
    }
    await client.query('COMMIT');
    return { applied };
  } catch (err) {
    failure = err as Error;
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release(failure);
  }
}
