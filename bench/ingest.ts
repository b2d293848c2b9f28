/**
 * bench/ingest: N concurrent tasks emitting small events as fast as they can (each `await`s its
 * `send`), each with one `runtime.subscribe()` consumer, on the SQLite store (a temp file, WAL).
 * Reports events/s stored-and-delivered and the send→receipt latency, beside plain better-sqlite3
 * insert loops of the same rows, in the same run:
 *
 *   limit: the same rows into the same table schema, one transaction per batch of `tasks` rows
 *          (the group the runtime commits per tick when every task has one event in flight).
 *   naive: the same rows, one autocommit INSERT per row (what a write per event would cost).
 *
 *   node --import tsx bench/ingest.ts [--tasks 100] [--events 2000] [--retain-events N] [--json]
 *
 * With --retain-events N the taskstream line is run with retention off and with it on (each twice,
 * alternating, the faster counts), and both lines are reported: what pruning costs ingest.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createTaskstream, defineTask, sqliteStore } from '../src/index.js';

const { values: args } = parseArgs({
  options: {
    tasks: { type: 'string', default: '100' },
    events: { type: 'string', default: '2000' },
    json: { type: 'boolean', default: false },
    'naive-max-ms': { type: 'string', default: '15000' },
    'retain-events': { type: 'string' },
    /** Run only the taskstream line (for profiling: `node --cpu-prof --import tsx bench/ingest.ts --only-taskstream`). */
    'only-taskstream': { type: 'boolean', default: false },
  },
});
const TASKS = positiveInt('tasks', args.tasks);
const EVENTS = positiveInt('events', args.events);
const NAIVE_MAX_MS = positiveInt('naive-max-ms', args['naive-max-ms']);
const RETAIN = args['retain-events'] === undefined ? undefined : positiveInt('retain-events', args['retain-events']);
const TOTAL = TASKS * EVENTS;

const dir = mkdtempSync(join(tmpdir(), 'taskstream-bench-'));
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

/** The store's connection settings (sqlite-store.ts), on a fresh file holding only the events table. */
function plainDb(file: string): Database.Database {
  const db = new Database(join(dir, file));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  const migration = readFileSync(new URL('../src/store/sqlite/migrations/001_init.sql', import.meta.url), 'utf8');
  const events = /CREATE TABLE events \([^;]*\)[^;]*;/.exec(migration);
  if (events === null) throw new Error('bench: events table not found in 001_init.sql');
  db.exec(events[0]);
  return db;
}

/**
 * The rows the runtime stores, in the order it stores them: round i holds event i of every task.
 * The JSON is built in the loop, like the runtime's `send`, with the same shape and size.
 */
function limitBatched(file: string): Line {
  const db = plainDb(file);
  const insert = db.prepare('INSERT INTO events (task_id, seq, type, data, at) VALUES (?, ?, ?, ?, ?)');
  const round = db.transaction((i: number) => {
    const at = Date.now();
    for (let task = 1; task <= TASKS; task++) insert.run(task, i + 1, 'tick', JSON.stringify({ i, t: now() }), at);
  });
  const cpu = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < EVENTS; i++) round.immediate(i);
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  db.close();
  removeDb(file);
  return line(`limit: plain better-sqlite3, 1 transaction per ${TASKS} rows`, TOTAL, seconds, used);
}

function naivePerRow(): Line {
  const db = plainDb('naive.db');
  const insert = db.prepare('INSERT INTO events (task_id, seq, type, data, at) VALUES (?, ?, ?, ?, ?)');
  const cpu = process.cpuUsage();
  const start = performance.now();
  const deadline = start + NAIVE_MAX_MS;
  let rows = 0;
  outer: for (let i = 0; i < EVENTS; i++) {
    for (let task = 1; task <= TASKS; task++) {
      insert.run(task, i + 1, 'tick', JSON.stringify({ i, t: now() }), Date.now());
      rows++;
    }
    if (performance.now() > deadline) break outer;
  }
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  db.close();
  removeDb('naive.db');
  return line(`naive: plain better-sqlite3, 1 autocommit INSERT per row${rows < TOTAL ? ` (stopped after ${rows} rows)` : ''}`, rows, seconds, used);
}

