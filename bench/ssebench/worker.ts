/**
 * One ssebench worker thread: opens its share of the connections, parses every stream and keeps
 * counts, a latency histogram and a per-10-ms timeline of events received. Loaded by ssebench.ts
 * with `new Worker`; importing it from the main thread only brings the types and constants.
 */
import http from 'node:http';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Histogram, type HistogramData } from './histogram.js';
import { SseParser } from './parser.js';

/** Resolution of the timeline of receipts. */
export const BUCKET_MS = 10;

export interface WorkerConfig {
  readonly url: string;
  readonly clients: number;
  readonly ramp: number;
  readonly expect: number;
  readonly connectTimeoutMs: number;
  /** Count events by their `id:` lines only: no parsing, no latency, no id checks (a cheap client, to measure the server's cost). */
  readonly countOnly: boolean;
  readonly buckets: number;
}

export interface WorkerResult {
  readonly type: 'result';
  readonly established: number;
  readonly failed: number;
  readonly failReasons: Record<string, number>;
  readonly completed: number;
  readonly closedByServer: number;
  readonly events: number;
  readonly missed: number;
  readonly duplicates: number;
  readonly outOfOrder: number;
  readonly perConnMin: number | null;
  readonly perConnMax: number | null;
  readonly latency: HistogramData;
  readonly timeline: Float64Array;
}

export type WorkerMessage = { readonly type: 'ready' } | { readonly type: 'connected' } | { readonly type: 'finished' } | WorkerResult;
/** `connect` carries t0, the start of the connect phase (ms since the epoch): timeline bucket 0. */
type Command = { readonly type: 'connect'; readonly t0: number } | { readonly type: 'window'; readonly at: number } | { readonly type: 'stop' };

interface Conn {
  req: http.ClientRequest | undefined;
  events: number;
  /** Last numeric id seen, -1 before the first. */
  lastId: number;
  missed: number;
  duplicates: number;
  outOfOrder: number;
  established: boolean;
  /** Counted as ended: completed, failed, or closed. */
  over: boolean;
}

