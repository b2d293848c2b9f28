/**
 * bench/replay-server: one server under test, in its own process, for bench/replay.ts.
 *
 *   node --import tsx bench/replay-server.ts --kind taskstream|limit --db FILE
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
 * - taskstream: the whole runtime and HTTP handler (`createHandler`) on `sqliteStore(FILE)`, the
 *   default options (256 KiB stream buffer); it also runs the `bench/Log` task type that
 *   bench/replay.ts uses to write the logs (`POST /tasks/bench/Log`, then the signal `go`).
 * - limit: a plain node:http server that range-reads the rows from the same file with
 *   better-sqlite3 (one connection, pages of at most 1000 rows or 256 KiB, like the store's read),
 *   builds each frame in one template string and writes it, awaiting `drain` whenever `write`
 *   returns false: the least a server can do to replay this log with backpressure.
 */
import Database from 'better-sqlite3';
import http from 'node:http';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createHandler, createTaskstream, defineTask, sqliteStore } from '../src/index.js';

const { values: args } = parseArgs({ options: { kind: { type: 'string' }, db: { type: 'string' } } });
if (args.db === undefined || (args.kind !== 'taskstream' && args.kind !== 'limit')) {
  throw new TypeError('usage: replay-server.ts --kind taskstream|limit --db FILE');
}
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

async function taskstreamServer(file: string): Promise<{ server: http.Server; close(): Promise<void> }> {
  const runtime = await createTaskstream({ store: sqliteStore(file), tasks: [Log], maxEventBytes: 2 << 20 });
  const server = http.createServer(createHandler(runtime, { dashboard: false }));
  return { server, close: () => runtime.close({ timeoutMs: 1000 }) };
}

interface Row { seq: number; type: string; data: string; at: number }
const PAGE_ROWS = 1000;
const PAGE_BYTES = 256 * 1024;

function limitServer(file: string): { server: http.Server; close(): Promise<void> } {
  const db = new Database(file, { readonly: true });
  db.pragma('busy_timeout = 5000');
  const page = db.prepare('SELECT seq, type, data, at FROM events WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?');
  const task = db.prepare('SELECT app, type FROM tasks WHERE id = ?');
  const read = (id: number, after: number): Row[] => {
    const rows: Row[] = [];
    let bytes = 0;
    for (const row of page.iterate(id, after, PAGE_ROWS) as IterableIterator<Row>) {
      rows.push(row);
      bytes += row.data.length;
      if (bytes >= PAGE_BYTES) break;
    }
    return rows;
  };
  const server = http.createServer((req, res) => {
    const m = /^\/stream\/[^/]+\/[^/]+\/(\d+)$/.exec(req.url ?? '');
    const meta = m && (task.get(Number(m[1])) as { app: string; type: string } | undefined);
    if (!m || !meta) {
      res.writeHead(404).end();
      return;
    }
    const id = Number(m[1]);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write('retry: 2000\n\n');
    void (async () => {
      let after = Number(req.headers['last-event-id'] ?? 0);
      for (;;) {
        const rows = read(id, after);
        if (rows.length === 0) break;
        for (const r of rows) {
          const meta2 = `"_task_id":${id},"_app":"${meta.app}","_model":"${meta.type}","_timestamp":"${new Date(r.at).toISOString()}","_seq":${r.seq}}`;
          const data = r.data.length > 2 ? `${r.data.slice(0, -1)},${meta2}` : `{${meta2}`;
          if (!res.write(`id: ${r.seq}\nevent: ${r.type}\ndata: ${data}\n\n`)) await once(res, 'drain');
          after = r.seq;
        }
      }
      res.end();
    })().catch(() => res.destroy());
  });
  return { server, close: async () => void db.close() };
}

const { server, close } = args.kind === 'taskstream' ? await taskstreamServer(args.db) : limitServer(args.db);
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
