/**
 * Cluster benchmarks, side by side in one run on one PostgreSQL and one Redis:
 *
 * 1. Throughput: N tasks of E progress events each, every one watched, with 1 and 2 `serve`
 *    processes (PostgreSQL store + Redis bus), beside BullMQ 6 on the same Redis with 1 and 2 worker
 *    processes and a QueueEvents watcher. taskstream stores every event and a watcher that joins late
 *    still gets all of them; BullMQ stores neither.
 * 2. Cross-process latency: a task's `send` in one `serve` process → an SSE client connected to
 *    another, beside BullMQ's `job.updateProgress` in a worker process → QueueEvents.
 *
 *   node --import tsx bench/cluster.ts [--quick] [--tasks 10000] [--events 10] [--json]
 *     [--lines bull1,pg1lib,pg1,sqlite1lib,sqlite1,bull2,pg2lib,pg2,sqlite2lib,sqlite2,latency] [--cpu-prof DIR]
 *
 * See bench/README.md (section "cluster") for what each line does and the figures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createParser } from 'eventsource-parser';
import pg from 'pg';
import { createClient } from 'redis';
import { createNodeRedisClient, Queue, QueueEvents, RedisConnection } from 'bullmq';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTaskstream, sqliteStore } from '../src/index.js';
import { postgresStore } from '../src/store/postgres/index.js';
import { redisBus } from '../src/bus/redis/index.js';
import { Burst } from './cluster-tasks.js';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    tasks: { type: 'string' },
    events: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '100' },
    samples: { type: 'string' },
    lines: { type: 'string', default: 'bull1,pg1lib,pg1,sqlite1lib,sqlite1,bull2,pg2lib,pg2,sqlite2lib,sqlite2,latency' },
    'cpu-prof': { type: 'string' },
    pg: { type: 'string', default: process.env.TASKSTREAM_BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    redis: { type: 'string', default: process.env.TASKSTREAM_BENCH_REDIS ?? 'redis://127.0.0.1:6379' },
    json: { type: 'boolean', default: false },
  },
});
const TASKS = Number(flags.tasks ?? (flags.quick ? 1000 : 10_000));
const EVENTS = Number(flags.events);
const CONCURRENCY = Number(flags.concurrency);
const SAMPLES = Number(flags.samples ?? (flags.quick ? 300 : 2000));
const TICK_MS = 2;
/** Requests in flight from the producer. */
const IN_FLIGHT = 64;
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const RUN = `${ROOT}src/cli/run.ts`;
const TASK_MODULE = `${ROOT}bench/cluster-tasks.ts`;
const WORKER = `${ROOT}bench/cluster-bullmq-worker.ts`;
const children = new Set<ChildProcess>();
const log = (line: string): void => void process.stderr.write(`${line}\n`);
RedisConnection.clientFactory = () => createNodeRedisClient(createClient({ url: flags.redis }));

