import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventSource } from 'eventsource';
import { exampleTasks } from '../../examples/tasks.js';
import {
  type AnyTaskDefinition, createHandler, createTaskstream, type HttpOptions, sqliteStore, type Taskstream,
  type TaskstreamOptions,
} from '../../src/index.js';
import { within } from '../support/within.js';

export { within };

/** Resolves when `check()` is true, re-checking on each runtime event; fails after `ms`. */
export async function until(runtime: Taskstream, check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  await within(ms, (async () => {
    while (!(await check())) {
      await new Promise<void>((resolve) => {
        const offs = [runtime.on('task:finished', done), runtime.on('task:started', done), runtime.on('task:requeued', done)];
        const timer = setTimeout(done, 20);
        function done(): void {
          offs.forEach((off) => off());
          clearTimeout(timer);
          resolve();
        }
      });
    }
  })(), what);
}

export interface TestServer {
  readonly runtime: Taskstream;
  readonly server: http.Server;
  readonly url: string;
  readonly dbPath: string;
  /** Closes server and runtime (idempotent). */
  close(): Promise<void>;
}

/** A database path in a fresh temp directory; `cleanup()` removes the directory. */
export function tempDb(): { path: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'taskstream-http-'));
  return { path: join(dir, 'tasks.db'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function startServer(options: {
  dbPath?: string;
  tasks?: readonly AnyTaskDefinition[];
  http?: HttpOptions;
  runtime?: Partial<TaskstreamOptions>;
} = {}): Promise<TestServer> {
  // A server given a dbPath leaves the file to its caller (a restart test reopens it).
  const db = options.dbPath ? undefined : tempDb();
  const dbPath = options.dbPath ?? db!.path;
  const runtime = await createTaskstream({
    store: sqliteStore(dbPath),
    tasks: [...exampleTasks, ...(options.tasks ?? [])],
    graceMs: 500,
    ...options.runtime,
  });
  const server = http.createServer(createHandler(runtime, { retryMs: 50, ...options.http }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    runtime,
    server,
    dbPath,
    url: `http://127.0.0.1:${port}`,
    close: () => (closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      try {
        // A test that failed mid-way may leave a watcher reconnecting forever, keeping the process alive.
        closeWatchers(`http://127.0.0.1:${port}`);
        await runtime.close({ timeoutMs: 1000 });
      } finally {
        server.closeAllConnections();
        await closed;
        db?.cleanup();
      }
    })()),
  };
}

export async function post(url: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, {
    method: 'POST',
    // Every POST says JSON, even with an empty body (the server answers 415 otherwise).
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, headers: res.headers };
}

export async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, headers: res.headers };
}

export interface Received {
  readonly seq: number;
  readonly type: string;
  readonly data: Record<string, unknown>;
}

const EVENT_TYPES = ['start', 'started', 'progress', 'final', 'complete', 'error', 'cancelled', 'timeout', 'retry', 'interrupted', 'tick', 'big'];
const TERMINAL = new Set(['complete', 'error', 'cancelled', 'timeout']);

/**
 * Watches a stream with the `eventsource` package (reconnects with Last-Event-ID by itself).
 * `done` resolves with every event received once the terminal event arrives.
 */
export function watch(url: string, onEvent?: (e: Received, es: EventSource) => void): { es: EventSource; events: Received[]; done: Promise<Received[]> } {
  const es = new EventSource(url);
  watchers.add(es);
  const events: Received[] = [];
  const done = new Promise<Received[]>((resolve) => {
    for (const type of EVENT_TYPES) {
      es.addEventListener(type, (message) => {
        // EventSource fires its own `error` events (connection trouble) with no data: not an SSE event.
        if (message.data === undefined) return;
        const e = { seq: Number(message.lastEventId), type, data: JSON.parse(message.data) as Record<string, unknown> };
        events.push(e);
        onEvent?.(e, es);
        if (TERMINAL.has(type)) {
          es.close();
          resolve(events);
        }
      });
    }
  });
  return { es, events, done };
}

/** Every EventSource `watch` opened that is still open; a server's close() closes those on its origin. */
const watchers = new Set<EventSource>();

function closeWatchers(origin: string): void {
  for (const es of watchers) {
    if (es.readyState === EventSource.CLOSED) watchers.delete(es);
    else if (es.url.startsWith(origin)) {
      es.close();
      watchers.delete(es);
    }
  }
}

export function seqs(events: readonly Received[]): number[] {
  return events.map((e) => e.seq);
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
