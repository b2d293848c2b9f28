/**
 * bench/ingest-pg: N concurrent tasks emitting small events as fast as they can (each `await`s its
 * `send`), each with one `runtime.subscribe()` consumer, on the PostgreSQL store (a fresh database,
 * dropped at the end). Reports events/s stored-and-delivered and the send→receipt latency, beside a
 * plain `pg` loop inserting the same rows in the same batches, in the same run:
 *
 *   limit: the same rows into the same `events` table (from the store's migration), one INSERT …
 *          SELECT FROM unnest(…) statement per batch of `tasks` rows, one batch in flight at a
 *          time (the group the runtime commits per tick when every task has one event in flight).
 *
 *   node --import tsx bench/ingest-pg.ts [--tasks 100] [--events 2000] [--quick] [--json]
 *
 * TASKSTREAM_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres) is where the bench
 * creates and drops its database (named ts_bench_<pid>, or TASKSTREAM_BENCH_PG_PREFIX + <pid>).
 */
import { cpus } from 'node:os';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { z } from 'zod';
import { createTaskstream, defineTask } from '../src/index.js';
import { postgresStore } from '../src/store/postgres/index.js';

const { values: args } = parseArgs({
  options: {
    tasks: { type: 'string', default: '100' },
    events: { type: 'string', default: '2000' },
    json: { type: 'boolean', default: false },
    /** 20 tasks × 200 events: a few seconds, for development. */
    quick: { type: 'boolean', default: false },
    /** Run only the taskstream line (for profiling: `node --cpu-prof --import tsx bench/ingest-pg.ts --only-taskstream`). */
    'only-taskstream': { type: 'boolean', default: false },
  },
});
const TASKS = args.quick ? 20 : positiveInt('tasks', args.tasks);
const EVENTS = args.quick ? 200 : positiveInt('events', args.events);
const TOTAL = TASKS * EVENTS;