/** Spawns a node process (through tsx) and resolves once a stdout line matches `ready`. */
async function child(args: string[], ready: RegExp): Promise<{ proc: ChildProcess; match: RegExpMatchArray }> {
  const prof = flags['cpu-prof'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', flags['cpu-prof']];
  const proc = spawn(process.execPath, [...prof, '--import', 'tsx', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  let out = '';
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => { err = (err + c).slice(-4000); });
  const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')}: not ready within 60 s\n${out}\n${err}`)), 60_000);
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const m = out.match(ready);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    proc.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code})\n${out}\n${err}`)));
  });
  return { proc, match };
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: flags.pg });
  await client.connect();
  try { await client.query(sql); } finally { await client.end(); }
}

/** A fresh database for one line, dropped after it. */
async function withDatabase<T>(work: (url: string) => Promise<T>): Promise<T> {
  const name = `ts_bus_bench_${process.pid}_${randomBytes(3).toString('hex')}`;
  await admin(`CREATE DATABASE "${name}"`);
  try {
    return await work(flags.pg.replace(/\/[^/?]*(\?|$)/, `/${name}$1`));
  } finally {
    await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  }
}

/** A fresh SQLite file for one line, removed after it. */
async function withSqliteFile<T>(work: (path: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'taskstream-bench-cluster-'));
  try {
    return await work(join(dir, 'cluster.db'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function serveProcess(db: string, prefix: string): Promise<{ proc: ChildProcess; url: string }> {
  const { proc, match } = await child([RUN, 'serve', '--port', '0', '--db', db, '--redis', flags.redis, '--redis-prefix', prefix,
    '--no-examples', '--tasks', TASK_MODULE, '--concurrency', String(CONCURRENCY), '--log-level', 'warn'], /listening on (http:\/\/\S+)/);
  return { proc, url: match[1]! };
}

/**
 * taskstream's producer is closed-loop: a slot creates a task and watches it to its end, and at most
 * WATCHED tasks are created and unfinished at once (more than every process's concurrency, so no
 * process waits for work); an open-loop producer would only pile up pending tasks and watchers.
 */
const WATCHED = 500;

/**
 * The producer's HTTP client: node:http over kept-alive connections. fetch (undici) cost the
 * producer about a quarter of its CPU, on the cores the servers under test share; the load
 * generator should be as cheap as it can be, as BullMQ's (`Queue.add`, one Redis command) is.
 */
const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });

function postJson(url: string, body: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => void (text += c)).on('end', () => {
        if (res.statusCode !== 201 && res.statusCode !== 200) reject(new Error(`POST ${url}: ${res.statusCode} ${text}`));
        else resolve(JSON.parse(text));
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Runs `count` calls of `fn` with at most `slots` at once. */
async function pool(count: number, fn: (i: number) => Promise<void>, slots = IN_FLIGHT): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(slots, count) }, async () => {
    while (next < count) await fn(next++);
  }));
}

interface Line { name: string; processes: number; jobsPerSec: number; eventsPerSec: number; seconds: number; cpu: Cpu }

/** CPU seconds (user + system) spent during a line, by who spent them. */
interface Cpu { workers: number; producer: number; postgres: number; redis: number }

/** CPU seconds so far of the processes whose command name is `comm` (Linux /proc; 0 elsewhere). */
function cpuOf(match: (pid: number, comm: string) => boolean): number {
  let ticks = 0;
  let entries: string[];
  try { entries = readdirSync('/proc'); } catch { return 0; }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      if (!match(Number(entry), comm)) continue;
      const fields = stat.slice(close + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch { /* the process ended meanwhile */ }
  }
  return ticks / 100; // USER_HZ
}

/** Starts measuring CPU; the returned function gives what each party spent since. */
function cpuMeter(workers: () => readonly ChildProcess[]): () => Cpu {
  const sample = (): Cpu => {
    const pids = new Set(workers().map((p) => p.pid));
    const self = process.cpuUsage();
    return {
      workers: cpuOf((pid) => pids.has(pid)),
      producer: (self.user + self.system) / 1e6,
      postgres: cpuOf((_, comm) => comm === 'postgres'),
      redis: cpuOf((_, comm) => comm.startsWith('redis-server')),
    };
  };
  const t0 = sample();
  return () => {
    const t1 = sample();
    return { workers: t1.workers - t0.workers, producer: t1.producer - t0.producer, postgres: t1.postgres - t0.postgres, redis: t1.redis - t0.redis };
  };
}

/**
 * taskstream: `processes` serve processes; a watcher runtime in this process (same database and
 * Redis prefix; `concurrency: 0`, so it runs nothing) subscribes to every task right after its
 * create and reads it to its terminal event. `create`: 'http' posts each task to a serve process
 * (round robin); 'library' creates it with the watcher runtime, as BullMQ's producer adds its jobs
 * with `Queue.add`.
 */
async function taskstreamThroughput(processes: number, on: 'postgres' | 'sqlite', create: 'http' | 'library'): Promise<Line> {
  const database = on === 'postgres' ? withDatabase : withSqliteFile;
  return database(async (db) => {
    const prefix = `ts-bus-bench-${randomBytes(4).toString('hex')}`;
    const servers: Array<{ proc: ChildProcess; url: string }> = [];
    for (let i = 0; i < processes; i++) servers.push(await serveProcess(db, prefix));
    const store = on === 'postgres' ? postgresStore({ connectionString: db, max: 20 }) : sqliteStore(db);
    const watcher = await createTaskstream({ store, bus: redisBus({ url: flags.redis, prefix }), tasks: [Burst], concurrency: 0 });
    try {
      let events = 0;
      const cpu = cpuMeter(() => servers.map((s) => s.proc));
      const t0 = performance.now();
      await pool(TASKS, async (i) => {
        const { id } = create === 'library'
          ? await watcher.create(Burst, { events: EVENTS })
          : (await postJson(`${servers[i % processes]!.url}/tasks/bench/Burst`, { events: EVENTS })) as { id: number };
        let n = 0;
        for await (const e of await watcher.subscribe(id)) {
          n++;
          if (e.seq !== n) throw new Error(`task ${id}: seq ${e.seq} after ${n - 1}`);
        }
        if (n !== EVENTS + 1) throw new Error(`task ${id}: ${n} events, expected ${EVENTS + 1}`);
        events += n;
      }, WATCHED);
      const seconds = (performance.now() - t0) / 1000;
      const spent = cpu();
      const name = `taskstream, ${processes} serve process${processes > 1 ? 'es' : ''} (${on === 'postgres' ? 'PostgreSQL' : 'one SQLite file'} + Redis), created ${create === 'library' ? 'with the library' : 'over HTTP'}`;
      return { cpu: spent, name, processes, jobsPerSec: TASKS / seconds, eventsPerSec: events / seconds, seconds };
    } finally {
      await watcher.close();
      for (const s of servers) await stop(s.proc);
    }
  });
}

/** BullMQ: `workers` worker processes; jobs added one by one (same in-flight bound); one QueueEvents counts completions. */
async function bullmqThroughput(workers: number): Promise<Line> {
  const prefix = `ts-bus-bench-bull-${randomBytes(4).toString('hex')}`;
  const name = 'burst';
  const connection = {};
  // BullMQ trims its event stream to 10,000 entries by default: keep all of this run's, or the watcher misses completions.
  const queue = new Queue(name, { connection, prefix, streams: { events: { maxLen: (EVENTS + 2) * TASKS + 1000 } } });
  await queue.waitUntilReady();
  const events = new QueueEvents(name, { connection, prefix });
  await events.waitUntilReady();
  const procs: ChildProcess[] = [];
  for (let i = 0; i < workers; i++) procs.push((await child([WORKER, flags.redis, prefix, name, String(CONCURRENCY), `burst:${EVENTS}`], /ready/)).proc);
  try {
    let completed = 0;
    let progress = 0;
    const done = new Promise<void>((resolve) => {
      events.on('progress', () => void progress++);
      events.on('completed', () => {
        if (++completed === TASKS) resolve();
      });
    });
    const cpu = cpuMeter(() => procs);
    const t0 = performance.now();
    await pool(TASKS, async (i) => void (await queue.add('job', { i }, { removeOnComplete: true })));
    await done;
    const seconds = (performance.now() - t0) / 1000;
    return { cpu: cpu(), name: `BullMQ 6, ${workers} worker process${workers > 1 ? 'es' : ''} + QueueEvents`, processes: workers, jobsPerSec: TASKS / seconds, eventsPerSec: (progress + completed) / seconds, seconds };
  } finally {
    for (const p of procs) await stop(p);
    await events.close();
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
  }
}

function percentiles(xs: number[]): { p50: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), max: s.at(-1) ?? NaN };
}

/** taskstream: the task runs on process A (the only one when it is created); the SSE client is on process B. */
async function taskstreamLatency(on: 'postgres' | 'sqlite'): Promise<{ p50: number; p99: number; max: number }> {
  const database = on === 'postgres' ? withDatabase : withSqliteFile;
  return database(async (db) => {
    const prefix = `ts-bus-bench-${randomBytes(4).toString('hex')}`;
    const a = await serveProcess(db, prefix);
    const created = await fetch(`${a.url}/tasks/bench/Ticker`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ count: SAMPLES, interval_ms: TICK_MS }),
    });
    const { id } = (await created.json()) as { id: number };
    const b = await serveProcess(db, prefix);
    try {
      const latencies: number[] = [];
      const res = await fetch(`${b.url}/stream/bench/Ticker/${id}`, { headers: { accept: 'text/event-stream' } });
      let end = false;
      const parser = createParser({
        onEvent(msg) {
          if (msg.event === 'progress') latencies.push(performance.timeOrigin + performance.now() - (JSON.parse(msg.data) as { t: number }).t);
          if (msg.event === 'complete' || msg.event === 'error') end = true;
        },
      });
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      await fetch(`${b.url}/tasks/bench/Ticker/${id}/signals/go`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      while (!end) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.feed(decoder.decode(value, { stream: true }));
      }
      await reader.cancel().catch(() => {});
      if (latencies.length !== SAMPLES) throw new Error(`latency: ${latencies.length} of ${SAMPLES} events`);
      return percentiles(latencies);
    } finally {
      await stop(a.proc);
      await stop(b.proc);
    }
  });
}

/** BullMQ: `job.updateProgress` in a worker process → QueueEvents `progress` here. */
async function bullmqLatency(): Promise<{ p50: number; p99: number; max: number }> {
  const prefix = `ts-bus-bench-bull-${randomBytes(4).toString('hex')}`;
  const name = 'ticker';
  const queue = new Queue(name, { connection: {}, prefix });
  const events = new QueueEvents(name, { connection: {}, prefix });
  await events.waitUntilReady();
  const { proc } = await child([WORKER, flags.redis, prefix, name, '1', `ticker:${SAMPLES}:${TICK_MS}`], /ready/);
  try {
    const latencies: number[] = [];
    const done = new Promise<void>((resolve) => {
      events.on('progress', ({ data }) => void latencies.push(performance.timeOrigin + performance.now() - (data as { t: number }).t));
      events.on('completed', () => resolve());
    });
    await queue.add('job', {});
    await done;
    return percentiles(latencies);
  } finally {
    await stop(proc);
    await events.close();
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close();
  }
}

/** bullN; pgN / sqliteN (created over HTTP) and pgNlib / sqliteNlib (created with the library), N = 1, 2. */
const LINES: Record<string, () => Promise<Line>> = {};
for (const n of [1, 2]) {
  LINES[`bull${n}`] = () => bullmqThroughput(n);
  for (const [key, on] of [['pg', 'postgres'], ['sqlite', 'sqlite']] as const) {
    LINES[`${key}${n}lib`] = () => taskstreamThroughput(n, on, 'library');
    LINES[`${key}${n}`] = () => taskstreamThroughput(n, on, 'http');
  }
}

async function main(): Promise<void> {
  const chosen = flags.lines.split(',').map((l) => l.trim()).filter((l) => l !== '');
  const unknown = chosen.filter((l) => l !== 'latency' && !(l in LINES));
  if (unknown.length > 0) throw new Error(`--lines: unknown ${unknown.join(', ')}; choose from ${[...Object.keys(LINES), 'latency'].join(', ')}`);
  log(`cluster bench: ${TASKS} tasks × ${EVENTS} events, concurrency ${CONCURRENCY} per process; latency ${SAMPLES} events every ${TICK_MS} ms`);
  const lines = new Map<string, Line>();
  for (const key of chosen.filter((l) => l !== 'latency')) {
    const line = await LINES[key]!();
    log(`  ${line.name}: ${line.jobsPerSec.toFixed(0)} jobs/s (${line.seconds.toFixed(1)} s)`);
    lines.set(key, line);
  }
  const latency = chosen.includes('latency')
    ? { taskstream: await taskstreamLatency('postgres'), sqlite: await taskstreamLatency('sqlite'), bullmq: await bullmqLatency() }
    : undefined;
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ tasks: TASKS, events: EVENTS, lines: [...lines.values()], latency }, null, 2)}\n`);
    return;
  }
  const perTask = (cpu: number): string => (cpu * 1000 / TASKS).toFixed(2);
  const row = (l: Line): string => {
    const ref = lines.get(`bull${l.processes}`);
    const c = l.cpu;
    return `| ${l.name} | ${l.jobsPerSec.toFixed(0)} | ${l.eventsPerSec.toFixed(0)} | ${ref === undefined ? '' : (l.jobsPerSec / ref.jobsPerSec).toFixed(2)} ` +
      `| ${perTask(c.workers)} | ${perTask(c.producer)} | ${perTask(c.postgres)} | ${perTask(c.redis)} | ${perTask(c.workers + c.producer + c.postgres + c.redis)} |`;
  };
  const out = [
    `Throughput: ${TASKS} tasks × ${EVENTS} progress events, every task watched`,
    '',
    '| | jobs/s | events/s delivered | ratio to BullMQ (same process count) | CPU ms/task: servers or workers | producer + watcher | PostgreSQL | Redis | all |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...[...lines.values()].map(row),
    '',
  ];
  if (latency !== undefined) {
    out.push(
      `Cross-process latency: ${SAMPLES} events, one every ${TICK_MS} ms`,
      '',
      '| | p50 ms | p99 ms | max ms |',
      '|---|---:|---:|---:|',
      `| taskstream: send in serve A → SSE client on serve B (PostgreSQL + Redis) | ${latency.taskstream.p50.toFixed(2)} | ${latency.taskstream.p99.toFixed(2)} | ${latency.taskstream.max.toFixed(2)} |`,
      `| taskstream: the same on one SQLite file + Redis | ${latency.sqlite.p50.toFixed(2)} | ${latency.sqlite.p99.toFixed(2)} | ${latency.sqlite.max.toFixed(2)} |`,
      `| BullMQ: updateProgress in a worker → QueueEvents | ${latency.bullmq.p50.toFixed(2)} | ${latency.bullmq.p99.toFixed(2)} | ${latency.bullmq.max.toFixed(2)} |`,
      `| ratio (taskstream on PostgreSQL / BullMQ) | ${(latency.taskstream.p50 / latency.bullmq.p50).toFixed(2)} | ${(latency.taskstream.p99 / latency.bullmq.p99).toFixed(2)} | |`,
      `| ratio (taskstream on SQLite / BullMQ) | ${(latency.sqlite.p50 / latency.bullmq.p50).toFixed(2)} | ${(latency.sqlite.p99 / latency.bullmq.p99).toFixed(2)} | |`,
      '',
    );
  }
  process.stdout.write(out.join('\n'));
}

try {
  await main();
} finally {
  for (const c of children) c.kill('SIGKILL');
  agent.destroy();
}
