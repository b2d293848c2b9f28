/**
 * bench/fanout: events of one task streamed over SSE to N subscribers through the whole taskstream
 * server (SQLite store, group commit, bus, hub, Node handler), beside two peers in the same run:
 *
 *   limit:      a minimal node:http broadcaster: a Set of responses, each event serialised once and
 *               res.write()n to every socket (no store, no backpressure: the upper bound).
 *   better-sse: better-sse 0.16, one session per request registered with one channel,
 *               channel.broadcast() per event (what users pick today).
 *
 * Each server runs in its own process (bench/fanout-server.ts); the load client is bench/ssebench
 * (in this repository; `--pid` measures the server process alone). For every row the subscribers all connect
 * first; publishing starts as soon as the server counts N open streams; ssebench's measurement
 * window starts when its last connection is up.
 *
 *   node --import tsx bench/fanout.ts [--quick] [--json] [--duration 10] [--servers limit,taskstream,better-sse]
 *        [--subscribers 100,1000,10000] [--rates 1,10,100] [--burst 1000x2000] [--idle 10000] [--runs 3] [--profile DIR] [--heap DIR] [--save FILE] [--burst-await]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { SsebenchReport } from './ssebench/ssebench.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    /** Seconds of ssebench's measurement window on the paced rows. */
    duration: { type: 'string' },
    servers: { type: 'string', default: 'limit,taskstream,better-sse' },
    subscribers: { type: 'string' },
    /** Paced rates per stream, or `none` (burst and idle only). */
    rates: { type: 'string', default: '1,10,100' },
    /** `SUBSCRIBERSxEVENTS`, or `none`. */
    burst: { type: 'string', default: '1000x2000' },
    /** Subscribers of the idle-RSS run, or 0 to skip it. */
    idle: { type: 'string' },
    /** Run the taskstream server with --cpu-prof, profiles into this directory. */
    profile: { type: 'string' },
    /** Idle run: a heap snapshot of each server before its streams connect and one with them open, into this directory (see bench/heap-diff.ts). */
    heap: { type: 'string' },
    /** Burst row: taskstream's task awaits each ctx.send (the usual task code) instead of one send per turn. */
    'burst-await': { type: 'boolean', default: false },
    /** The load client only counts events (no parsing, latency or id checks): for the server's CPU per event. */
    'count-only': { type: 'boolean', default: false },
    /** A/B: also run taskstream from this checkout (its src/index.ts, with this repo's node_modules) as server `baseline`. */
    compare: { type: 'string' },
    /** Also write the JSON report to this file. */
    save: { type: 'string' },
    /** Runs per row and server; the row reports the median run (by delivered events/s, then p99). */
    runs: { type: 'string' },
  },
});

/** `baseline`: taskstream from another checkout (`--compare DIR`), for A/B figures in one run. */
type Kind = 'limit' | 'taskstream' | 'better-sse' | 'baseline';
const KINDS: readonly Kind[] = ['limit', 'taskstream', 'baseline', 'better-sse'];
const COMPARE = args.compare === undefined ? undefined : resolve(args.compare, 'src/index.ts');
const servers = [...args.servers.split(',').map((s) => s.trim()), ...(COMPARE ? ['baseline'] : [])] as Kind[];
for (const s of servers) if (!KINDS.includes(s)) throw new TypeError(`--servers: unknown server ${s}`);
const QUICK = args.quick;
const DURATION = num('duration', args.duration ?? (QUICK ? '5' : '10'));
const SUBSCRIBERS = list('subscribers', args.subscribers ?? (QUICK ? '100,1000' : '100,1000,10000'));
const RATES = args.rates === 'none' ? [] : list('rates', args.rates);
const BURST = args.burst === 'none' ? undefined : /^(\d+)x(\d+)$/.exec(args.burst);
if (args.burst !== 'none' && BURST === null) throw new TypeError('--burst must be SUBSCRIBERSxEVENTS or none');
const IDLE = num('idle', args.idle ?? (QUICK ? '1000' : '10000'), true);
const RUNS = num('runs', args.runs ?? (QUICK ? '1' : '3'));
if (!Number.isInteger(RUNS)) throw new TypeError(`--runs: expected an integer, got ${args.runs}`);
const SSEBENCH = fileURLToPath(new URL('./ssebench/ssebench.ts', import.meta.url));
const SERVER_SCRIPT = fileURLToPath(new URL('./fanout-server.ts', import.meta.url));
const TSX = ['--import', 'tsx'];
const log = (msg: string): void => void process.stderr.write(`${msg}\n`);

