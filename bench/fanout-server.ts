/**
 * bench/fanout-server: one SSE server under test, in its own process, for bench/fanout.ts.
 *
 *   node --import tsx bench/fanout-server.ts --kind taskstream|limit|better-sse --rate R --events K
 *
 * It listens on 127.0.0.1 (port 0), prints one JSON line `{"port", "path", "pid"}` on stdout, then
 * takes commands as JSON lines on stdin and answers each with one JSON line on stdout:
 *
 *   {"cmd":"count"}    → {"count": open SSE streams}
 *   {"cmd":"gc"}       → {"gc": true|false}           (true when run with --expose-gc)
 *   {"cmd":"publish"}  → {"publishing": at}           then {"published": K, "at": ...} when done
 *   {"cmd":"heap"}     → {"heap": file}               (a V8 heap snapshot, in the working directory)
 *   {"cmd":"memory"}   → {"memory": {rssKB, spaces}}  (after a GC: RSS, and the bytes each V8 heap space has in RAM)
 *   {"cmd":"exit"}     → process.exit(0)              (so `--cpu-prof` writes its profile)
 *
 * Every server sends the same events: ids 1…K, event type `tick`, data `{"t":<send time>,"i":<n>}`
 * with `t` = performance.timeOrigin + performance.now() taken when the event is handed to the
 * server's send path (taskstream: `ctx.send`, so the store and the hub are inside the latency).
 * `--rate R` paces R events/s (events due are sent together when the loop runs late, and the loop
 * yields a turn between sends either way); `--rate 0` is a burst: one event per event-loop turn, as
 * fast as the server goes (see `pace`).
 */
import { createChannel, createSession } from 'better-sse';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { z } from 'zod';
import type * as Taskstream from '../src/index.js';

const { values: args } = parseArgs({
  options: {
    kind: { type: 'string' },
    rate: { type: 'string', default: '0' },
    events: { type: 'string', default: '1000' },
    /** Burst only: taskstream's task awaits each `ctx.send` instead of yielding one turn per event. */
    'await-sends': { type: 'boolean', default: false },
    /** taskstream from another checkout (its `src/index.ts`), for A/B runs; default this repository's. */
    src: { type: 'string' },
  },
});
const { createHandler, createTaskstream, defineTask, sqliteStore } = (await import(
  args.src === undefined ? '../src/index.js' : pathToFileURL(args.src).href
)) as typeof Taskstream;
const RATE = Number(args.rate);
const EVENTS = Number(args.events);
const AWAIT_SENDS = args['await-sends'];
if (!Number.isFinite(RATE) || RATE < 0 || !Number.isInteger(EVENTS) || EVENTS <= 0) throw new TypeError('bad --rate / --events');

const now = (): number => performance.timeOrigin + performance.now();
const reply = (o: object): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

/**
 * Calls `send(i)` for i = 0…events−1: paced at `rate`/s (all events that are due are sent at once
 * and only the last is awaited, so a slow send never lowers the offered rate), or, with rate 0,
 * one event per event-loop turn for every server (send, then `setImmediate`; taskstream's send
 * promises are all awaited at the end). With `--await-sends` taskstream's task instead awaits each
 * `ctx.send` (stored and published) before the next: the usual task code, one turn later per event.
 */
async function pace(rate: number, events: number, send: (i: number) => void | Promise<void>): Promise<void> {
  if (rate === 0) {
    const pending: Promise<void>[] = [];
    for (let i = 0; i < events; i++) {
      const p = send(i);
      if (p && AWAIT_SENDS) await p;
      else {
        if (p) pending.push(p);
        await nextTurn();
      }
    }
    await Promise.all(pending);
    return;
  }
  const start = performance.now();
  const period = 1000 / rate;
  let i = 0;
  while (i < events) {
    const due = Math.min(events, Math.floor((performance.now() - start) / period) + 1);
    let last: void | Promise<void> = undefined;
    while (i < due) last = send(i++);
    if (last) await last;
    // Always give the event loop a turn (sockets drain, requests are served), even when behind.
    const wait = start + i * period - performance.now();
    if (wait > 0) await sleep(wait);
    else await nextTurn();
  }
}

interface Server {
  readonly path: string;
  count(): number;
  publish(): Promise<void>;
}

const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' };

