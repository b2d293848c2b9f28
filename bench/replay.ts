/**
 * bench/replay: replaying a finished task's log over SSE, beside the limit, in one run.
 *
 *   node --import tsx bench/replay.ts [--store sqlite|postgres|both] [--quick] [--runs 3] [--json]
 *                                     [--sizes 100,10000,1000000] [--clients 1,20]
 *                                     [--cpu-prof DIR]   (profiles every taskstream replay server into DIR)
 *
 * --store (default both): SQLite, a file per log in a fresh temp directory; PostgreSQL, a fresh
 * database per run (TASKSTREAM_BENCH_PG_PREFIX + `replay_` + pid, default prefix `ts_bench_`) on
 * the server at TASKSTREAM_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres),
 * a schema per log, dropped at the end. When PostgreSQL is not reachable its lines are skipped
 * with a message saying so.
 *
 * For each log (100 B, 10 KB and 1 MB events, 20–30 MB each; --quick: a tenth):
 *   1. live: a taskstream server runs a task that writes the log while one client streams it; the
 *      server's CPU per MB delivered is the live baseline (it includes storing the events).
 *   2. replay: the finished log to 1 client, then to 20 clients at once, each from seq 0, from
 *      - taskstream: the runtime and HTTP handler on the store (bench/replay-server.ts);
 *      - limit: a plain node:http server range-reading the same rows from the same tables
 *        (better-sqlite3 on the file; plain `pg` on the database, pages keyset by seq) and writing
 *        the same frames with backpressure.
 *      Each server runs in its own fresh process; the clients (this process) read as fast as they
 *      can and check that both servers sent the same number of bytes.
 * Reported: MB/s (all clients' bytes / wall time), server CPU seconds per MB, the server's peak
 * RSS above its idle RSS per stream; medians of --runs runs, the two servers alternating. On
 * PostgreSQL the CPU is the node server's only (the database's backends are shared with the limit,
 * which runs the same kind of statements; MB/s includes them).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import pg from 'pg';

const { values: args } = parseArgs({
  options: {
    store: { type: 'string', default: 'both' }, quick: { type: 'boolean', default: false }, runs: { type: 'string' }, json: { type: 'boolean', default: false },
    sizes: { type: 'string' }, clients: { type: 'string' }, 'cpu-prof': { type: 'string' },
  },
});
const QUICK = args.quick;
const RUNS = Number(args.runs ?? (QUICK ? 1 : 3));
if (!Number.isInteger(RUNS) || RUNS < 1) throw new TypeError('--runs must be a whole number >= 1');
const LOGS = [
  { name: '100 B', size: 100, count: 200_000 },
  { name: '10 KB', size: 10_000, count: 2_500 },
  { name: '1 MB', size: 1_000_000, count: 30 },
].map((l) => ({ ...l, count: QUICK ? Math.max(3, Math.round(l.count / 10)) : l.count }))
  .filter((l) => args.sizes === undefined || args.sizes.split(',').map(Number).includes(l.size));
if (!['sqlite', 'postgres', 'both'].includes(args.store)) throw new TypeError('--store must be sqlite, postgres or both');
const CLIENTS = args.clients === undefined ? [1, 20] : args.clients.split(',').map(Number);
const STALLED = 20;
const MB = 1e6;
const SERVER = new URL('./replay-server.ts', import.meta.url).pathname;

/** Where a server's store is: a SQLite file, or a schema of the bench's PostgreSQL database. */
type Target = { store: 'sqlite'; file: string } | { store: 'postgres'; url: string; schema: string };
const targetArgs = (t: Target): string[] => t.store === 'sqlite' ? ['--store', 'sqlite', '--db', t.file] : ['--store', 'postgres', '--db', t.url, '--schema', t.schema];

/** The bench's PostgreSQL: a fresh database, or why there is none (skipped). */
const PG_ADMIN_URL = process.env.TASKSTREAM_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const PG_DB = `${process.env.TASKSTREAM_BENCH_PG_PREFIX ?? 'ts_bench_'}replay_${process.pid}`;

