/**
 * bench/replay: replaying a finished task's log over SSE, beside the limit, in one run.
 *
 *   node --import tsx bench/replay.ts [--quick] [--runs 3] [--json] [--sizes 100,10000,1000000] [--clients 1,20]
 *                                     [--cpu-prof DIR]   (profiles every taskstream replay server into DIR)
 *
 * For each log (100 B, 10 KB and 1 MB events, 20–30 MB each; --quick: a tenth):
 *   1. live: a taskstream server runs a task that writes the log while one client streams it; the
 *      server's CPU per MB delivered is the live baseline (it includes storing the events).
 *   2. replay: the finished log to 1 client, then to 20 clients at once, each from seq 0, from
 *      - taskstream: the runtime and HTTP handler on the SQLite file (bench/replay-server.ts);
 *      - limit: a plain node:http server range-reading the same rows from the same file with
 *        better-sqlite3 and writing the same frames with backpressure.
 *      Each server runs in its own fresh process; the clients (this process) read as fast as they
 *      can and check that both servers sent the same number of bytes.
 * Reported: MB/s (all clients' bytes / wall time), server CPU seconds per MB, the server's peak
 * RSS above its idle RSS per stream; medians of --runs runs, the two servers alternating.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false }, runs: { type: 'string' }, json: { type: 'boolean', default: false },
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
const CLIENTS = args.clients === undefined ? [1, 20] : args.clients.split(',').map(Number);
const STALLED = 20;
const MB = 1e6;
const SERVER = new URL('./replay-server.ts', import.meta.url).pathname;

interface Stats { cpuUs: number; rss: number; maxRss: number; retained: number }
interface Server { port: number; ask(cmd: string): Promise<Stats>; exit(): Promise<void> }

async function startServer(kind: 'taskstream' | 'limit', db: string, profile = false): Promise<Server> {
  const prof = profile && args['cpu-prof'] !== undefined ? ['--cpu-prof', '--cpu-prof-dir', args['cpu-prof']] : [];
  const child: ChildProcess = spawn(process.execPath, [...prof, '--expose-gc', '--import', 'tsx', SERVER, '--kind', kind, '--db', db], { stdio: ['pipe', 'pipe', 'inherit'] });
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

interface Sample { mbps: number; cpuPerMb: number; rssPerStream: number; bytes: number }

/** Writes the log with one client watching live; returns the live sample and the task id. */
async function live(db: string, log: (typeof LOGS)[number]): Promise<{ id: number; sample: Sample }> {
  const server = await startServer('taskstream', db);
  try {
    const { id } = await post(server.port, '/tasks/bench/Log', { count: log.count, size: log.size });
    const client = stream(server.port, id);
    await client.headers;
    const before = await server.ask('stats');
    const start = performance.now();
    await post(server.port, `/tasks/bench/Log/${id}/signals/go`, {});
    const { bytes, last } = await client.done;
    const seconds = (performance.now() - start) / 1000;
    const after = await server.ask('stats');
    if (last !== 'complete') throw new Error(`live: the stream ended with ${last}`);
    return { id, sample: sampleOf(bytes, seconds, before, after, 1) };
  } finally {
    await server.exit();
  }
}

async function replay(kind: 'taskstream' | 'limit', db: string, id: number, clients: number): Promise<Sample> {
  const server = await startServer(kind, db, kind === 'taskstream');
  try {
    const before = await server.ask('stats');
    const start = performance.now();
    const results = await Promise.all(Array.from({ length: clients }, () => stream(server.port, id).done));
    const seconds = (performance.now() - start) / 1000;
    const after = await server.ask('stats');
    const bad = results.find((r) => r.last !== 'complete' || r.bytes !== results[0]!.bytes);
    if (bad) throw new Error(`${kind}: a stream ended with ${bad.last} after ${bad.bytes} bytes`);
    return sampleOf(results.reduce((n, r) => n + r.bytes, 0), seconds, before, after, clients);
  } finally {
    await server.exit();
  }
}

