/**
 * `migrate` and `cleanup`: work on the database file directly, no server needed.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { sqliteStore } from '../index.js';
import { UsageError } from './args.js';

export interface DbOptions {
  readonly db: string;
}

/** Rejects what this build cannot open, before anything touches the disk. */
export function checkDbPath(db: string): string {
  if (/^postgres(ql)?:\/\//.test(db)) throw new UsageError(`--db ${db}: PostgreSQL stores are not available in this build; use a SQLite file path`);
  if (db === ':memory:') return db;
  const path = resolve(db);
  checkSqliteFile(path);
  return path;
}

/**
 * A file that exists and is not SQLite is refused with its path (SQLite itself only says "file is
 * not a database"). An empty or missing file is fine: the store creates the schema in it.
 */
function checkSqliteFile(path: string): void {
  let header: Buffer;
  try {
    if (!statSync(path).isFile()) throw new UsageError(`--db ${path}: not a file`);
    const fd = openSync(path, 'r');
    try {
      header = Buffer.alloc(16);
      header = header.subarray(0, readSync(fd, header, 0, 16, 0));
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (header.length > 0 && header.toString('latin1') !== 'SQLite format 3\0') {
    throw new UsageError(`--db ${path}: not a SQLite database (give a new file name, or an existing taskstream database)`);
  }
}

/** Applies pending migrations; prints each one applied (the store's own report), or that the schema was current. */
export async function migrate(options: DbOptions, out: (line: string) => void): Promise<void> {
  const path = checkDbPath(options.db);
  const store = sqliteStore(path);
  let applied: readonly string[];
  try {
    ({ applied } = await store.migrate());
  } finally {
    await store.close();
  }
  for (const name of applied) out(`taskstream: applied migration ${name}`);
  out(applied.length === 0
    ? `taskstream: ${path} is up to date; nothing to apply`
    : `taskstream: ${path} migrated (${applied.length} applied: ${applied.join(', ')})`);
}

export interface CleanupOptions extends DbOptions {
  readonly olderThan: number;
  readonly dryRun?: boolean;
}

/**
 * Deletes finished tasks (and their events) that finished more than `olderThan` ms ago. The count
 * printed is the store's own: what it would delete (dry run) or what it deleted.
 */
export async function cleanup(options: CleanupOptions, out: (line: string) => void): Promise<void> {
  const path = checkDbPath(options.db);
  if (path !== ':memory:' && !existsSync(path)) throw new Error(`no database at ${path} (nothing to clean up)`);
  const store = sqliteStore(path);
  try {
    await store.migrate();
    const count = await store.prune({ before: Date.now() - options.olderThan, dryRun: options.dryRun ?? false });
    const what = count === 1 ? 'finished task' : 'finished tasks';
    out(options.dryRun
      ? `taskstream: would delete ${count} ${what} older than ${formatDuration(options.olderThan)} (dry run)`
      : `taskstream: deleted ${count} ${what} older than ${formatDuration(options.olderThan)}`);
  } finally {
    await store.close();
  }
}

function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