function run(cfg: WorkerConfig, port: NonNullable<typeof parentPort>): void {
  const url = new URL(cfg.url);
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const latency = new Histogram();
  const timeline = new Float64Array(cfg.buckets);
  const failReasons: Record<string, number> = {};
  const conns: Conn[] = [];
  let t0 = 0;
  let windowStart = Infinity;
  let stopping = false;
  let started = 0, inFlight = 0, established = 0, failed = 0, completed = 0, closedByServer = 0, open = 0, events = 0;
  let connectedSent = false, finishedSent = false;
  /** Receipt time of the chunk being parsed. */
  let receivedAt = 0;

  const fail = (reason: string): void => {
    failed++;
    failReasons[reason] = (failReasons[reason] ?? 0) + 1;
  };
  const checkFinished = (): void => {
    if (connectedSent && !finishedSent && open === 0) {
      finishedSent = true;
      port.postMessage({ type: 'finished' } satisfies WorkerMessage);
    }
  };
  const end = (c: Conn): void => {
    if (c.over) return;
    c.over = true;
    if (c.established) open--;
    checkFinished();
  };

  const openOne = (): void => {
    started++;
    inFlight++;
    const c: Conn = { req: undefined, events: 0, lastId: -1, missed: 0, duplicates: 0, outOfOrder: 0, established: false, over: false };
    conns.push(c);
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      inFlight--;
      pump();
    };
    const parser = new SseParser((_type, data, id) => {
      if (c.over) return;
      c.events++;
      if (typeof id === 'number') {
        const expected = c.lastId + 1;
        if (c.lastId >= 0 && id !== expected) {
          if (id > expected) c.missed += id - expected;
          else if (id === c.lastId) c.duplicates++;
          else c.outOfOrder++;
        }
        if (id > c.lastId) c.lastId = id;
      }
      if (receivedAt >= windowStart) {
        // Fast path for data that starts with the send time (every bench server's does).
        const t = data.startsWith('{"t":') ? parseFloat(data.slice(5)) : sendTime(data);
        if (t === t) latency.record(receivedAt - t);
      }
      if (cfg.expect > 0 && c.events >= cfg.expect) {
        completed++;
        end(c);
        c.req?.destroy();
      }
    });
    const timer = setTimeout(() => {
      if (c.established || c.over) return;
      c.over = true;
      fail('connect-timeout');
      c.req?.destroy();
      settle();
    }, cfg.connectTimeoutMs);
    const req = http.request({ agent, host: url.hostname, port: url.port || 80, path: url.pathname + url.search, headers: { accept: 'text/event-stream' } });
    c.req = req;
    req.on('socket', (socket) => socket.setNoDelay(true));
    req.on('response', (res) => {
      clearTimeout(timer);
      if (c.over) return void res.destroy();
      const type = String(res.headers['content-type'] ?? '');
      if (res.statusCode !== 200 || !type.startsWith('text/event-stream')) {
        c.over = true;
        fail(res.statusCode !== 200 ? `status ${res.statusCode}` : `content-type ${type}`);
        res.destroy();
        settle();
        return;
      }
      c.established = true;
      established++;
      open++;
      settle();
      let tail = EMPTY;
      res.on('data', (chunk: Buffer) => {
        if (c.over) return;
        receivedAt = performance.timeOrigin + performance.now();
        const before = c.events;
        if (cfg.countOnly) {
          // The last bytes of the previous read go in front, so an `id:` line split across reads counts once.
          const buf = tail.length > 0 ? Buffer.concat([tail, chunk]) : chunk;
          c.events += countIds(buf);
          tail = Buffer.from(buf.subarray(Math.max(0, buf.length - (ID_LINE.length - 1))));
          if (cfg.expect > 0 && c.events >= cfg.expect) {
            completed++;
            end(c);
            c.req?.destroy();
          }
        } else parser.feed(chunk);
        const got = c.events - before;
        if (got > 0) {
          events += got;
          const b = Math.floor((receivedAt - t0) / BUCKET_MS);
          if (b >= 0 && b < timeline.length) timeline[b]! += got;
        }
      });
      const closed = (): void => {
        if (c.over || stopping) return;
        parser.end();
        closedByServer++;
        end(c);
      };
      res.on('end', closed);
      res.on('close', closed);
      res.on('error', () => {});
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!c.established) {
        if (!c.over) {
          c.over = true;
          fail(err.code ?? 'error');
        }
        settle();
      } else if (!c.over && !stopping) {
        closedByServer++;
        end(c);
      }
    });
    req.end();
  };

  const pump = (): void => {
    while (inFlight < cfg.ramp && started < cfg.clients) openOne();
    if (inFlight === 0 && started >= cfg.clients && !connectedSent) {
      connectedSent = true;
      port.postMessage({ type: 'connected' } satisfies WorkerMessage);
      checkFinished();
    }
  };

  port.postMessage({ type: 'ready' } satisfies WorkerMessage);
  port.on('message', (m: Command) => {
    if (m.type === 'connect') {
      t0 = m.t0;
      pump();
    }
    else if (m.type === 'window') windowStart = m.at;
    else {
      stopping = true;
      let min: number | null = null, max: number | null = null, missed = 0, duplicates = 0, outOfOrder = 0;
      for (const c of conns) {
        if (!c.established) continue;
        min = Math.min(min ?? Infinity, c.events);
        max = Math.max(max ?? -Infinity, c.events);
        missed += c.missed;
        duplicates += c.duplicates;
        outOfOrder += c.outOfOrder;
        c.req?.destroy();
      }
      agent.destroy();
      const result: WorkerResult = {
        type: 'result', established, failed, failReasons, completed, closedByServer, events, missed, duplicates, outOfOrder,
        perConnMin: min, perConnMax: max, latency: latency.data(), timeline,
      };
      port.postMessage(result);
    }
  });
}

const EMPTY = Buffer.alloc(0);
const ID_LINE = Buffer.from('\nid: ');

/** Occurrences of LF + `id: ` (every bench server writes `id:` first in a frame, after a blank line). */
function countIds(buf: Buffer): number {
  let n = 0;
  for (let at = buf.indexOf(ID_LINE); at !== -1; at = buf.indexOf(ID_LINE, at + ID_LINE.length)) n++;
  return n;
}

/** `t` of a JSON object's data, NaN when there is none. */
function sendTime(data: string): number {
  try {
    const o = JSON.parse(data) as unknown;
    return o !== null && typeof o === 'object' && typeof (o as { t?: unknown }).t === 'number' ? (o as { t: number }).t : NaN;
  } catch {
    return NaN;
  }
}

if (!isMainThread && parentPort !== null) run(workerData as WorkerConfig, parentPort);
