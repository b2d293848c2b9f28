/**
 * bench/access: what Access costs. The same taskstream server (bench/access-server.ts) with Access
 * off, and on (API key on every request, a stream token verified on every stream), in one run,
 * alternating which goes first each round. Two rows, as in bench/fanout and bench/ingest:
 *
 *   fan-out: one task's events to S subscribers, each stream opened with its own request (and, with
 *            Access on, `?token=`, one JWT verification per stream); deliveries per second from the
 *            `go` signal to the last subscriber's terminal event, and the time to open all S streams.
 *   ingest:  T tasks, each emitting E events with one subscriber (token-authenticated); events
 *            stored and delivered per second.
 *
 *   node --import tsx bench/access.ts [--quick] [--rounds 3] [--subscribers 1000] [--events 2000] [--tasks 100] [--ingest-events 2000] [--profile DIR]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { cpus } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    subscribers: { type: 'string' },
    events: { type: 'string' },
    tasks: { type: 'string' },
    'ingest-events': { type: 'string' },
    /** Run each server with --cpu-prof, profiles into DIR/off and DIR/on. */
    profile: { type: 'string' },
  },
});
const QUICK = args.quick;
const ROUNDS = Number(args.rounds ?? (QUICK ? 1 : 3));
const SUBSCRIBERS = Number(args.subscribers ?? (QUICK ? 200 : 1000));
const EVENTS = Number(args.events ?? (QUICK ? 500 : 2000));
const TASKS = Number(args.tasks ?? (QUICK ? 20 : 100));
const INGEST_EVENTS = Number(args['ingest-events'] ?? (QUICK ? 500 : 2000));
const SERVER = fileURLToPath(new URL('./access-server.ts', import.meta.url));
const BENCH_KEY = 'bench-key-0123456789abcdef';
const BENCH_SECRET = 'bench-secret-of-at-least-32-bytes-000000';
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

type Mode = 'off' | 'on';

class Server {
  readonly child: ChildProcess;
  port = 0;
  constructor(readonly mode: Mode) {
    this.child = spawn(process.execPath, [...(args.profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${args.profile}/${mode}`]), '--import', 'tsx', SERVER, ...(mode === 'on' ? ['--key', BENCH_KEY, '--secret', BENCH_SECRET] : [])], { stdio: ['pipe', 'pipe', 'inherit'] });
  }
  async ready(): Promise<void> {
    const lines = createInterface({ input: this.child.stdout! });
    for await (const line of lines) {
      const m = /^port (\d+)$/.exec(line);
      if (m) {
        this.port = Number(m[1]);
        return;
      }
    }
    throw new Error('bench server exited before listening');
  }
  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin!.end();
    await exited;
  }
  headers(): Record<string, string> {
    return this.mode === 'on' ? { authorization: `Bearer ${BENCH_KEY}` } : {};
  }
}

async function request(server: Server, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`, {
    method, headers: { 'content-type': 'application/json', ...server.headers() }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** Opens one SSE stream; `open` resolves at its headers, `done` at its terminal event (with the tick count). */
function subscribe(server: Server, task: { stream_url: string }): { open: Promise<void>; done: Promise<number> } {
  let opened!: () => void;
  let failed!: (err: Error) => void;
  const open = new Promise<void>((resolve, reject) => { opened = resolve; failed = reject; });
  const done = new Promise<number>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: server.port, path: task.stream_url, agent, headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        failed(new Error(`stream: ${res.statusCode}`));
        res.resume();
        return;
      }
      opened();
      let ticks = 0;
      let tail = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const text = tail + chunk;
        ticks += text.split('event: tick\n').length - 1;
        if (text.includes('event: complete\n')) {
          resolve(ticks);
          res.destroy();
        }
        tail = text.slice(-16);
      });
      res.on('error', () => {});
    });
    req.on('error', (err) => {
      failed(err);
      reject(err);
    });
  });
  open.catch(() => {});
  return { open, done };
}