async function pgAdmin<R extends object = object>(sql: string, url = PG_ADMIN_URL, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query<R>(sql, values)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

function pgUrl(database: string): string {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

async function createPgDatabase(): Promise<string | undefined> {
  try {
    await pgAdmin(`CREATE DATABASE "${PG_DB}"`);
    return pgUrl(PG_DB);
  } catch (err) {
    const where = PG_ADMIN_URL.replace(/\/\/[^@]*@/, '//');
    process.stderr.write(`replay: PostgreSQL not reachable at ${where} (${(err as Error).message || (err as { code?: string }).code}): `
      + 'skipping the PostgreSQL lines; set TASKSTREAM_BENCH_PG_URL\n');
    return undefined;
  }
}

/** Linux clock ticks per second, for /proc/PID/stat. */
const CLK_TCK = 100;

/**
 * CPU µs so far of each PostgreSQL backend serving the bench's database (its client connections;
 * autovacuum left out), from /proc: the database's side of the work. Undefined for SQLite, or
 * where /proc cannot be read (the server on another machine).
 */
async function backendCpu(db: Target): Promise<Map<number, number> | undefined> {
  if (db.store !== 'postgres') return undefined;
  const rows = await pgAdmin<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'", PG_ADMIN_URL, [PG_DB]);
  const cpu = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      // Fields after the parenthesised command: state is field 3, utime 14, stime 15.
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
      cpu.set(pid, ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1e6);
    } catch {
      return undefined;
    }
  }
  return cpu;
}

/** CPU µs the backends spent between two readings; a backend that exited in between is not counted. */
function backendCpuUs(before: Map<number, number> | undefined, after: Map<number, number> | undefined): number {
  if (before === undefined || after === undefined) return Number.NaN;
  let us = 0;
  for (const [pid, now] of after) us += now - (before.get(pid) ?? 0);
  return us;
}

interface Stats { cpuUs: number; rss: number; maxRss: number; retained: number }
interface Server { port: number; ask(cmd: string): Promise<Stats>; exit(): Promise<void> }

