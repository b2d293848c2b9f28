/**
 * bench/replay-server: one server under test, in its own process, for bench/replay.ts.
 *
 *   node --import tsx bench/replay-server.ts --kind taskstream|limit --store sqlite --db FILE
 *   node --import tsx bench/replay-server.ts --kind taskstream|limit --store postgres --db URL --schema NAME
 *
 * Listens on 127.0.0.1 (port 0) and prints one JSON line `{"port"}` on stdout, then answers JSON
 * command lines on stdin with one JSON line each:
 *
 *   {"cmd":"stats"}  → {"cpuUs": user + system µs so far, "rss": bytes now, "maxRss": peak bytes so far,
 *                       "retained": JS heap used + external memory (Buffers) now}
 *   {"cmd":"gc"}     → the same, after a full garbage collection (run with --expose-gc)
 *   {"cmd":"exit"}   → exits (so `--cpu-prof` writes its profile)
 *
 * Both serve GET /stream/bench/Log/{id} (with Last-Event-ID) as SSE with the same frames:
 * - taskstream: the whole runtime and HTTP handler (`createHandler`) on `sqliteStore(FILE)` or
 *   `postgresStore({ connectionString: URL, schema: NAME })` (its default pool of 10 connections),
 *   the default options (256 KiB stream buffer) but for heartbeats (hourly); it also runs the `bench/Log` task type that
 *   bench/replay.ts uses to write the logs (`POST /tasks/bench/Log`, then the signal `go`).
 * - limit: a plain node:http server that range-reads the rows from the same tables, pages of at
 *   most 1000 rows or 256 KiB like the store's read, keyset by seq, builds each frame in one
 *   template string and writes it, awaiting `drain` whenever `write` returns false: the least a
 *   server can do to replay this log with backpressure.
 *   - SQLite: better-sqlite3, one connection, iterating a page's rows until 256 KiB.
 *   - PostgreSQL: plain `pg`, a pool of 10 like the store's, one prepared statement
 *     `… WHERE task_id = $1 AND seq > $2 ORDER BY seq LIMIT $3` per page. A row-limited statement
 *     cannot stop at a byte count, so each stream sizes its next page from the last one
 *     (256 KiB / the largest row so far + 1, at most 1000; the first page is one row): on these
 *     logs of equal-sized events those are the store's pages exactly.
 */
import Database from 'better-sqlite3';
import http from 'node:http';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { z } from 'zod';
import { createHandler, createTaskstream, defineTask, sqliteStore, type Store } from '../src/index.js';
import { postgresStore } from '../src/store/postgres/index.js';

const { values: args } = parseArgs({ options: { kind: { type: 'string' }, store: { type: 'string', default: 'sqlite' }, db: { type: 'string' }, schema: { type: 'string' } } });
const USAGE = 'usage: replay-server.ts --kind taskstream|limit (--store sqlite --db FILE | --store postgres --db URL --schema NAME)';
if (args.db === undefined || (args.kind !== 'taskstream' && args.kind !== 'limit')) throw new TypeError(USAGE);
if (args.store !== 'sqlite' && !(args.store === 'postgres' && args.schema !== undefined && /^[a-z_][a-z0-9_]*$/.test(args.schema))) throw new TypeError(USAGE);
const reply = (o: object): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

/** Waits for the signal `go`, then sends `count` events of `size` bytes of padding, 50 in flight. */
const Log = defineTask({
  app: 'bench',
  type: 'Log',
  input: z.object({ count: z.number().int().positive(), size: z.number().int().positive() }),
  async run(ctx, { count, size }) {
    await ctx.waitForSignal('go');
    const pad = 'x'.repeat(Math.max(0, size - 20));
    let batch: Array<Promise<void>> = [];
    for (let i = 1; i <= count; i++) {
      batch.push(ctx.send('tick', { i, pad }));
      if (batch.length === 50) {
        await Promise.all(batch);
        batch = [];
      }
    }
    await Promise.all(batch);
    return count;
  },
});

async function taskstreamServer(store: Store): Promise<{ server: http.Server; close(): Promise<void> }> {
  const runtime = await createTaskstream({ store, tasks: [Log], maxEventBytes: 2 << 20 });
  // Heartbeats every hour, not 15 s: a replay that takes longer would get `: ping` comments, a
  // different number per stream, and the bench checks every stream got the same bytes as the limit's.
  const server = http.createServer(createHandler(runtime, { dashboard: false, heartbeatMs: 3_600_000 }));
  return { server, close: () => runtime.close({ timeoutMs: 1000 }) };
}