/**
 * STALLED clients that send the request and never read: once every stream has filled the kernel's
 * socket buffers and its own and is paused, the memory the server retains for them (JS heap +
 * Buffers, after a full GC), per stream.
 */
async function stalled(kind: 'taskstream' | 'limit', db: string, id: number): Promise<number> {
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

function sampleOf(bytes: number, seconds: number, before: Stats, after: Stats, clients: number): Sample {
  return {
    bytes,
    mbps: bytes / MB / seconds,
    cpuPerMb: (after.cpuUs - before.cpuUs) / 1e6 / (bytes / MB),
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
  rssPerStream: median(samples.map((s) => s.rssPerStream)),
});

const dir = mkdtempSync(join(tmpdir(), 'taskstream-bench-replay-'));
const rows: Array<{ log: string; clients: number; taskstream: Sample; limit: Sample; live: Sample; pageBytes: number }> = [];
const stalls: Array<{ log: string; taskstream: number; limit: number; bound: number }> = [];
try {
  for (const log of LOGS) {
    const db = join(dir, `${log.size}.db`);
    const { id, sample: liveSample } = await live(db, log);
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
      if (t.bytes !== l.bytes) throw new Error(`${log.name}: taskstream sent ${t.bytes} bytes, the limit ${l.bytes}: not the same frames`);
      // One page: 256 KiB, or a single event when one event is larger.
      rows.push({ log: `${log.count.toLocaleString('en')} × ${log.name}`, clients, taskstream: t, limit: l, live: liveSample, pageBytes: Math.max(256 * 1024, log.size) });
      if (!args.json) process.stderr.write(`done: ${log.name} × ${clients} clients\n`);
    }
    const bound = 2 * 256 * 1024 + Math.max(256 * 1024, log.size);
    stalls.push({ log: `${log.count.toLocaleString('en')} × ${log.name}`, taskstream: await stalled('taskstream', db, id), limit: await stalled('limit', db, id), bound });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

if (args.json) {
  process.stdout.write(`${JSON.stringify({ rows, stalls }, null, 2)}\n`);
} else {
  const f = (x: number, d = 1): string => x.toFixed(d);
  const kib = (x: number): string => `${Math.round(x / 1024).toLocaleString('en')} KiB`;
  console.log(`replay: medians of ${RUNS} run(s)${QUICK ? ' (--quick)' : ''}; target ≥ 0.5× the limit's MB/s, CPU/MB ≤ 1.5× live, peak RSS/stream ≤ 2 × 256 KiB + one page\n`);
  console.log('| log | clients | taskstream MB/s | limit MB/s | ratio | CPU s/MB taskstream | limit | live | replay / live | peak RSS/stream taskstream | limit | bound |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.log} | ${r.clients} | ${f(r.taskstream.mbps)} | ${f(r.limit.mbps)} | ${f(r.taskstream.mbps / r.limit.mbps, 2)} | ${f(r.taskstream.cpuPerMb, 4)} | ${f(r.limit.cpuPerMb, 4)} | ${f(r.live.cpuPerMb, 4)} | ${f(r.taskstream.cpuPerMb / r.live.cpuPerMb, 2)} | ${kib(r.taskstream.rssPerStream)} | ${kib(r.limit.rssPerStream)} | ${kib(2 * 256 * 1024 + r.pageBytes)} |`);
  }
  console.log(`\n${STALLED} stalled clients (they never read) per log: memory the server retains per paused stream (JS heap + Buffers after a full GC)\n`);
  console.log('| log | taskstream | limit | bound (2 × 256 KiB + one page) |');
  console.log('|---|---:|---:|---:|');
  for (const r of stalls) console.log(`| ${r.log} | ${kib(r.taskstream)} | ${kib(r.limit)} | ${kib(r.bound)} |`);
}
