/**
 * Real processes for the cluster tests: `serve` processes on one database, a private
 * `redis-server` that can be stopped and started on its own port, and an SSE reader that can
 * stop and reconnect elsewhere with Last-Event-ID. Every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createParser } from 'eventsource-parser';
import { after } from 'node:test';
import { cli, type Cli } from '../cli/helpers.js';
import { within } from '../support/within.js';

export interface Serve extends Cli {
  readonly url: string;
}

/** Starts `serve` on a free port; every process is killed after the file if still running. */
export async function serveProcess(args: string[]): Promise<Serve> {
  const proc = cli(['serve', '--port', '0', '--shutdown-timeout', '3000', '--log-level', 'warn', ...args]);
  after(() => proc.kill());
  const [, url = ''] = await proc.line(/listening on (http:\/\/\S+)/, 30_000);
  return Object.assign(proc, { url });
}

export async function post(url: string, body: unknown = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

export async function get(url: string): Promise<{ status: number; json: any }> {
  const res = await fetch(url);
  return { status: res.status, json: await res.json() };
}

export interface SseEvent {
  readonly seq: number;
  readonly type: string;
  readonly data: unknown;
}

const TERMINAL = new Set(['complete', 'error', 'cancelled', 'timeout']);

/**
 * Reads one SSE stream until its terminal event or until the connection drops. `done` resolves
 * with how it ended; `events` fills as they arrive.
 */
export function sse(url: string, lastEventId?: number): { events: SseEvent[]; done: Promise<'terminal' | 'dropped'>; wait(n: number, ms: number): Promise<void>; close(): void } {
  const events: SseEvent[] = [];
  const controller = new AbortController();
  const waiters = new Set<() => void>();
  const done = (async (): Promise<'terminal' | 'dropped'> => {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId);
    let terminal = false;
    try {
      const res = await fetch(url, { headers, signal: controller.signal });
      if (res.status !== 200 || res.body === null) throw new Error(`stream ${url}: HTTP ${res.status}`);
      const parser = createParser({
        onEvent(msg) {
          if (msg.id === undefined) return;
          events.push({ seq: Number(msg.id), type: msg.event ?? 'message', data: JSON.parse(msg.data) as unknown });
          if (TERMINAL.has(msg.event ?? '')) terminal = true;
          for (const w of waiters) w();
        },
      });
      const decoder = new TextDecoder();
      const reader = res.body.getReader();
      while (!terminal) {
        const { done: ended, value } = await reader.read();
        if (ended) break;
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } catch (err) {
      if (!controller.signal.aborted && events.length === 0 && !(err instanceof TypeError)) throw err;
    } finally {
      controller.abort();
    }
    return terminal ? 'terminal' : 'dropped';
  })();
  done.catch(() => {});
  return {
    events,
    done,
    close: () => controller.abort(),
    wait: (n, ms) => within(ms, new Promise<void>((resolve) => {
      const check = (): void => {
        if (events.length >= n) {
          waiters.delete(check);
          resolve();
        }
      };
      waiters.add(check);
      check();
    }), `${n} events on ${url} (got ${events.length})`),
  };
}

/** A `redis-server` of this test file's own, on `port`, that can be stopped and started again. */
export class PrivateRedis {
  readonly port: number;
  #proc: ChildProcess | undefined;

  constructor(port: number) {
    this.port = port;
    after(() => this.stop());
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#proc = proc;
    let out = '';
    await within(10_000, new Promise<void>((resolve, reject) => {
      proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        if (out.includes('Ready to accept connections')) resolve();
      });
      proc.once('exit', (code) => reject(new Error(`redis-server on ${this.port} exited (${code}): ${out}`)));
    }), `redis-server on port ${this.port}`);
  }

  async stop(): Promise<void> {
    const proc = this.#proc;
    this.#proc = undefined;
    if (proc === undefined || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await within(10_000, exited, 'redis-server to stop');
  }
}

export function seqs(events: readonly SseEvent[]): number[] {
  return events.map((e) => e.seq);
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