const ADMIN_URL = process.env.TASKSTREAM_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DB_NAME = `${process.env.TASKSTREAM_BENCH_PG_PREFIX ?? 'ts_bench_'}${process.pid}`;
const DB_URL = ((): string => {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${DB_NAME}`;
  return url.toString();
})();
const now = (): number => performance.timeOrigin + performance.now();

interface Line {
  readonly name: string;
  readonly events: number;
  readonly seconds: number;
  readonly eventsPerSecond: number;
  /** Process CPU time (user + system) per event over the same interval: less noisy than wall time on a shared machine. */
  readonly cpuUsPerEvent: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly maxMs?: number;
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A fresh schema holding only the store's `events` table, as its migration defines it. */
async function plainSchema(pool: pg.Pool, schema: string): Promise<void> {
  const migration = readFileSync(new URL('../src/store/postgres/migrations/001_init.sql', import.meta.url), 'utf8');
  const events = /CREATE TABLE events \([^;]*\);/.exec(migration);
  if (events === null) throw new Error('bench: events table not found in 001_init.sql');
  await pool.query(`CREATE SCHEMA ${schema}`);
  await pool.query(`SET search_path TO ${schema}; ${events[0]}`);
}

/**
 * The rows the runtime stores, in the order it stores them: round i holds event i of every task,
 * one statement per round, one round in flight. The JSON is built in the loop, like `send`.
 */
async function limitBatched(schema: string): Promise<Line> {
  const pool = new pg.Pool({ connectionString: DB_URL, max: 1 });
  try {
    await plainSchema(pool, schema);
    const client = await pool.connect();
    const text = `INSERT INTO ${schema}.events (task_id, seq, type, data, at)
      SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::bigint[])`;
    const cpu = process.cpuUsage();
    const start = performance.now();
    try {
      for (let i = 0; i < EVENTS; i++) {
        const ids: number[] = [];
        const seqs: number[] = [];
        const types: string[] = [];
        const data: string[] = [];
        const ats: number[] = [];
        const at = Date.now();
        for (let task = 1; task <= TASKS; task++) {
          ids.push(task);
          seqs.push(i + 1);
          types.push('tick');
          data.push(JSON.stringify({ i, t: now() }));
          ats.push(at);
        }
        await client.query({ name: 'limit', text, values: [ids, seqs, types, data, ats] });
      }
    } finally {
      client.release();
    }
    const seconds = (performance.now() - start) / 1000;
    return line(`limit: plain pg, 1 unnest INSERT per ${TASKS} rows`, TOTAL, seconds, process.cpuUsage(cpu));
  } finally {
    await pool.end();
  }
}

async function taskstream(tasks: number, events: number, schema: string): Promise<Line> {
  let firstSend = Infinity;
  const ticker = defineTask({
    app: 'bench',
    type: 'ticker',
    input: z.object({ events: z.number().int() }),
    run: async (ctx, input) => {
      firstSend = Math.min(firstSend, now());
      for (let i = 0; i < input.events; i++) await ctx.send('tick', { i, t: now() });
      return { sent: input.events };
    },
  });
  const runtime = await createTaskstream({
    store: postgresStore({ connectionString: DB_URL, schema }),
    tasks: [ticker],
    concurrency: tasks,
    sweepIntervalMs: 60_000,
  });
  try {
    // Pending until started: every subscriber is attached before its task's first send.
    const later = new Date(Date.now() + 3_600_000);
    const ids: number[] = [];
    for (let k = 0; k < tasks; k++) ids.push((await runtime.create(ticker, { events }, { runAt: later })).id);
    const latencies = new Float64Array(tasks * events);
    let delivered = 0;
    let lastReceipt = 0;
    // Wrapped in an object: an async function returning the consumer's promise would wait for it.
    const consumers = await Promise.all(ids.map(async (id) => {
      const sub = await runtime.subscribe(id);
      const done = (async () => {
        let expected = 0;
        let lastSeq = 0;
        let terminal = '';
        for await (const e of sub) {
          const received = now();
          if (e.seq !== lastSeq + 1) throw new Error(`task ${id}: seq ${e.seq} after ${lastSeq} (gap or duplicate)`);
          lastSeq = e.seq;
          if (e.type !== 'tick') { terminal = e.type; continue; }
          if (e.data.i !== expected) throw new Error(`task ${id}: tick ${String(e.data.i)}, expected ${expected}`);
          expected++;
          latencies[delivered++] = received - (e.data.t as number);
          lastReceipt = received;
        }
        if (expected !== events || terminal !== 'complete') {
          throw new Error(`task ${id}: ${expected} of ${events} ticks, then ${terminal || 'nothing'}`);
        }
      })();
      return { done };
    }));
    const cpu = process.cpuUsage();
    // All at once, as the limit's first round holds a row of every task: started one after
    // another, each start's round trips (read, make runnable, claim) would stretch the ramp-up
    // over seconds of small batches, which measures starting tasks, not ingest.
    await Promise.all(ids.map((id) => runtime.start(id)));
    await Promise.all(consumers.map((c) => c.done));
    const cpuUsed = process.cpuUsage(cpu);
    if (delivered !== tasks * events) throw new Error(`delivered ${delivered} of ${tasks * events}`);
    const sorted = latencies.subarray(0, delivered).sort();
    return line('taskstream: stored + delivered to 1 subscriber each', delivered, (lastReceipt - firstSend) / 1000, cpuUsed, {
      p50Ms: sorted[Math.floor(delivered * 0.5)]!,
      p99Ms: sorted[Math.floor(delivered * 0.99)]!,
      maxMs: sorted[delivered - 1]!,
    });
  } finally {
    await runtime.close({ timeoutMs: 1000 });
  }
}

/** `used`: the process's CPU time over the measured interval. */
function line(name: string, events: number, seconds: number, used: NodeJS.CpuUsage, extra: Partial<Line> = {}): Line {
  return { name, events, seconds, eventsPerSecond: events / seconds, cpuUsPerEvent: (used.user + used.system) / events, ...extra };
}

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new TypeError(`--${name} must be a whole number > 0, got ${value}`);
  return n;
}

async function main(): Promise<void> {
  // Warm-up (JIT, shared buffers) on a separate schema, not reported.
  await taskstream(Math.min(TASKS, 20), Math.min(EVENTS, 200), 'warmup');
  if (args['only-taskstream']) {
    console.log(JSON.stringify(await taskstream(TASKS, EVENTS, 'taskstream')));
    return;
  }
  // Each line runs twice, in the order limit, taskstream, taskstream, limit, and its faster run
  // counts: neither the order, nor a burst of load from elsewhere during one run, nor the JIT
  // still warming up in a line's first run flatters either line.
  const before = await limitBatched('limit1');
  const ts1 = await taskstream(TASKS, EVENTS, 'taskstream1');
  const ts2 = await taskstream(TASKS, EVENTS, 'taskstream2');
  const after = await limitBatched('limit2');
  const faster = (a: Line, b: Line): Line => (a.eventsPerSecond >= b.eventsPerSecond ? a : b);
  const limit = faster(before, after);
  const ts = faster(ts1, ts2);
  const lines = [ts, limit];
  const ratio = (l: Line): number => l.eventsPerSecond / limit.eventsPerSecond;
  const target = { ratioToLimit: 0.5 };
  const meets = ratio(ts) >= target.ratioToLimit;
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), node ${process.version}`;
  const server = await serverVersion();
  if (args.json) {
    console.log(JSON.stringify({
      date: new Date().toISOString(), machine, server, tasks: TASKS, eventsPerTask: EVENTS, target, meetsTarget: meets,
      limitRuns: [before.eventsPerSecond, after.eventsPerSecond], taskstreamRuns: [ts1.eventsPerSecond, ts2.eventsPerSecond],
      results: lines.map((l) => ({ ...l, ratioToLimit: ratio(l) })),
    }, null, 2));
    return;
  }
  const fmt = (v: number): string => Math.round(v).toLocaleString('en-US');
  const ms = (v: number | undefined): string => (v === undefined ? '–' : v.toFixed(2));
  console.log(`bench/ingest-pg: ${TASKS} tasks × ${EVENTS} events (${TOTAL} events), ${server}, ${machine}\n`);
  console.log('| | events/s | ratio to limit | CPU µs/event (this process) | p50 send→receipt (ms) | p99 (ms) | max (ms) |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const l of lines) {
    console.log(`| ${l.name} | ${fmt(l.eventsPerSecond)} | ${ratio(l).toFixed(2)} | ${l.cpuUsPerEvent.toFixed(1)} | ${ms(l.p50Ms)} | ${ms(l.p99Ms)} | ${ms(l.maxMs)} |`);
  }
  console.log(`\neach line: the faster of two runs, in the order limit, taskstream, taskstream, limit (limit ${fmt(before.eventsPerSecond)}/s then ${fmt(after.eventsPerSecond)}/s; taskstream ${fmt(ts1.eventsPerSecond)}/s then ${fmt(ts2.eventsPerSecond)}/s); database ${DB_NAME}, dropped at the end`);
  console.log(`target: >= ${target.ratioToLimit}× the limit: ${meets ? 'met' : 'NOT met'}`);
}

async function serverVersion(): Promise<string> {
  const client = new pg.Client({ connectionString: DB_URL });
  await client.connect();
  try {
    const r = await client.query<{ v: string; s: string }>("SELECT current_setting('server_version') AS v, current_setting('synchronous_commit') AS s");
    return `PostgreSQL ${r.rows[0]!.v} (synchronous_commit=${r.rows[0]!.s})`;
  } finally {
    await client.end();
  }
}

await admin(`CREATE DATABASE "${DB_NAME}"`);
try {
  await main();
} finally {
  await admin(`DROP DATABASE IF EXISTS "${DB_NAME}" WITH (FORCE)`);
}
