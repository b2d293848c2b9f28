/**
 * The backends the conformance suites run against, as a small table: a store backend makes fresh
 * databases and stores on them, a bus backend makes buses, and COMBINATIONS says which pairs run.
 * To add a backend, add an entry to STORES or BUSES and a row to COMBINATIONS.
 *
 * `TASKSTREAM_TEST_BACKENDS` filters, comma-separated: a combination (`postgres+local`), a store
 * (`postgres`: every combination with it) or a bus (`redis`). Default: every combination; one whose
 * service is not reachable is skipped, and its suite says why in the test output.
 *
 * A test file gets its own namespace per combination (`space(label)`): for PostgreSQL a fresh
 * database, dropped after the file, with a fresh schema for each `database()`.
 */
import { after } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { memoryStore, MemoryDatabase, sqliteStore, type Bus, type Store } from '../../src/index.js';
import { postgresStore } from '../../src/store/postgres/index.js';
import { pgAdmin, pgReachable, pgSettings, pgTerminate, withDatabase } from './pg.js';
import { randomBytes } from 'node:crypto';
import { redisBus } from '../../src/bus/redis/index.js';
import { REDIS_URL, skipUnlessRedis } from './services.js';

/** One test file's databases on one store backend. Handles are strings; each `store()` is a new "process" on that database. */
export interface StoreSpace {
  /** A new, empty database. */
  database(): string;
  /** A new store (its own connections) on the database `handle` names. */
  store(handle: string): Store;
  /** Resolves once `database()` handles can be opened (the PostgreSQL database exists). */
  ready(): Promise<void>;
  /** Kills every server connection to this file's databases (PostgreSQL: `pg_terminate_backend`); returns how many. Absent where there are none. */
  terminateConnections?(): Promise<number>;
  /** The server's address, for a relay in front of it (PostgreSQL only). */
  readonly server?: { readonly host: string; readonly port: number };
  /** A store on database `handle` that connects to `127.0.0.1:port` (a relay, or the server's own port) instead; `retries` as postgresStore's. */
  storeAt?(handle: string, port: number, options?: { retries?: number }): Store;
  /** Where database `handle` lives, for a test's own connection beside the store's (PostgreSQL only). */
  where?(handle: string): { readonly url: string; readonly schema: string };
}

export interface StoreBackend {
  readonly name: string;
  /** Undefined when usable here; else why not (shown as the skip reason). */
  unavailable(): Promise<string | undefined>;
  space(label: string): StoreSpace;
}

/** One test file's bus namespace. `bus(handle)` is a new bus of one "process" on database `handle` (processes on one database share a namespace). */
export interface BusSpace {
  /** A bus for one runtime, or undefined for the runtime's default (a bus of its own). */
  bus(handle: string): Bus | undefined;
}

export interface BusBackend {
  readonly name: string;
  unavailable(): Promise<string | undefined>;
  space(label: string): BusSpace;
}

const memory: StoreBackend = {
  name: 'memory',
  unavailable: async () => undefined,
  space() {
    const databases = new Map<string, MemoryDatabase>();
    return {
      database() {
        const handle = `memory:${databases.size + 1}`;
        databases.set(handle, new MemoryDatabase());
        return handle;
      },
      store: (handle) => memoryStore({ database: databases.get(handle) ?? fail(handle) }),
      ready: async () => {},
    };
  },
};

const sqlite: StoreBackend = {
  name: 'sqlite',
  unavailable: async () => undefined,
  space(label) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `taskstream-${label}-`));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    let n = 0;
    return { database: () => path.join(dir, `t${++n}.db`), store: (handle) => sqliteStore(handle), ready: async () => {} };
  },
};