interface Row {
  readonly name: string;
  readonly subscribers: number;
  /** Events/s offered per stream; 0 = burst. */
  readonly rate: number;
  readonly events: number;
}

interface Result {
  readonly server: Kind;
  readonly established: number;
  readonly failed: number;
  readonly completed: number | null;
  readonly delivered: number;
  readonly windowSec: number;
  readonly p50: number | null;
  readonly p99: number | null;
  readonly max: number | null;
  readonly cpuPct: number | null;
  readonly rssPerConnKB: number | null;
  readonly peakRssPerConnKB: number | null;
  readonly missed: number;
  readonly duplicates: number;
  readonly outOfOrder: number;
  readonly connectMs: number;
  readonly perConnMin: number | null;
  readonly clientCpuPct: number | null;
}

interface IdleResult {
  readonly server: Kind;
  readonly subscribers: number;
  readonly rssBeforeKB: number;
  readonly rssIdleKB: number;
  readonly perConnKB: number;
  readonly ssebenchPerConnKB: number | null;
  /** KB per stream by where it went: each V8 heap space's growth in RAM, and `native` (the RSS growth outside the V8 heap). */
  readonly perConnBySpaceKB: Record<string, number>;
}

interface Memory {
  readonly rssKB: number;
  readonly spaces: Record<string, number>;
}

// ---------------------------------------------------------------------------------------------
// processes

/** Runs `node …` under bash with the fd limit raised to the hard limit (10,000 sockets per side). */
function spawnNode(nodeArgs: readonly string[], stdin: 'pipe' | 'ignore'): ChildProcess {
  return spawn('bash', ['-c', 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', process.execPath, ...nodeArgs], {
    stdio: [stdin, 'pipe', 'inherit'],
  });
}

class ServerProcess {
  readonly child: ChildProcess;
  readonly #messages: Record<string, unknown>[] = [];
  readonly #waiters: Array<() => void> = [];
  #exited = false;
  readonly exited: Promise<void>;

  constructor(kind: Kind, rate: number, events: number) {
    const prof = args.profile !== undefined && (kind === 'taskstream' || kind === 'baseline') ? ['--cpu-prof', `--cpu-prof-dir=${resolve(args.profile)}`] : [];
    const awaitSends = args['burst-await'] && (kind === 'taskstream' || kind === 'baseline') ? ['--await-sends'] : [];
    const src = kind === 'baseline' ? ['--src', COMPARE!] : [];
    this.child = spawnNode(['--expose-gc', ...prof, ...TSX, SERVER_SCRIPT, '--kind', kind === 'baseline' ? 'taskstream' : kind, ...src, '--rate', String(rate), '--events', String(events), ...awaitSends], 'pipe');
    this.exited = new Promise((res) => this.child.once('exit', () => {
      this.#exited = true;
      for (const w of this.#waiters.splice(0)) w();
      res();
    }));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.#messages.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        log(`server: ${line}`);
        return;
      }
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The next message that has `key` (earlier ones without it are dropped). */
  async next<T = Record<string, unknown>>(key: string, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.#messages.findIndex((m) => key in m);
      if (i >= 0) return this.#messages.splice(i, 1)[0] as T;
      if (this.#exited) throw new Error(`server exited while waiting for ${key}`);
      if (Date.now() > deadline) throw new Error(`server: no ${key} after ${timeoutMs} ms`);
      await new Promise<void>((res) => {
        this.#waiters.push(res);
        setTimeout(res, 100);
      });
    }
  }

  async ask<T = Record<string, unknown>>(cmd: string, key: string): Promise<T> {
    this.child.stdin!.write(`${JSON.stringify({ cmd })}\n`);
    return this.next<T>(key);
  }

  send(cmd: string): void {
    this.child.stdin!.write(`${JSON.stringify({ cmd })}\n`);
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    this.send('exit');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

function rssKB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]);
}