async function taskstream(tasks: number, events: number, file: string, retainEvents?: number): Promise<Line> {
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
    store: sqliteStore(join(dir, file)),
    tasks: [ticker],
    concurrency: tasks,
    sweepIntervalMs: 60_000,
    retainEvents,
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
    for (const id of ids) await runtime.start(id);
    await Promise.all(consumers.map((c) => c.done));
    const cpuUsed = process.cpuUsage(cpu);
    if (delivered !== tasks * events) throw new Error(`delivered ${delivered} of ${tasks * events}`);
    if (retainEvents !== undefined) {
      const kept = (await runtime.events(ids[0]!)).length;
      if (kept !== Math.min(retainEvents, events + 1)) throw new Error(`retention: task ${ids[0]} kept ${kept} events, not ${retainEvents}`);
    }
    const sorted = latencies.subarray(0, delivered).sort();
    const name = `taskstream: stored + delivered to 1 subscriber each${retainEvents === undefined ? '' : `, retaining ${retainEvents} events per task`}`;
    return line(name, delivered, (lastReceipt - firstSend) / 1000, cpuUsed, {
      p50Ms: sorted[Math.floor(delivered * 0.5)]!,
      p99Ms: sorted[Math.floor(delivered * 0.99)]!,
      maxMs: sorted[delivered - 1]!,
    });
  } finally {
    await runtime.close({ timeoutMs: 1000 });
    removeDb(file);
  }
}

/** Each phase starts on a fresh file and leaves nothing behind for the next one. */
function removeDb(file: string): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(join(dir, file + suffix), { force: true });
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
  // Warm-up (JIT, page cache) on a separate file, not reported.
  await taskstream(Math.min(TASKS, 20), Math.min(EVENTS, 200), 'warmup.db');
  if (args['only-taskstream']) {
    console.log(JSON.stringify(await taskstream(TASKS, EVENTS, 'taskstream.db')));
    return;
  }
  // The limit runs before and after taskstream and the faster run counts, so neither the order nor
  // a burst of load from elsewhere during one of them flatters the ratio.
  const before = limitBatched('limit-1.db');
  let ts = await taskstream(TASKS, EVENTS, 'taskstream.db');
  let retained: Line | undefined;
  if (RETAIN !== undefined) {
    // off, on, on, off: the faster of each pair counts, so neither gets the quieter moment.
    const on = [await taskstream(TASKS, EVENTS, 'retain-1.db', RETAIN), await taskstream(TASKS, EVENTS, 'retain-2.db', RETAIN)];
    const off = await taskstream(TASKS, EVENTS, 'taskstream-2.db');
    if (off.eventsPerSecond > ts.eventsPerSecond) ts = off;
    retained = on[0]!.eventsPerSecond >= on[1]!.eventsPerSecond ? on[0]! : on[1]!;
  }
  const after = limitBatched('limit-2.db');
  const limit = before.eventsPerSecond >= after.eventsPerSecond ? before : after;
  const naive = naivePerRow();
  const lines = retained === undefined ? [ts, limit, naive] : [ts, retained, limit, naive];
  const ratio = (l: Line): number => l.eventsPerSecond / limit.eventsPerSecond;
  const target = { eventsPerSecond: 50_000, ratioToLimit: 0.5 };
  const meets = ts.eventsPerSecond >= target.eventsPerSecond && ratio(ts) >= target.ratioToLimit;
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), node ${process.version}`;
  if (args.json) {
    console.log(JSON.stringify({
      date: new Date().toISOString(), machine, dir, tasks: TASKS, eventsPerTask: EVENTS, target, meetsTarget: meets,
      limitRuns: [before.eventsPerSecond, after.eventsPerSecond],
      ...(retained === undefined ? {} : { retainEvents: RETAIN, retentionCost: 1 - retained.eventsPerSecond / ts.eventsPerSecond }),
      results: lines.map((l) => ({ ...l, ratioToLimit: ratio(l) })),
    }, null, 2));
    return;
  }
  const fmt = (v: number): string => Math.round(v).toLocaleString('en-US');
  const ms = (v: number | undefined): string => (v === undefined ? '–' : v.toFixed(2));
  console.log(`bench/ingest: ${TASKS} tasks × ${EVENTS} events (${TOTAL} events), SQLite WAL synchronous=NORMAL, ${machine}\n`);
  console.log('| | events/s | ratio to limit | CPU µs/event | p50 send→receipt (ms) | p99 (ms) | max (ms) |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const l of lines) {
    console.log(`| ${l.name} | ${fmt(l.eventsPerSecond)} | ${ratio(l).toFixed(2)} | ${l.cpuUsPerEvent.toFixed(1)} | ${ms(l.p50Ms)} | ${ms(l.p99Ms)} | ${ms(l.maxMs)} |`);
  }
  console.log(`\nlimit = the faster of two runs (before taskstream: ${fmt(before.eventsPerSecond)}/s, after: ${fmt(after.eventsPerSecond)}/s); files under ${tmpdir()}`);
  if (retained !== undefined) {
    console.log(`retention (${RETAIN} events per task): ${(retained.eventsPerSecond / ts.eventsPerSecond).toFixed(2)}× the events/s without it, ${(retained.cpuUsPerEvent / ts.cpuUsPerEvent).toFixed(2)}× the CPU per event (target: costs <= 10%)`);
  }
  console.log(`target: >= ${target.eventsPerSecond.toLocaleString('en-US')} events/s and >= ${target.ratioToLimit}× the limit: ${meets ? 'met' : 'NOT met'}`);
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
