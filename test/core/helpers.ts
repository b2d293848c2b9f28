/**
 * Shared helpers of the core suite. Tests synchronise on events and conditions, never on sleeps;
 * every wait is bounded by `within`, which fails the test with what it was waiting for.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe } from 'node:test';
import {
  createTaskstream, TERMINAL_STATUSES,
  type Logger, type Store, type Taskstream, type TaskstreamOptions, type TaskEvent, type TaskRecord, type TaskRef, type TaskstreamEvents,
} from '../../src/index.js';
import { type Backend, backendSpace, busFor, storeFor, testBackends } from '../support/backends.js';
import { within } from '../support/within.js';

export { within, storeFor, type Backend };

export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * A fresh temp directory for one test file (removed after it); `db()` names a new SQLite file in
 * it, so every test gets its own database.
 */
export function tempDb(label: string): { db(name?: string): string; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `taskstream-${label}-`));
  let n = 0;
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return { dir, db: (name = `t${++n}`) => path.join(dir, `${name}.db`) };
}

/**
 * A test file's databases on one backend: `db()` names a new, empty database (a handle for
 * `open`), `store(handle)` opens another store on it (another "process"); `dir` is a temp dir.
 */
export interface BackendDb {
  readonly backend: Backend;
  readonly dir: string;
  db(name?: string): string;
  store(handle: string): Promise<Store>;
  /** PostgreSQL only: kills every server connection of this file's databases. */
  readonly terminateConnections: (() => Promise<number>) | undefined;
  /** PostgreSQL only: the server's address, and a store on database `handle` reached through `127.0.0.1:port` (a relay). */
  readonly server: { readonly host: string; readonly port: number } | undefined;
  readonly storeAt: ((handle: string, port: number, options?: { retries?: number }) => Promise<Store>) | undefined;
  /** PostgreSQL only: the database's URL and schema behind `handle`, for a connection of the test's own. */
  readonly where: ((handle: string) => Promise<{ readonly url: string; readonly schema: string }>) | undefined;
}

export function backendDb(backend: Backend, label: string): BackendDb {
  const space = backendSpace(backend, label);
  const { dir } = tempDb(`${label}-files`);
  return { backend, dir, db: () => space.db(), store: (handle) => space.store(handle), terminateConnections: space.terminateConnections,
    server: space.server, storeAt: space.storeAt, where: space.where };
}

/**
 * Declares the suite once per enabled backend (test/support/backends.ts), each with fresh
 * databases; a backend that cannot run here is skipped with the reason.
 */
export async function describeBackends(title: string, label: string, body: (tmp: BackendDb) => void): Promise<void> {
  for (const backend of await testBackends()) {
    void describe(`${title} [${backend.name}]`, { skip: backend.skip }, () => body(backendDb(backend, label)));
  }
}

/**
 * A runtime on a new store on the database `handle` names (from `BackendDb.db()`, or a plain
 * SQLite file path), or on `options.store` (a wrapper of one); fast sweeps unless told otherwise.
 */
export async function open(handle: string, options: Omit<TaskstreamOptions, 'store'> & { store?: Store }): Promise<Taskstream> {
  const store = options.store ?? await storeFor(handle);
  const bus = options.bus ?? busFor(handle);
  return createTaskstream({ sweepIntervalMs: 60_000, ...options, ...(bus ? { bus } : {}), store });
}

/** A runtime on a new, empty database of `tmp`'s backend. */
export async function openBackend(tmp: BackendDb, options: Omit<TaskstreamOptions, 'store'>): Promise<Taskstream> {
  return open(tmp.db(), options);
}

/** Waits until the task has a terminal status (by the runtime's `task:finished`), then returns it. */
export async function finished(rt: Taskstream, ref: TaskRef, ms = 5000): Promise<TaskRecord> {
  const id = typeof ref === 'number' ? ref : ref.id;
  const done = deferred();
  const off = rt.on('task:finished', (e) => {
    if (e.id === id) done.resolve();
  });
  try {
    const now = await rt.get(id);
    if (now === undefined) throw new Error(`task ${id} does not exist`);
    if (!TERMINAL_STATUSES.has(now.status)) await within(ms, done.promise, `task ${id} to finish`);
    const task = await rt.get(id);
    assert.ok(task && TERMINAL_STATUSES.has(task.status), `task ${id} should be finished, is ${task?.status}`);
    return task;
  } finally {
    off();
  }
}

/** Resolves with the first payload of a runtime event that matches (listening starts at the call). */
export function nextEvent<K extends keyof TaskstreamEvents>(
  rt: Taskstream, name: K, match: (payload: TaskstreamEvents[K]) => boolean, ms: number, what: string,
): Promise<TaskstreamEvents[K]> {
  const hit = deferred<TaskstreamEvents[K]>();
  const off = rt.on(name, (payload) => {
    if (match(payload)) hit.resolve(payload);
  });
  return within(ms, hit.promise, what).finally(off);
}

/** Reads a subscription to its end (after the terminal event), bounded. */
export async function collect(iterator: AsyncIterable<TaskEvent>, ms = 5000, what = 'the stream to end'): Promise<TaskEvent[]> {
  const events: TaskEvent[] = [];
  await within(ms, (async () => {
    for await (const e of iterator) events.push(e);
  })(), what);
  return events;
}

export const TERMINAL_TYPES = new Set(['complete', 'error', 'cancelled', 'timeout']);

/**
 * The log invariants every finished task must satisfy: seq 1..N without gap, exactly one terminal
 * event, and it is the last one, of the given type; the row's lastSeq is N.
 */
export async function assertLog(rt: Taskstream, task: TaskRecord, terminal: string): Promise<TaskEvent[]> {
  const events = await rt.events(task.id);
  assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1), `task ${task.id}: seq must be 1..N`);
  const terminals = events.filter((e) => TERMINAL_TYPES.has(e.type));
  assert.equal(terminals.length, 1, `task ${task.id}: exactly one terminal event, got ${terminals.map((e) => e.type).join(', ')}`);
  assert.equal(events.at(-1)?.type, terminal, `task ${task.id}: the last event must be ${terminal}`);
  assert.equal(task.lastSeq, events.length, `task ${task.id}: lastSeq must be the last event's seq`);
  return events;
}

export interface LogEntry {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly obj: object;
  readonly msg: string;
}

/** A logger that keeps what it is told (children share the list). */
export function capturingLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const make = (bindings: object): Logger & { entries: LogEntry[] } => ({
    entries,
    debug: (obj, msg = '') => entries.push({ level: 'debug', obj: { ...bindings, ...obj }, msg }),
    info: (obj, msg = '') => entries.push({ level: 'info', obj: { ...bindings, ...obj }, msg }),
    warn: (obj, msg = '') => entries.push({ level: 'warn', obj: { ...bindings, ...obj }, msg }),
    error: (obj, msg = '') => entries.push({ level: 'error', obj: { ...bindings, ...obj }, msg }),
    child: (more) => make({ ...bindings, ...more }),
  });
  return make({});
}

/** Rejects when `signal` aborts, with its reason; never resolves otherwise (a task's stand-in for slow work). */
export function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise<never>((_, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });
}