interface Row { seq: number; type: string; data: string; at: number | string }
const PAGE_ROWS = 1000;
const PAGE_BYTES = 256 * 1024;

/** Where the limit reads from: the task's app and type, and the next page of a stream after `after`. */
interface Source {
  task(id: number): Promise<{ app: string; type: string } | undefined>;
  /** Returns a reader of one stream's pages (a stream may keep state between its pages). */
  pages(id: number): (after: number) => Promise<Row[]>;
  close(): Promise<void>;
}

function sqliteSource(file: string): Source {
  const db = new Database(file, { readonly: true });
  db.pragma('busy_timeout = 5000');
  const page = db.prepare('SELECT seq, type, data, at FROM events WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?');
  const task = db.prepare('SELECT app, type FROM tasks WHERE id = ?');
  return {
    task: async (id) => task.get(id) as { app: string; type: string } | undefined,
    pages: (id) => async (after) => {
      const rows: Row[] = [];
      let bytes = 0;
      for (const row of page.iterate(id, after, PAGE_ROWS) as IterableIterator<Row>) {
        rows.push(row);
        bytes += row.data.length;
        if (bytes >= PAGE_BYTES) break;
      }
      return rows;
    },
    close: async () => void db.close(),
  };
}

function postgresSource(url: string, schema: string): Source {
  const pool = new pg.Pool({ connectionString: url, max: 10, idleTimeoutMillis: 30_000 });
  pool.on('error', () => {});
  const page = `SELECT seq, type, data, at FROM ${schema}.events WHERE task_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`;
  return {
    async task(id) {
      return (await pool.query<{ app: string; type: string }>(`SELECT app, type FROM ${schema}.tasks WHERE id = $1`, [id])).rows[0];
    },
    pages(id) {
      let rows = 1;
      let largest = 0;
      return async (after) => {
        const page_ = (await pool.query<Row>({ name: 'page', text: page, values: [id, after, rows] })).rows;
        for (const r of page_) largest = Math.max(largest, r.data.length);
        rows = Math.min(PAGE_ROWS, Math.floor(PAGE_BYTES / Math.max(1, largest)) + 1);
        return page_;
      };
    },
    close: () => pool.end(),
  };
}

function limitServer(source: Source): { server: http.Server; close(): Promise<void> } {
  const server = http.createServer((req, res) => {
    void (async () => {
      const m = /^\/stream\/[^/]+\/[^/]+\/(\d+)$/.exec(req.url ?? '');
      const meta = m ? await source.task(Number(m[1])) : undefined;
      if (!m || !meta) {
        res.writeHead(404).end();
        return;
      }
      const id = Number(m[1]);
      const next = source.pages(id);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('retry: 2000\n\n');
      let after = Number(req.headers['last-event-id'] ?? 0);
      for (;;) {
        const rows = await next(after);
        if (rows.length === 0) break;
        for (const r of rows) {
          const meta2 = `"_task_id":${id},"_app":"${meta.app}","_model":"${meta.type}","_timestamp":"${new Date(Number(r.at)).toISOString()}","_seq":${r.seq}}`;
          const data = r.data.length > 2 ? `${r.data.slice(0, -1)},${meta2}` : `{${meta2}`;
          if (!res.write(`id: ${r.seq}\nevent: ${r.type}\ndata: ${data}\n\n`)) await once(res, 'drain');
          after = r.seq;
        }
      }
      res.end();
    })().catch(() => res.destroy());
  });
  return { server, close: () => source.close() };
}

const { server, close } = args.store === 'postgres'
  ? args.kind === 'taskstream'
    ? await taskstreamServer(postgresStore({ connectionString: args.db, schema: args.schema! }))
    : limitServer(postgresSource(args.db, args.schema!))
  : args.kind === 'taskstream'
    ? await taskstreamServer(sqliteStore(args.db))
    : limitServer(sqliteSource(args.db));
server.listen(0, '127.0.0.1', () => reply({ port: (server.address() as { port: number }).port }));

for await (const line of createInterface({ input: process.stdin })) {
  const cmd = (JSON.parse(line) as { cmd: string }).cmd;
  if (cmd === 'stats' || cmd === 'gc') {
    if (cmd === 'gc') (globalThis as { gc?: () => void }).gc?.();
    const cpu = process.cpuUsage();
    const mem = process.memoryUsage();
    reply({ cpuUs: cpu.user + cpu.system, rss: mem.rss, maxRss: process.resourceUsage().maxRSS * 1024, retained: mem.heapUsed + mem.external });
  } else if (cmd === 'exit') {
    server.closeAllConnections();
    server.close();
    await close();
    process.exit(0);
  }
}