const postgres: StoreBackend = {
  name: 'postgres',
  unavailable: pgReachable,
  space(label) {
    const settings = pgSettings();
    const dbName = `${settings.prefix}${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${process.pid}_${Date.now() % 100_000}`;
    let created: Promise<void> | undefined;
    const ready = (): Promise<void> => (created ??= pgAdmin(`CREATE DATABASE "${dbName}"`));
    after(async () => {
      if (created !== undefined) await pgAdmin(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    });
    let n = 0;
    const url = withDatabase(settings.url, dbName);
    const parsed = new URL(url);
    const schemaOf = (handle: string): string => handle.slice('postgres-schema:'.length);
    return {
      database: () => `postgres-schema:s${++n}`,
      store: (handle) => postgresStore({ connectionString: url, schema: schemaOf(handle), max: 4 }),
      ready,
      terminateConnections: () => pgTerminate(dbName),
      server: { host: parsed.hostname, port: Number(parsed.port || 5432) },
      where: (handle) => ({ url, schema: schemaOf(handle) }),
      storeAt(handle, port, options = {}) {
        const via = new URL(url);
        via.hostname = '127.0.0.1';
        via.port = String(port);
        return postgresStore({ connectionString: via.toString(), schema: schemaOf(handle), max: 4, connectionTimeoutMs: 1000, ...options });
      },
    };
  },
};

const local: BusBackend = {
  name: 'local',
  unavailable: async () => undefined,
  // Each runtime gets its own in-process bus, as separate processes would have separate buses.
  space: () => ({ bus: () => undefined }),
};

const redis: BusBackend = {
  name: 'redis',
  unavailable: async () => (await skipUnlessRedis()) || undefined,
  // Runtimes on one database share a prefix (one cluster); each file and database gets its own.
  space(label) {
    const base = `ts-bus-${label.replace(/[^a-z0-9]/gi, '').toLowerCase()}-${randomBytes(4).toString('hex')}`;
    return { bus: (handle) => redisBus({ url: REDIS_URL, prefix: `${base}-${handle.replace(/[^a-z0-9]/gi, '')}` }) };
  },
};

export const STORES: Record<string, StoreBackend> = { memory, sqlite, postgres };
export const BUSES: Record<string, BusBackend> = { local, redis };
/** The combinations the suites run, in this order. */
export const COMBINATIONS: ReadonlyArray<readonly [store: string, bus: string]> = [
  ['memory', 'local'],
  ['sqlite', 'local'],
  ['postgres', 'local'],
  ['sqlite', 'redis'],
  ['postgres', 'redis'],
];

export interface Backend {
  /** `store+bus`, e.g. `postgres+local`. */
  readonly name: string;
  readonly store: StoreBackend;
  readonly bus: BusBackend;
  /** False, or why this combination is skipped here (pass as `describe`'s `skip`). */
  readonly skip: false | string;
}

/** The combinations enabled by TASKSTREAM_TEST_BACKENDS, each with whether it is skipped and why. */
export async function testBackends(): Promise<Backend[]> {
  const filter = (process.env.TASKSTREAM_TEST_BACKENDS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const out: Backend[] = [];
  for (const [storeName, busName] of COMBINATIONS) {
    const name = `${storeName}+${busName}`;
    if (filter.length > 0 && !filter.some((f) => f === name || f === storeName || f === busName)) continue;
    const store = STORES[storeName]!;
    const bus = BUSES[busName]!;
    const why = (await store.unavailable()) ?? (await bus.unavailable());
    out.push({ name, store, bus, skip: why === undefined ? false : `${name} skipped: ${why}` });
  }
  return out;
}

/** What `open(handle)` needs to turn a handle into a store and a bus. */
interface Registered {
  readonly stores: StoreSpace;
  readonly buses: BusSpace;
}
const registry = new Map<string, Registered>();
let spaces = 0;

export interface BackendSpace {
  readonly backend: Backend;
  /** A new, empty database of this backend (a handle for `open`). */
  db(): string;
  /** A new store on the database `handle` names (a second "process" on it). */
  store(handle: string): Promise<Store>;
  /** The bus a runtime on `handle` gets (undefined: its own local bus). */
  bus(handle: string): Bus | undefined;
  /** See StoreSpace.terminateConnections. */
  readonly terminateConnections: (() => Promise<number>) | undefined;
  /** See StoreSpace.server. */
  readonly server: { readonly host: string; readonly port: number } | undefined;
  /** See StoreSpace.storeAt (undefined where the store has no server). */
  readonly storeAt: ((handle: string, port: number, options?: { retries?: number }) => Promise<Store>) | undefined;
  /** See StoreSpace.where (resolves once the database exists). */
  readonly where: ((handle: string) => Promise<{ readonly url: string; readonly schema: string }>) | undefined;
}

/** One test file's namespace on one backend: fresh databases, removed after the file. */
export function backendSpace(backend: Backend, label: string): BackendSpace {
  const stores = backend.store.space(label);
  const buses = backend.bus.space(label);
  const id = ++spaces;
  return {
    backend,
    db() {
      const handle = `${stores.database()}#${id}`;
      registry.set(handle, { stores, buses });
      return handle;
    },
    store: (handle) => storeFor(handle),
    bus: (handle) => buses.bus(handle),
    terminateConnections: stores.terminateConnections?.bind(stores),
    server: stores.server,
    storeAt: stores.storeAt === undefined ? undefined : async (handle, port, options) => {
      await stores.ready();
      return stores.storeAt!(handle.slice(0, handle.lastIndexOf('#')), port, options);
    },
    where: stores.where === undefined ? undefined : async (handle) => {
      await stores.ready();
      return stores.where!(handle.slice(0, handle.lastIndexOf('#')));
    },
  };
}

/** True when `handle` came from a backend space (else it is a plain SQLite path). */
export function isBackendHandle(handle: string): boolean {
  return registry.has(handle);
}

/** A new store on the database `handle` names; a plain path is a SQLite file. */
export async function storeFor(handle: string): Promise<Store> {
  const entry = registry.get(handle);
  if (entry === undefined) return sqliteStore(handle);
  await entry.stores.ready();
  return entry.stores.store(handle.slice(0, handle.lastIndexOf('#')));
}

/** The bus for a runtime on `handle` (undefined: the runtime makes its own). */
export function busFor(handle: string): Bus | undefined {
  const entry = registry.get(handle);
  return entry?.buses.bus(handle.slice(0, handle.lastIndexOf('#')));
}

function fail(handle: string): never {
  throw new Error(`no database ${handle} in this test file`);
}