async function startServer(kind: 'taskstream' | 'limit', db: Target, profile = false): Promise<Server> {
  const prof = profile && args['cpu-prof'] !== undefined ? ['--cpu-prof', '--cpu-prof-dir', args['cpu-prof']] : [];
  const child: ChildProcess = spawn(process.execPath, [...prof, '--expose-gc', '--import', 'tsx', SERVER, '--kind', kind, ...targetArgs(db)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, number>> => {
    const { value, done } = await lines.next();
    if (done === true) throw new Error(`${kind} server exited`);
    return JSON.parse(value as string) as Record<string, number>;
  };
  const { port } = await next();
  return {
    port: port!,
    async ask(cmd) {
      child.stdin!.write(`${JSON.stringify({ cmd })}\n`);
      return (await next()) as unknown as Stats;
    },
    async exit() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin!.write('{"cmd":"exit"}\n');
      await exited;
    },
  };
}

/** One SSE client: reads the stream to its end as fast as it can; resolves with the bytes and the last frame's event. */
function stream(port: number, id: number): { headers: Promise<void>; done: Promise<{ bytes: number; last: string }> } {
  let gotHeaders!: () => void;
  const headers = new Promise<void>((resolve) => (gotHeaders = resolve));
  const done = new Promise<{ bytes: number; last: string }>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/stream/bench/Log/${id}`, headers: { accept: 'text/event-stream' }, agent: false }, (res) => {
      gotHeaders();
      let bytes = 0;
      let tail = '';
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        tail = (tail + chunk.subarray(Math.max(0, chunk.length - 4096)).toString('latin1')).slice(-4096);
      });
      res.on('end', () => resolve({ bytes, last: /event: (\S+)\ndata: [^\n]*\n\n$/.exec(tail)?.[1] ?? '?' }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  return { headers, done };
}

async function post(port: number, path: string, body: unknown): Promise<{ id: number }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: number };
}

/** dbCpuPerMb: the PostgreSQL backends' CPU s per MB (NaN on SQLite: in-process, within cpuPerMb). */
interface Sample { mbps: number; cpuPerMb: number; dbCpuPerMb: number; rssPerStream: number; bytes: number }

/** Writes the log with one client watching live; returns the live sample and the task id. */
async function live(db: Target, log: (typeof LOGS)[number]): Promise<{ id: number; sample: Sample }> {
  const server = await startServer('taskstream', db);
  try {
    const { id } = await post(server.port, '/tasks/bench/Log', { count: log.count, size: log.size });
    const client = stream(server.port, id);
    await client.headers;
    const before = await server.ask('stats');
    const dbBefore = await backendCpu(db);
    const start = performance.now();
    await post(server.port, `/tasks/bench/Log/${id}/signals/go`, {});
    const { bytes, last } = await client.done;
    const seconds = (performance.now() - start) / 1000;
    const after = await server.ask('stats');
    const dbUs = backendCpuUs(dbBefore, await backendCpu(db));
    if (last !== 'complete') throw new Error(`live: the stream ended with ${last}`);
    return { id, sample: sampleOf(bytes, seconds, before, after, 1, dbUs) };
  } finally {
    await server.exit();
  }
}

async function replay(kind: 'taskstream' | 'limit', db: Target, id: number, clients: number): Promise<Sample> {
  const server = await startServer(kind, db, kind === 'taskstream');
  try {
    const before = await server.ask('stats');
    const dbBefore = await backendCpu(db);
    const start = performance.now();
    const results = await Promise.all(Array.from({ length: clients }, () => stream(server.port, id).done));
    const seconds = (performance.now() - start) / 1000;
    const after = await server.ask('stats');
    const dbUs = backendCpuUs(dbBefore, await backendCpu(db));
    const bad = results.find((r) => r.last !== 'complete' || r.bytes !== results[0]!.bytes);
    if (bad) throw new Error(`${kind}: a stream ended with ${bad.last} after ${bad.bytes} bytes`);
    return sampleOf(results.reduce((n, r) => n + r.bytes, 0), seconds, before, after, clients, dbUs);
  } finally {
    await server.exit();
  }
}

/**
 * STALLED clients that send the request and never read: once every stream has filled the kernel's
 * socket buffers and its own and is paused, the memory the server retains for them (JS heap +
 * Buffers, after a full GC), per stream.
 */
async function stalled(kind: 'taskstream' | 'limit', db: Target, id: number): Promise<number> {
  const server = await startServer(kind, db);
  const sockets: net.Socket[] = [];
  try {
    const idle = await server.ask('gc');
    for (let i = 0; i < STALLED; i++) {
      const socket = net.connect(server.port, '127.0.0.1');
      socket.write(`GET /stream/bench/Log/${id} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n`);
      socket.pause();
      sockets.push(socket);
    }
    // Wait until the server stops growing: every stream is paused (a benchmark may poll; a test may not).
    let last = -1;
    for (let i = 0; i < 40; i++) {
      await sleep(250);
      const now = (await server.ask('stats')).retained;
      if (Math.abs(now - last) < 64 * 1024 && i >= 4) break;
      last = now;
    }
    const full = await server.ask('gc');
    return Math.max(0, full.retained - idle.retained) / STALLED;
  } finally {
    for (const socket of sockets) socket.destroy();
    await server.exit();
  }
}

function sampleOf(bytes: number, seconds: number, before: Stats, after: Stats, clients: number, dbUs: number): Sample {
  return {
    bytes,
    mbps: bytes / MB / seconds,
    cpuPerMb: (after.cpuUs - before.cpuUs) / 1e6 / (bytes / MB),
    dbCpuPerMb: dbUs / 1e6 / (bytes / MB),
    rssPerStream: Math.max(0, after.maxRss - before.rss) / clients,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const medianOf = (samples: Sample[]): Sample => ({
  bytes: samples[0]!.bytes,
  mbps: median(samples.map((s) => s.mbps)),
  cpuPerMb: median(samples.map((s) => s.cpuPerMb)),
  dbCpuPerMb: median(samples.map((s) => s.dbCpuPerMb)),
  rssPerStream: median(samples.map((s) => s.rssPerStream)),
});

const stores: Array<'sqlite' | 'postgres'> = args.store === 'both' ? ['sqlite', 'postgres'] : [args.store as 'sqlite' | 'postgres'];
const dir = mkdtempSync(join(tmpdir(), 'taskstream-bench-replay-'));
const pgDb = stores.includes('postgres') ? await createPgDatabase() : undefined;
const dropPg = async (): Promise<void> => void (pgDb === undefined ? undefined : await pgAdmin(`DROP DATABASE IF EXISTS "${PG_DB}" WITH (FORCE)`));
process.once('SIGINT', () => void dropPg().finally(() => process.exit(130)));
const rows: Array<{ store: string; log: string; clients: number; taskstream: Sample; limit: Sample; live: Sample; pageBytes: number }> = [];
const stalls: Array<{ store: string; log: string; taskstream: number; limit: number; bound: number }> = [];
try {
  for (const store of stores) {
    if (store === 'postgres' && pgDb === undefined) continue;
    for (const log of LOGS) {
      const db: Target = store === 'sqlite' ? { store, file: join(dir, `${log.size}.db`) } : { store, url: pgDb!, schema: `replay_${log.size}` };
      const { id, sample: liveSample } = await live(db, log);
      // A steady table for both readers: visibility map and statistics as autovacuum would leave
      // them, instead of autovacuum (or the first reader's hint-bit writes) landing in one run.
      if (db.store === 'postgres') await pgAdmin(`VACUUM (ANALYZE) ${db.schema}.events, ${db.schema}.tasks`, db.url);
      for (const clients of CLIENTS) {
        const ts: Sample[] = [];
        const lim: Sample[] = [];
        for (let run = 0; run < RUNS; run++) {
          // Alternate which server goes first, so neither always gets the warmer page cache.
          if (run % 2 === 0) {
            lim.push(await replay('limit', db, id, clients));
            ts.push(await replay('taskstream', db, id, clients));
          } else {
            ts.push(await replay('taskstream', db, id, clients));
            lim.push(await replay('limit', db, id, clients));
          }
        }
        const [t, l] = [medianOf(ts), medianOf(lim)];
        if (t.bytes !== l.bytes) throw new Error(`${store} ${log.name}: taskstream sent ${t.bytes} bytes, the limit ${l.bytes}: not the same frames`);
        // One page: 256 KiB, or a single event when one event is larger.
        rows.push({ store, log: `${log.count.toLocaleString('en')} × ${log.name}`, clients, taskstream: t, limit: l, live: liveSample, pageBytes: Math.max(256 * 1024, log.size) });
        if (!args.json) process.stderr.write(`done: ${store} ${log.name} × ${clients} clients\n`);
      }
      const bound = 2 * 256 * 1024 + Math.max(256 * 1024, log.size);
      stalls.push({ store, log: `${log.count.toLocaleString('en')} × ${log.name}`, taskstream: await stalled('taskstream', db, id), limit: await stalled('limit', db, id), bound });
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  await dropPg();
}

if (rows.length === 0 && !args.json) {
  console.log('replay: nothing measured (the store asked for was skipped: see stderr)');
} else if (args.json) {
  process.stdout.write(`${JSON.stringify({ rows, stalls }, null, 2)}\n`);
} else {
  const f = (x: number, d = 1): string => x.toFixed(d);
  const kib = (x: number): string => `${Math.round(x / 1024).toLocaleString('en')} KiB`;
  console.log(`replay: medians of ${RUNS} run(s)${QUICK ? ' (--quick)' : ''}; target ≥ 0.5× the limit's MB/s, CPU/MB ≤ 1.5× live, peak RSS/stream ≤ 2 × 256 KiB + one page\n`);
  console.log('| store | log | clients | taskstream MB/s | limit MB/s | ratio | CPU s/MB taskstream | limit | live | replay / live | peak RSS/stream taskstream | limit | bound |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.store} | ${r.log} | ${r.clients} | ${f(r.taskstream.mbps)} | ${f(r.limit.mbps)} | ${f(r.taskstream.mbps / r.limit.mbps, 2)} | ${f(r.taskstream.cpuPerMb, 4)} | ${f(r.limit.cpuPerMb, 4)} | ${f(r.live.cpuPerMb, 4)} | ${f(r.taskstream.cpuPerMb / r.live.cpuPerMb, 2)} | ${kib(r.taskstream.rssPerStream)} | ${kib(r.limit.rssPerStream)} | ${kib(2 * 256 * 1024 + r.pageBytes)} |`);
  }
  const pgRows = rows.filter((r) => r.store === 'postgres');
  if (pgRows.length > 0) {
    console.log('\nPostgreSQL: the database backends\' CPU s per MB sent (beside the node server\'s above), and node + backends replay / live\n');
    console.log('| log | clients | backends taskstream | limit | live | (node + backends) replay / live |');
    console.log('|---|---:|---:|---:|---:|---:|');
    for (const r of pgRows) {
      const both = (s: Sample): number => s.cpuPerMb + s.dbCpuPerMb;
      console.log(`| ${r.log} | ${r.clients} | ${f(r.taskstream.dbCpuPerMb, 4)} | ${f(r.limit.dbCpuPerMb, 4)} | ${f(r.live.dbCpuPerMb, 4)} | ${f(both(r.taskstream) / both(r.live), 2)} |`);
    }
  }
  console.log(`\n${STALLED} stalled clients (they never read) per log: memory the server retains per paused stream (JS heap + Buffers after a full GC)\n`);
  console.log('| store | log | taskstream | limit | bound (2 × 256 KiB + one page) |');
  console.log('|---|---|---:|---:|---:|');
  for (const r of stalls) console.log(`| ${r.store} | ${r.log} | ${kib(r.taskstream)} | ${kib(r.limit)} | ${kib(r.bound)} |`);
}
