/**
 * ssebench: an SSE fan-out load client (used by bench/fanout.ts; usable on its own).
 *
 *   node --import tsx bench/ssebench/ssebench.ts --url URL --clients N [--duration S]
 *        [--expect-events K] [--pid PID] [--workers W] [--ramp C] [--connect-timeout S] [--json] [--count-only]
 *
 * Opens N SSE connections (node:http), spread over W worker threads (default 2: each has its own
 * event loop), at most C connection attempts in flight at a time (default 256, so the server's
 * accept backlog never overflows). When every connection is up (or has failed) the measurement
 * window opens; it lasts S seconds, or with `--expect-events K` ends as soon as every connection
 * has K events (S then only bounds it). Reported, as JSON with `--json`:
 *
 * - connections established / failed (by reason) / completed (K events) / closed by the server;
 * - events received in the window and per second; fewest and most per connection;
 * - send-to-receipt latency of the window's events: each event's data must be a JSON object with a
 *   numeric `t`, the send time in ms since the epoch (`performance.timeOrigin + performance.now()`
 *   on the same machine); receipt time is when the chunk holding the event was read;
 * - ids: each connection's ids must be integers rising by 1; skipped ids, repeats and ids going
 *   back are counted;
 * - with `--pid`, that process's RSS (before connecting, when connected, peak VmHWM) and CPU % over
 *   the window, read from /proc (Linux).
 *
 * `--count-only` counts events by their `id:` lines and nothing else (no latency, no id checks): a
 * client that costs little, to measure what the server spends per delivered event.
 *
 * Every run is bounded: connect timeout + window + 30 s at most, then it exits with code 3.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { Histogram, type LatencySummary } from './histogram.js';
import { cpuSeconds, memory } from './proc.js';
import { type WorkerConfig, type WorkerMessage, type WorkerResult, BUCKET_MS } from './worker.js';

export interface SsebenchReport {
  readonly clients: number;
  readonly workers: number;
  readonly endReason: 'duration' | 'all-complete' | 'all-closed';
  readonly connections: {
    readonly established: number;
    readonly failed: number;
    readonly failReasons: Record<string, number>;
    /** With --expect-events: connections that received all K events; otherwise null. */
    readonly completed: number | null;
    readonly closedByServer: number;
    readonly connectPhaseMs: number;
  };
  readonly events: { readonly total: number; readonly inWindow: number; readonly windowSec: number; readonly perSec: number; readonly perConnMin: number | null; readonly perConnMax: number | null };
  readonly latencyMs: LatencySummary;
  readonly ids: { readonly missed: number; readonly duplicates: number; readonly outOfOrder: number };
  readonly server: {
    readonly pid: number;
    readonly rssBeforeKB: number;
    readonly rssConnectedKB: number;
    readonly peakKB: number;
    readonly rssPerConnKB: number | null;
    readonly peakPerConnKB: number | null;
    readonly cpuPct: number | null;
  } | null;
  readonly client: { readonly cpuPct: number | null };
}

const USAGE = 'usage: ssebench --url URL --clients N [--duration S] [--expect-events K] [--pid PID] [--workers W] [--ramp C] [--connect-timeout S] [--json] [--count-only]';

function options(): { url: URL; clients: number; duration: number; expect: number; pid: number | null; workers: number; ramp: number; connectTimeout: number; json: boolean; countOnly: boolean } {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      clients: { type: 'string', default: '1' },
      duration: { type: 'string', default: '10' },
      'expect-events': { type: 'string', default: '0' },
      pid: { type: 'string' },
      workers: { type: 'string', default: String(Math.min(2, os.cpus().length)) },
      ramp: { type: 'string', default: '256' },
      'connect-timeout': { type: 'string', default: '30' },
      json: { type: 'boolean', default: false },
      'count-only': { type: 'boolean', default: false },
    },
  });
  const count = (name: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new TypeError(`--${name}: expected an integer ≥ ${min}, got ${v}\n${USAGE}`);
    return n;
  };
  if (values.url === undefined) throw new TypeError(USAGE);
  const url = new URL(values.url);
  if (url.protocol !== 'http:') throw new TypeError(`--url: only http: is supported, got ${values.url}`);
  const duration = Number(values.duration);
  if (!(duration > 0)) throw new TypeError(`--duration: expected seconds > 0, got ${values.duration}`);
  const clients = count('clients', values.clients, 1);
  return {
    url, clients, duration,
    expect: count('expect-events', values['expect-events'], 0),
    pid: values.pid === undefined ? null : count('pid', values.pid, 1),
    workers: Math.min(clients, count('workers', values.workers, 1)),
    ramp: count('ramp', values.ramp, 1),
    connectTimeout: count('connect-timeout', values['connect-timeout'], 1),
    json: values.json,
    countOnly: values['count-only'],
  };
}

