/**
 * Store and bus from the command line: `--db` (a SQLite file, or `postgres://…`), `--redis
 * redis://…` and `--redis-prefix P`. The optional drivers (pg, redis) are imported only when a
 * flag asks for them, so a SQLite-only install never loads them.
 */
import { Option } from 'commander';
import { resolve } from 'node:path';
import type { Bus } from '../bus/types.js';
import { taskJson } from '../http/task-json.js';
import { sqliteStore, type Store, type TaskStatus } from '../index.js';
import { UsageError } from './args.js';
import { cleanup, migrate, type CleanupOptions } from './db.js';
import { taskTable } from './render.js';

export interface BackendFlags {
  readonly db: string;
  readonly redis?: string | undefined;
  readonly redisPrefix?: string | undefined;
}

export interface Backend {
  readonly store: Store;
  /** Undefined: one process (or several on one SQLite file) on the in-process bus. */
  readonly bus: Bus | undefined;
  /** For the lifecycle line: where tasks are stored and how processes hear of them. */
  readonly description: string;
}

export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//.test(db);
}

/** The URL with its password masked, for printing. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

/**
 * Opens the store (not yet migrated) and the bus (not yet connected) the flags name.
 * `onRedisConnected`: told when the Redis bus loses Redis and when it has it back.
 */
export async function openBackend(flags: BackendFlags, onBusError: (err: unknown) => void, onRedisConnected?: (connected: boolean) => void): Promise<Backend> {
  if (flags.redisPrefix !== undefined && flags.redis === undefined) throw new UsageError('--redis-prefix needs --redis');
  if (flags.redis !== undefined && !/^rediss?:\/\//.test(flags.redis)) throw new UsageError(`--redis ${flags.redis}: expected a redis:// or rediss:// URL`);
  const bus = flags.redis === undefined ? undefined : await openRedisBus(flags.redis, flags.redisPrefix, onBusError, onRedisConnected);
  const via = flags.redis === undefined ? '' : `, bus ${redact(flags.redis)} (prefix ${flags.redisPrefix ?? 'taskstream'})`;
  if (isPostgresUrl(flags.db)) return openPostgres(flags.db, bus, via, onBusError);
  const path = flags.db === ':memory:' ? flags.db : resolve(flags.db);
  return { store: sqliteStore(path), bus, description: `store ${path}${via}` };
}

async function openRedisBus(url: string, prefix: string | undefined, onError: (err: unknown) => void, onConnected: ((connected: boolean) => void) | undefined): Promise<Bus> {
  const { redisBus } = await import('../bus/redis/index.js').catch((err: unknown) => {
    throw new UsageError(`--redis needs the optional dependency "redis" (npm install redis): ${err instanceof Error ? err.message : String(err)}`);
  });
  return redisBus({ url, prefix, onError, onConnected });
}

/**
 * PostgreSQL: the store's pool for tasks and events; without `--redis`, a LISTEN/NOTIFY bus on a
 * small pool of its own that reads hinted events through the store.
 */
async function openPostgres(db: string, redis: Bus | undefined, via: string, onBusError: (err: unknown) => void): Promise<Backend> {
  const { postgresStore, postgresBus } = await import('../store/postgres/index.js');
  const store = postgresStore({ connectionString: db });
  const bus = redis ?? postgresBus({ connectionString: db, store, onError: onBusError });
  const how = redis === undefined ? ', bus PostgreSQL LISTEN/NOTIFY' : via;
  return { store, bus, description: `store ${redact(db)}${how}` };
}

/** `--db`, with `TASKSTREAM_DB`. */
export function dbOption(): Option {
  return new Option('--db <path|url>', 'SQLite database file, or postgres://user@host:port/db').env('TASKSTREAM_DB').default('./taskstream.db');
}

/** `--redis` and `--redis-prefix`, with `TASKSTREAM_REDIS` and `TASKSTREAM_REDIS_PREFIX`. */
export function redisOptions(): Option[] {
  return [
    new Option('--redis <url>', 'Redis carrying live events and commands between serve processes (redis://host:port)').env('TASKSTREAM_REDIS'),
    new Option('--redis-prefix <prefix>', 'namespace of every Redis channel (default taskstream)').env('TASKSTREAM_REDIS_PREFIX'),
  ];
}

/** `migrate`: SQLite as before; PostgreSQL prints what its store applied. */
export async function migrateCommand(options: { db: string }, out: (line: string) => void): Promise<void> {
  if (!isPostgresUrl(options.db)) return migrate(options, out);
  const { store } = await openBackend({ db: options.db }, () => {});
  try {
    const report = await store.migrate();
    for (const name of report.applied) out(`taskstream: applied migration ${name}`);
    out(report.applied.length === 0
      ? `taskstream: ${redact(options.db)} is up to date; nothing to apply`
      : `taskstream: ${redact(options.db)} migrated (${report.applied.length} applied)`);
  } finally {
    await store.close();
  }
}

/** `cleanup`: the same count-then-delete on either store. */
export async function cleanupCommand(options: CleanupOptions, out: (line: string) => void): Promise<void> {
  if (!isPostgresUrl(options.db)) return cleanup(options, out);
  const { store } = await openBackend({ db: options.db }, () => {});
  try {
    await store.migrate();
    const count = await store.prune({ before: Date.now() - options.olderThan, dryRun: options.dryRun ?? false });
    const what = count === 1 ? 'finished task' : 'finished tasks';
    out(options.dryRun
      ? `taskstream: would delete ${count} ${what} older than ${options.olderThan} ms (dry run)`
      : `taskstream: deleted ${count} ${what} older than ${options.olderThan} ms`);
  } finally {
    await store.close();
  }
}

/** `list --db`: reads the database directly (no server), printed like the remote `list`. */
export async function listFromDb(
  options: { db: string; app?: string; type?: string; status?: string; limit: number; before?: number; json?: boolean },
  out: (line: string) => void,
): Promise<number> {
  const { store } = await openBackend({ db: options.db }, () => {});
  try {
    await store.migrate();
    const page = await store.listTasks({
      limit: options.limit, app: options.app, type: options.type, status: options.status as TaskStatus | undefined, before: options.before,
    });
    const tasks = page.tasks.map((t) => taskJson(t, ''));
    if (options.json === true) out(JSON.stringify({ tasks, next: page.next }));
    else if (tasks.length === 0) out('no tasks');
    else {
      for (const line of taskTable(tasks)) out(line);
      if (page.next !== null) out(`(more: --before ${page.next})`);
    }
    return 0;
  } finally {
    await store.close();
  }
}