function runSsebench(url: string, clients: number, pid: number, extra: readonly string[]): { done: Promise<SsebenchReport> } {
  const countOnly = args['count-only'] ? ['--count-only'] : [];
  const child = spawnNode([...TSX, SSEBENCH, '--url', url, '--clients', String(clients), '--pid', String(pid), '--connect-timeout', '60', '--json', ...countOnly, ...extra], 'ignore');
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<SsebenchReport>((res, rej) => {
    child.once('exit', (code) => {
      if (code !== 0) return rej(new Error(`ssebench exited with ${code}`));
      try {
        res(JSON.parse(out) as SsebenchReport);
      } catch (err) {
        rej(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
  return { done };
}

/** Polls the server until it counts `n` open streams (or ssebench has ended). */
async function waitForSubscribers(server: ServerProcess, n: number, ended: () => boolean): Promise<void> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const { count } = await server.ask<{ count: number }>('count', 'count');
    if (count >= n || ended() || Date.now() > deadline) return;
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------------------------
// one row, one server

async function runOne(kind: Kind, row: Row): Promise<Result> {
  // Paced rows publish longer than the window (ssebench ends first); the burst sends exactly `events`.
  const events = row.rate > 0 ? Math.ceil(row.rate * (DURATION + 90)) : row.events;
  const server = new ServerProcess(kind, row.rate, events);
  try {
    const { port, path } = await server.next<{ port: number; path: string }>('port');
    await server.ask('gc', 'gc');
    await sleep(100);
    const extra = row.rate > 0 ? ['--duration', String(DURATION)] : ['--duration', '120', '--expect-events', String(row.events)];
    const bench = runSsebench(`http://127.0.0.1:${port}${path}`, row.subscribers, server.pid, extra);
    let ended = false;
    const done = bench.done.finally(() => (ended = true));
    await waitForSubscribers(server, row.subscribers, () => ended);
    server.send('publish');
    const r = await done;
    return {
      server: kind,
      established: r.connections.established,
      failed: r.connections.failed,
      completed: r.connections.completed,
      delivered: r.events.perSec,
      windowSec: r.events.windowSec,
      p50: r.latencyMs.p50,
      p99: r.latencyMs.p99,
      max: r.latencyMs.max,
      cpuPct: r.server?.cpuPct ?? null,
      rssPerConnKB: r.server?.rssPerConnKB ?? null,
      peakRssPerConnKB: r.server?.peakPerConnKB ?? null,
      missed: r.ids.missed,
      duplicates: r.ids.duplicates,
      outOfOrder: r.ids.outOfOrder,
      connectMs: r.connections.connectPhaseMs,
      perConnMin: r.events.perConnMin,
      clientCpuPct: r.client.cpuPct,
    };
  } finally {
    await server.stop();
  }
}

/** RSS per idle subscriber: N streams open, no events; (RSS with them − RSS before) / N, both after a GC. */
async function runIdle(kind: Kind, n: number): Promise<IdleResult> {
  const server = new ServerProcess(kind, 1, 1);
  try {
    const { port, path } = await server.next<{ port: number; path: string }>('port');
    await server.ask('gc', 'gc');
    await sleep(200);
    const before = rssKB(server.pid);
    const memBefore = (await server.ask<{ memory: Memory }>('memory', 'memory')).memory;
    if (args.heap !== undefined) await snapshot(server, `${kind}-before`);
    // With --heap the streams stay open longer: a snapshot of 10,000 streams takes seconds.
    const bench = runSsebench(`http://127.0.0.1:${port}${path}`, n, server.pid, ['--duration', args.heap === undefined ? '3' : '30']);
    let ended = false;
    const done = bench.done.finally(() => (ended = true));
    await waitForSubscribers(server, n, () => ended);
    await sleep(1000);
    await server.ask('gc', 'gc');
    await sleep(200);
    const idle = rssKB(server.pid);
    const memIdle = (await server.ask<{ memory: Memory }>('memory', 'memory')).memory;
    if (args.heap !== undefined) await snapshot(server, `${kind}-${n}-streams`);
    const r = await done;
    const established = r.connections.established;
    const perConnBySpaceKB: Record<string, number> = {};
    let heap = 0;
    for (const [space, kb] of Object.entries(memIdle.spaces)) {
      const grew = kb - (memBefore.spaces[space] ?? 0);
      heap += grew;
      if (grew !== 0) perConnBySpaceKB[space] = round2(grew / established);
    }
    perConnBySpaceKB.native = round2((memIdle.rssKB - memBefore.rssKB - heap) / established);
    return {
      server: kind, subscribers: established, rssBeforeKB: before, rssIdleKB: idle,
      perConnKB: round1((idle - before) / established), ssebenchPerConnKB: r.server?.rssPerConnKB ?? null, perConnBySpaceKB,
    };
  } finally {
    await server.stop();
  }
}

/** A heap snapshot of the server (it GCs first), moved to `--heap DIR` as NAME.heapsnapshot. */
async function snapshot(server: ServerProcess, name: string): Promise<void> {
  const { heap } = await server.ask<{ heap: string }>('heap', 'heap');
  const to = resolve(args.heap!, `${name}.heapsnapshot`);
  renameSync(resolve(heap), to);
  log(`  heap snapshot: ${to}`);
}

// ---------------------------------------------------------------------------------------------
// report

interface RowReport {
  readonly row: Row;
  /** Per server, the median over the runs of each figure (loss counts are summed instead). */
  readonly results: Partial<Record<Kind, Result>>;
  /** Every run, in order; the servers of one run ran one after another. */
  readonly runs: ReadonlyArray<Partial<Record<Kind, Result>>>;
  /** Median over the runs of each run's ratios (taskstream against the limit and better-sse of the same run). */
  readonly verdict?: Verdict;
}
interface Verdict {
  readonly deliveredRatio: number;
  readonly p99Ratio: number | null;
  readonly p99VsBetterSse: number | null;
  readonly delivered: boolean;
  readonly p99: boolean;
  readonly beatsBetterSse: boolean;
  readonly intact: boolean;
}

function verdictOf(results: Partial<Record<Kind, Result>>): Verdict | undefined {
  const ts = results.taskstream, lim = results.limit, bs = results['better-sse'];
  if (ts === undefined || lim === undefined) return undefined;
  const deliveredRatio = ts.delivered / lim.delivered;
  const p99Ratio = ts.p99 !== null && lim.p99 !== null ? ts.p99 / lim.p99 : null;
  const p99VsBetterSse = ts.p99 !== null && bs?.p99 != null ? ts.p99 / bs.p99 : null;
  return {
    deliveredRatio, p99Ratio, p99VsBetterSse,
    delivered: deliveredRatio >= 0.95,
    p99: p99Ratio !== null && p99Ratio <= 1.5,
    beatsBetterSse: p99VsBetterSse === null || p99VsBetterSse < 1,
    intact: intact(ts),
  };
}

function median(values: readonly number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}
function medianOrNull(values: ReadonlyArray<number | null>): number | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length === 0 ? null : median(known);
}

/** The median run of a server on a row: each figure's median; losses, repeats and failures summed over the runs. */
function medianResult(runs: readonly Result[]): Result {
  const m = (k: keyof Result): number | null => medianOrNull(runs.map((r) => r[k] as number | null));
  const sum = (k: 'failed' | 'missed' | 'duplicates' | 'outOfOrder'): number => runs.reduce((a, r) => a + r[k], 0);
  const completedShort = runs.reduce((a, r) => a + (r.completed === null ? 0 : r.established - r.completed), 0);
  const established = median(runs.map((r) => r.established));
  return {
    server: runs[0]!.server, established, failed: sum('failed'),
    completed: runs[0]!.completed === null ? null : established - completedShort,
    delivered: m('delivered')!, windowSec: m('windowSec')!, p50: m('p50'), p99: m('p99'), max: m('max'), cpuPct: m('cpuPct'),
    rssPerConnKB: m('rssPerConnKB'), peakRssPerConnKB: m('peakRssPerConnKB'),
    missed: sum('missed'), duplicates: sum('duplicates'), outOfOrder: sum('outOfOrder'),
    connectMs: m('connectMs')!, perConnMin: m('perConnMin'), clientCpuPct: m('clientCpuPct'),
  };
}

function medianVerdict(runs: ReadonlyArray<Partial<Record<Kind, Result>>>): Verdict | undefined {
  const each = runs.map(verdictOf).filter((v): v is Verdict => v !== undefined);
  if (each.length === 0) return undefined;
  const deliveredRatio = median(each.map((v) => v.deliveredRatio));
  const p99Ratio = medianOrNull(each.map((v) => v.p99Ratio));
  const p99VsBetterSse = medianOrNull(each.map((v) => v.p99VsBetterSse));
  return {
    deliveredRatio, p99Ratio, p99VsBetterSse,
    delivered: deliveredRatio >= 0.95,
    p99: p99Ratio !== null && p99Ratio <= 1.5,
    beatsBetterSse: p99VsBetterSse === null || p99VsBetterSse < 1,
    intact: each.every((v) => v.intact),
  };
}

/** Every connection up, no id missed, repeated or out of order, and (burst) every event received. */
function intact(r: Result): boolean {
  return r.failed === 0 && r.missed === 0 && r.duplicates === 0 && r.outOfOrder === 0 && (r.completed === null || r.completed === r.established);
}

function table(reports: readonly RowReport[]): string {
  const lines = [
    '| row | server | delivered ev/s | × limit | p50 ms | p99 ms | p99 × limit | server CPU % | server CPU µs / event | RSS/conn KB (connected / peak) | lost / dup / reordered |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const { row, results } of reports) {
    const lim = results.limit;
    for (const kind of KINDS) {
      const r = results[kind];
      if (r === undefined) continue;
      const lost = r.missed + (r.completed !== null ? r.established - r.completed : 0);
      lines.push(`| ${row.name} | ${kind} | ${fmt(r.delivered)} | ${lim ? (r.delivered / lim.delivered).toFixed(2) : '–'} | ${ms(r.p50)} | ${ms(r.p99)} | ${lim?.p99 && r.p99 !== null ? (r.p99 / lim.p99).toFixed(2) : '–'} | ${r.cpuPct === null ? '–' : round1(r.cpuPct)} | ${r.cpuPct === null || r.delivered === 0 ? '–' : ((r.cpuPct / 100 / r.delivered) * 1e6).toFixed(2)} | ${r.rssPerConnKB === null ? '–' : round1(r.rssPerConnKB)} / ${r.peakRssPerConnKB === null ? '–' : round1(r.peakRssPerConnKB)} | ${lost} / ${r.duplicates} / ${r.outOfOrder}${r.failed ? ` (${r.failed} failed)` : ''} |`);
    }
  }
  return lines.join('\n');
}

function verdicts(reports: readonly RowReport[]): string {
  const lines = [
    '| row | delivered × limit (≥ 0.95) | p99 × limit (≤ 1.5) | p99 × better-sse (< 1) | no loss/dup/reorder |',
    '|---|---:|---:|---:|---|',
  ];
  const mark = (ok: boolean): string => (ok ? '✓' : '✗');
  for (const { row, verdict: v } of reports) {
    if (v === undefined) continue;
    lines.push(`| ${row.name} | ${v.deliveredRatio.toFixed(2)} ${mark(v.delivered)} | ${v.p99Ratio?.toFixed(2) ?? '–'} ${mark(v.p99)} | ${v.p99VsBetterSse?.toFixed(2) ?? '–'} ${mark(v.beatsBetterSse)} | ${mark(v.intact)} |`);
  }
  return lines.join('\n');
}

function fmt(v: number): string {
  return Math.round(v).toLocaleString('en-US');
}
function ms(v: number | null): string {
  return v === null ? '–' : v < 10 ? v.toFixed(2) : v.toFixed(1);
}
function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
function num(name: string, value: string, zero = false): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || (!zero && n === 0)) throw new TypeError(`--${name}: expected a number > 0, got ${value}`);
  return n;
}
function list(name: string, value: string): number[] {
  return value.split(',').map((v) => num(name, v.trim()));
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (args.profile !== undefined) mkdirSync(resolve(args.profile), { recursive: true });
  if (args.heap !== undefined) mkdirSync(resolve(args.heap), { recursive: true });
  const rows: Row[] = [];
  for (const n of SUBSCRIBERS) for (const rate of RATES) rows.push({ name: `${fmt(n)} subs × ${rate} ev/s`, subscribers: n, rate, events: 0 });
  if (BURST) {
    const [n, k] = [Number(BURST[1]), Number(BURST[2])];
    rows.push({ name: `burst: ${fmt(n)} subs × ${fmt(k)} events`, subscribers: n, rate: 0, events: k });
  }
  const started = Date.now();
  const load0 = loadavg();
  const reports: RowReport[] = [];
  for (const [index, row] of rows.entries()) {
    const runs: Array<Partial<Record<Kind, Result>>> = [];
    for (let run = 0; run < RUNS; run++) {
      const results: Partial<Record<Kind, Result>> = {};
      // The order rotates from run to run and row to row so that no server always runs first (or right after another).
      const order = servers.map((_, i) => servers[(i + index + run) % servers.length]!);
      for (const kind of order) {
        log(`${row.name}${RUNS > 1 ? ` (run ${run + 1}/${RUNS})` : ''}: ${kind} …`);
        const r = await runOne(kind, row);
        results[kind] = r;
        log(`  ${fmt(r.delivered)} ev/s, p50 ${ms(r.p50)} p99 ${ms(r.p99)} ms, cpu ${r.cpuPct}%, lost ${r.missed} dup ${r.duplicates} ooo ${r.outOfOrder}, conns ${r.established}/${row.subscribers}`);
      }
      runs.push(results);
    }
    const results: Partial<Record<Kind, Result>> = {};
    for (const kind of servers) results[kind] = medianResult(runs.map((r) => r[kind]!));
    reports.push({ row, results, runs, verdict: medianVerdict(runs) });
  }
  const idle: IdleResult[] = [];
  if (IDLE > 0) {
    const byKind = new Map<Kind, IdleResult[]>(servers.map((k) => [k, []]));
    for (let run = 0; run < RUNS; run++) {
      for (const kind of servers) {
        log(`idle: ${kind} with ${fmt(IDLE)} subscribers${RUNS > 1 ? ` (run ${run + 1}/${RUNS})` : ''} …`);
        const r = await runIdle(kind, IDLE);
        log(`  ${r.perConnKB} KB per stream`);
        byKind.get(kind)!.push(r);
      }
    }
    // The median run by KB per stream.
    for (const runs of byKind.values()) idle.push([...runs].sort((a, b) => a.perConnKB - b.perConnKB)[runs.length >> 1]!);
  }
  const seconds = Math.round((Date.now() - started) / 1000);
  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), node ${process.version}`;
  const load1 = loadavg();
  const idleTs = idle.find((r) => r.server === 'taskstream');
  const report = JSON.stringify({
    date: new Date().toISOString(), machine, seconds, runs: RUNS, loadavgBefore: load0, loadavgAfter: load1, duration: DURATION,
    targets: { deliveredRatio: 0.95, p99RatioToLimit: 1.5, p99BelowBetterSse: true, idleRssPerConnKB: 12 },
    rows: reports, idle,
  }, null, 2);
  if (args.save !== undefined) writeFileSync(resolve(args.save), `${report}\n`);
  if (args.json) {
    console.log(report);
    return;
  }
  console.log(`bench/fanout: ${machine}; load client (bench/ssebench, 2 worker threads) and server share the cores.`);
  console.log(`${RUNS > 1 ? `median of ${RUNS} runs per row and server; ` : ''}paced rows: ${DURATION} s window; ${seconds} s in all; load average ${load0[0]!.toFixed(2)} before, ${load1[0]!.toFixed(2)} after\n`);
  console.log(table(reports));
  console.log('\ntaskstream against the targets:\n');
  console.log(verdicts(reports));
  if (idle.length > 0) {
    console.log(`\nRSS per idle subscriber (${fmt(IDLE)} open streams, no events; after a GC; target ≤ 12 KB for taskstream):\n`);
    console.log('| server | RSS before KB | RSS with streams KB | KB per subscriber | ssebench per-conn KB (no GC) |');
    console.log('|---|---:|---:|---:|---:|');
    for (const r of idle) console.log(`| ${r.server} | ${fmt(r.rssBeforeKB)} | ${fmt(r.rssIdleKB)} | ${r.perConnKB} | ${r.ssebenchPerConnKB ?? '–'} |`);
    console.log('\nWhere it went, KB per stream (V8 heap spaces in RAM; native = the rest of the RSS growth):\n');
    for (const r of idle) console.log(`- ${r.server}: ${Object.entries(r.perConnBySpaceKB).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    if (idleTs) console.log(`\ntaskstream idle RSS per subscriber: ${idleTs.perConnKB} KB (${idleTs.perConnKB <= 12 ? 'met' : 'NOT met'})`);
  }
}

await main();