// Node 20 does not run `--import tsx` in worker threads, so the worker registers tsx itself.
const WORKER_BOOT = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then(({ register }) => { register(); return import(${JSON.stringify(new URL('./worker.ts', import.meta.url).href)}); })`;

const now = (): number => performance.timeOrigin + performance.now();

function next(worker: Worker, type: WorkerMessage['type']): Promise<WorkerMessage> {
  return new Promise((resolve) => {
    const on = (m: WorkerMessage): void => {
      if (m.type !== type) return;
      worker.off('message', on);
      resolve(m);
    };
    worker.on('message', on);
  });
}

async function main(): Promise<void> {
  const o = options();
  const hardStop = setTimeout(() => {
    process.stderr.write('ssebench: time limit reached, exiting\n');
    process.exit(3);
  }, (o.connectTimeout + o.duration + 30) * 1000);
  hardStop.unref();

  const before = o.pid === null ? null : memory(o.pid);
  const workers: Worker[] = [];
  for (let w = 0; w < o.workers; w++) {
    const config: WorkerConfig = {
      url: o.url.href,
      clients: Math.floor(o.clients / o.workers) + (w < o.clients % o.workers ? 1 : 0),
      ramp: Math.max(1, Math.ceil(o.ramp / o.workers)),
      expect: o.expect,
      connectTimeoutMs: o.connectTimeout * 1000,
      countOnly: o.countOnly,
      buckets: Math.ceil(((o.connectTimeout + o.duration + 30) * 1000) / BUCKET_MS),
    };
    const worker = new Worker(WORKER_BOOT, { eval: true, workerData: config });
    worker.on('error', (err) => {
      process.stderr.write(`ssebench: worker failed: ${String(err)}\n`);
      process.exit(4);
    });
    workers.push(worker);
  }
  const ready = workers.map((w) => next(w, 'ready'));
  const connected = workers.map((w) => next(w, 'connected'));
  const finished = workers.map((w) => next(w, 'finished'));
  await Promise.all(ready);
  const t0 = now();
  for (const w of workers) w.postMessage({ type: 'connect', t0 });
  await Promise.all(connected);
  const connectPhaseMs = now() - t0;

  const windowStart = now();
  for (const w of workers) w.postMessage({ type: 'window', at: windowStart });
  const atWindow = o.pid === null ? null : memory(o.pid);
  const serverCpu0 = o.pid === null ? null : cpuSeconds(o.pid);
  const clientCpu0 = process.cpuUsage();
  let endReason: SsebenchReport['endReason'] = 'duration';
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, o.duration * 1000);
    void Promise.all(finished).then(() => {
      endReason = o.expect > 0 ? 'all-complete' : 'all-closed';
      clearTimeout(timer);
      resolve();
    });
  });
  const windowEnd = now();
  const windowSec = (windowEnd - windowStart) / 1000;
  const clientCpu = process.cpuUsage(clientCpu0);
  const serverCpu1 = o.pid === null ? null : cpuSeconds(o.pid);
  const atEnd = o.pid === null ? null : memory(o.pid);

  const results = await Promise.all(workers.map((w) => {
    const result = next(w, 'result');
    w.postMessage({ type: 'stop' });
    return result;
  })) as WorkerResult[];
  await Promise.all(workers.map((w) => w.terminate()));

  const report = aggregate(o, results, { t0, windowStart, windowEnd, windowSec, connectPhaseMs, endReason });
  const established = report.connections.established;
  const perConn = (kb: number | undefined, base: number | undefined): number | null =>
    kb === undefined || base === undefined || established === 0 ? null : round1((kb - base) / established);
  const full: SsebenchReport = {
    ...report,
    server: o.pid === null || before === null || atWindow === null || atEnd === null ? null : {
      pid: o.pid,
      rssBeforeKB: before.rssKB,
      rssConnectedKB: atWindow.rssKB,
      peakKB: atEnd.peakKB,
      rssPerConnKB: perConn(atWindow.rssKB, before.rssKB),
      peakPerConnKB: perConn(atEnd.peakKB, before.rssKB),
      cpuPct: serverCpu0 !== null && serverCpu1 !== null && windowSec > 0.05 ? round1(((serverCpu1 - serverCpu0) / windowSec) * 100) : null,
    },
    client: { cpuPct: windowSec > 0.05 ? round1(((clientCpu.user + clientCpu.system) / 1e6 / windowSec) * 100) : null },
  };
  clearTimeout(hardStop);
  process.stdout.write(o.json ? `${JSON.stringify(full)}\n` : human(full));
}

function aggregate(
  o: ReturnType<typeof options>,
  results: readonly WorkerResult[],
  w: { t0: number; windowStart: number; windowEnd: number; windowSec: number; connectPhaseMs: number; endReason: SsebenchReport['endReason'] },
): Omit<SsebenchReport, 'server' | 'client'> {
  const latency = new Histogram();
  const failReasons: Record<string, number> = {};
  let established = 0, failed = 0, completed = 0, closedByServer = 0, total = 0, inWindow = 0;
  let missed = 0, duplicates = 0, outOfOrder = 0;
  let perConnMin: number | null = null, perConnMax: number | null = null;
  // Events per 10 ms bucket since t0; the buckets cut by the window's ends count pro rata.
  const from = (w.windowStart - w.t0) / BUCKET_MS;
  const to = (w.windowEnd - w.t0) / BUCKET_MS;
  for (const r of results) {
    latency.merge(r.latency);
    established += r.established;
    failed += r.failed;
    completed += r.completed;
    closedByServer += r.closedByServer;
    total += r.events;
    missed += r.missed;
    duplicates += r.duplicates;
    outOfOrder += r.outOfOrder;
    for (const [k, v] of Object.entries(r.failReasons)) failReasons[k] = (failReasons[k] ?? 0) + v;
    if (r.perConnMin !== null) perConnMin = Math.min(perConnMin ?? Infinity, r.perConnMin);
    if (r.perConnMax !== null) perConnMax = Math.max(perConnMax ?? -Infinity, r.perConnMax);
    for (let b = Math.floor(from); b < Math.min(r.timeline.length, Math.ceil(to)); b++) {
      const overlap = Math.min(to, b + 1) - Math.max(from, b);
      if (overlap > 0) inWindow += r.timeline[b]! * overlap;
    }
  }
  return {
    clients: o.clients,
    workers: o.workers,
    endReason: w.endReason,
    connections: { established, failed, failReasons, completed: o.expect > 0 ? completed : null, closedByServer, connectPhaseMs: round1(w.connectPhaseMs) },
    events: { total, inWindow: Math.round(inWindow), windowSec: Math.round(w.windowSec * 1000) / 1000, perSec: w.windowSec > 0 ? Math.round(inWindow / w.windowSec) : 0, perConnMin, perConnMax },
    latencyMs: latency.summary(),
    ids: { missed, duplicates, outOfOrder },
  };
}

function human(r: SsebenchReport): string {
  const c = r.connections, e = r.events, l = r.latencyMs, s = r.server;
  const lines = [
    `connections  ${c.established} established, ${c.failed} failed${c.failed > 0 ? ` ${JSON.stringify(c.failReasons)}` : ''}, ${c.closedByServer} closed by the server${c.completed !== null ? `, ${c.completed} completed` : ''}; connect phase ${c.connectPhaseMs} ms`,
    `events       ${e.inWindow} in ${e.windowSec} s = ${e.perSec}/s (${e.total} in all); per connection ${e.perConnMin ?? '–'}…${e.perConnMax ?? '–'}; window ended: ${r.endReason}`,
    `latency ms   n ${l.count}  p50 ${l.p50 ?? '–'}  p90 ${l.p90 ?? '–'}  p99 ${l.p99 ?? '–'}  max ${l.max ?? '–'}  mean ${l.mean ?? '–'}`,
    `ids          missed ${r.ids.missed}  duplicated ${r.ids.duplicates}  out of order ${r.ids.outOfOrder}`,
  ];
  if (s !== null) lines.push(`server       pid ${s.pid}: RSS ${s.rssBeforeKB} → ${s.rssConnectedKB} KB (${s.rssPerConnKB ?? '–'} KB/conn), peak ${s.peakKB} KB (${s.peakPerConnKB ?? '–'} KB/conn); CPU ${s.cpuPct ?? '–'} %`);
  lines.push(`client       CPU ${r.client.cpuPct ?? '–'} % over the window (${r.workers} worker threads)`);
  return `${lines.join('\n')}\n`;
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

main().catch((err: unknown) => {
  process.stderr.write(`ssebench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