/** The limit: a Set of responses; each event is serialised once and written to every socket. */
function limitServer(): { handler: http.RequestListener; server: Server } {
  const clients = new Set<http.ServerResponse>();
  const handler: http.RequestListener = (req, res) => {
    res.writeHead(200, SSE_HEADERS);
    res.write('retry: 2000\n\n');
    clients.add(res);
    res.on('close', () => clients.delete(res));
  };
  return {
    handler,
    server: {
      path: '/events',
      count: () => clients.size,
      publish: () => pace(RATE, EVENTS, (i) => {
        const frame = `id: ${i + 1}\nevent: tick\ndata: ${JSON.stringify({ t: now(), i })}\n\n`;
        for (const res of clients) res.write(frame);
      }),
    },
  };
}

/** better-sse 0.16: a session per request, registered with one channel; `channel.broadcast` per event. */
function betterSseServer(): { handler: http.RequestListener; server: Server } {
  const channel = createChannel();
  const handler: http.RequestListener = (req, res) => {
    createSession(req, res).then((session) => channel.register(session), () => res.destroy());
  };
  return {
    handler,
    server: {
      path: '/events',
      count: () => channel.sessionCount,
      publish: () => pace(RATE, EVENTS, (i) => {
        channel.broadcast({ t: now(), i }, 'tick', { eventId: String(i + 1) });
      }),
    },
  };
}

/** taskstream: the whole server (SQLite store, group commit, bus, hub, HTTP handler). */
async function taskstreamServer(): Promise<{ handler: http.RequestListener; server: Server; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'taskstream-fanout-'));
  let started!: () => void;
  const done = new Promise<void>((resolve) => (started = resolve));
  const emit = defineTask({
    app: 'bench',
    type: 'Emit',
    input: z.object({ rate: z.number(), events: z.number().int() }),
    run: async (ctx, input) => {
      await pace(input.rate, input.events, (i) => ctx.send('tick', { t: now(), i }));
      started();
      return { sent: input.events };
    },
  });
  const runtime = await createTaskstream({ store: sqliteStore(join(dir, 'fanout.db')), tasks: [emit], sweepIntervalMs: 60_000 });
  // Pending until `publish`: every subscriber is attached before the first event.
  const task = await runtime.create(emit, { rate: RATE, events: EVENTS }, { runAt: new Date(Date.now() + 3_600_000) });
  return {
    handler: createHandler(runtime, { dashboard: false }),
    server: {
      path: `/stream/bench/Emit/${task.id}`,
      count: () => runtime.stats.subscribers,
      publish: async () => {
        await runtime.start(task.id);
        await done;
      },
    },
    close: async () => {
      await runtime.close({ timeoutMs: 1000 });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** RSS and, per V8 heap space, the bytes it has in RAM (`physical_space_size`), in KB, after a GC when exposed. */
function memory(): { rssKB: number; spaces: Record<string, number> } {
  (globalThis as { gc?: () => void }).gc?.();
  const spaces: Record<string, number> = {};
  for (const s of getHeapSpaceStatistics()) spaces[s.space_name] = Math.round(s.physical_space_size / 1024);
  return { rssKB: Math.round(process.memoryUsage.rss() / 1024), spaces };
}

async function main(): Promise<void> {
  const kind = args.kind;
  const built: { handler: http.RequestListener; server: Server; close?: () => Promise<void> } | undefined =
    kind === 'limit' ? limitServer() : kind === 'better-sse' ? betterSseServer() : kind === 'taskstream' ? await taskstreamServer() : undefined;
  if (built === undefined) throw new TypeError(`--kind must be taskstream, limit or better-sse, got ${kind}`);
  const httpServer = http.createServer(built.handler);
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', 4096, resolve));
  const address = httpServer.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  reply({ port: address.port, path: built.server.path, pid: process.pid });

  let publishing = false;
  const exit = async (): Promise<void> => {
    httpServer.closeAllConnections();
    httpServer.close();
    await built.close?.().catch(() => {});
    process.exit(0);
  };
  for await (const line of createInterface({ input: process.stdin })) {
    const { cmd } = JSON.parse(line) as { cmd: string };
    if (cmd === 'count') reply({ count: built.server.count() });
    else if (cmd === 'gc') {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      reply({ gc: gc !== undefined });
    } else if (cmd === 'publish' && !publishing) {
      publishing = true;
      reply({ publishing: now() });
      built.server.publish().then(() => reply({ published: EVENTS, at: now() }), (err: unknown) => reply({ error: String(err) }));
    } else if (cmd === 'heap') reply({ heap: writeHeapSnapshot() });
    else if (cmd === 'memory') reply({ memory: memory() });
    else if (cmd === 'exit') await exit();
  }
  // stdin closed: the orchestrator went away.
  await exit();
}

await main();