async function fanout(server: Server): Promise<{ deliveriesPerSec: number; connectMs: number }> {
  const task = await request(server, 'POST', '/tasks/bench/Emit', { events: EVENTS });
  const t0 = performance.now();
  const subs = Array.from({ length: SUBSCRIBERS }, () => subscribe(server, task));
  await Promise.all(subs.map((s) => s.open));
  const connectMs = performance.now() - t0;
  const t1 = performance.now();
  await request(server, 'POST', `/tasks/bench/Emit/${task.id}/signals/go`, {});
  const ticks = await Promise.all(subs.map((s) => s.done));
  const elapsed = (performance.now() - t1) / 1000;
  if (ticks.some((n) => n !== EVENTS)) throw new Error(`fan-out: a subscriber missed events (${ticks.find((n) => n !== EVENTS)} of ${EVENTS})`);
  return { deliveriesPerSec: (SUBSCRIBERS * (EVENTS + 1)) / elapsed, connectMs };
}

async function ingest(server: Server): Promise<{ eventsPerSec: number }> {
  const tasks = await Promise.all(Array.from({ length: TASKS }, () => request(server, 'POST', '/tasks/bench/Emit', { events: INGEST_EVENTS })));
  const subs = tasks.map((t) => subscribe(server, t));
  await Promise.all(subs.map((s) => s.open));
  const t0 = performance.now();
  await Promise.all(tasks.map((t) => request(server, 'POST', `/tasks/bench/Emit/${t.id}/signals/go`, {})));
  const ticks = await Promise.all(subs.map((s) => s.done));
  const elapsed = (performance.now() - t0) / 1000;
  if (ticks.some((n) => n !== INGEST_EVENTS)) throw new Error('ingest: a subscriber missed events');
  return { eventsPerSec: (TASKS * INGEST_EVENTS) / elapsed };
}

const results: Record<Mode, { fanout: number[]; connect: number[]; ingest: number[] }> = {
  off: { fanout: [], connect: [], ingest: [] },
  on: { fanout: [], connect: [], ingest: [] },
};
console.log(`bench/access: ${ROUNDS} round(s); fan-out ${SUBSCRIBERS} subscribers × ${EVENTS} events; ingest ${TASKS} tasks × ${INGEST_EVENTS} events; ${cpus().length} cores, Node ${process.version}`);
for (let round = 0; round < ROUNDS; round++) {
  const order: Mode[] = round % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
  for (const mode of order) {
    const server = new Server(mode);
    try {
      await server.ready();
      const f = await fanout(server);
      const i = await ingest(server);
      results[mode].fanout.push(f.deliveriesPerSec);
      results[mode].connect.push(f.connectMs);
      results[mode].ingest.push(i.eventsPerSec);
      console.log(`round ${round + 1} access ${mode.padEnd(3)}  fan-out ${Math.round(f.deliveriesPerSec).toLocaleString('en')} deliveries/s (streams opened in ${Math.round(f.connectMs)} ms)  ingest ${Math.round(i.eventsPerSec).toLocaleString('en')} events/s`);
    } finally {
      await server.stop();
    }
  }
}
agent.destroy();

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const row = (name: string, key: 'fanout' | 'connect' | 'ingest', unit: string): string => {
  const off = median(results.off[key]);
  const on = median(results.on[key]);
  return `| ${name} | ${Math.round(off).toLocaleString('en')} ${unit} | ${Math.round(on).toLocaleString('en')} ${unit} | ${(on / off).toFixed(3)} |`;
};
console.log('\n| medians | Access off | Access on | on / off |\n|---|---:|---:|---:|');
console.log(row(`fan-out, ${SUBSCRIBERS} subscribers × ${EVENTS} events`, 'fanout', 'deliveries/s'));
console.log(row(`opening ${SUBSCRIBERS} streams`, 'connect', 'ms'));
console.log(row(`ingest, ${TASKS} tasks × ${INGEST_EVENTS} events`, 'ingest', 'events/s'));
