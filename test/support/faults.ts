/**
 * Fault injection as wrappers around the real adapters: the wrapped store or bus behaves exactly
 * as the real one, except for the faults a test arms. Arming is explicit and counted, so a test
 * says precisely which call fails or waits.
 */
import net from 'node:net';
import { StoreUnavailableError, type Bus, type Command, type Store } from '../../src/index.js';

type StoreMethod = { [K in keyof Store]: Store[K] extends (...args: never[]) => unknown ? K : never }[keyof Store];

export interface Hold {
  /** Resolves when the held call's real work is done and its reply is held back. */
  readonly entered: Promise<void>;
  /** Lets the held reply through to the caller. */
  release(): void;
}

export interface FaultyStore {
  readonly store: Store;
  /** The next `times` calls of `method` throw `error` without reaching the store (default: a StoreUnavailableError, as a dropped connection). */
  fail(method: StoreMethod, times?: number, error?: () => unknown): void;
  /**
   * The next call of `method` reaches the real store at once, but its reply waits until
   * `release()`: a round trip whose answer arrives late (the database already did the work).
   */
  hold(method: StoreMethod): Hold;
  /** How many calls of `method` the wrapper has seen. */
  calls(method: StoreMethod): number;
  /** Resolves as the `n`th call of `method` begins (at once if it already has). */
  called(method: StoreMethod, n: number): Promise<void>;
  /**
   * From now on every reply of `method` arrives `ms` late, after the real work: a store across a
   * network instead of one that answers at once. `latency(method, 0)` removes it.
   */
  latency(method: StoreMethod, ms: number): void;
}

export function faultyStore(inner: Store): FaultyStore {
  const failures = new Map<string, Array<() => unknown>>();
  const holds = new Map<string, Array<{ enter: () => void; gate: Promise<void> }>>();
  const counts = new Map<string, number>();
  const delays = new Map<string, number>();
  const waiting: Array<{ name: string; n: number; resolve: () => void }> = [];
  const store = new Proxy(inner, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key, target);
      if (typeof value !== 'function') return value;
      const fn = (value as (...args: unknown[]) => unknown).bind(target);
      const name = String(key);
      return async (...args: unknown[]) => {
        const count = (counts.get(name) ?? 0) + 1;
        counts.set(name, count);
        for (const w of waiting) if (w.name === name && w.n <= count) w.resolve();
        const failure = failures.get(name)?.shift();
        if (failure !== undefined) throw failure();
        const hold = holds.get(name)?.shift();
        const result = await fn(...args);
        const delay = delays.get(name) ?? 0;
        if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
        if (hold !== undefined) {
          hold.enter();
          await hold.gate;
        }
        return result;
      };
    },
  });
  return {
    store,
    fail(method, times = 1, error = () => new StoreUnavailableError(`injected: ${method} failed (connection reset)`)) {
      const list = failures.get(method) ?? [];
      for (let i = 0; i < times; i++) list.push(error);
      failures.set(method, list);
    },
    hold(method) {
      let enter!: () => void;
      let release!: () => void;
      const entered = new Promise<void>((resolve) => (enter = resolve));
      const gate = new Promise<void>((resolve) => (release = resolve));
      const list = holds.get(method) ?? [];
      list.push({ enter, gate });
      holds.set(method, list);
      return { entered, release };
    },
    calls: (method) => counts.get(method) ?? 0,
    called(method, n) {
      if ((counts.get(method) ?? 0) >= n) return Promise.resolve();
      return new Promise<void>((resolve) => waiting.push({ name: method, n, resolve }));
    },
    latency: (method, ms) => void delays.set(method, ms),
  };
}

export interface FaultyBus {
  readonly bus: Bus;
  /** Commands of this kind published from now on are dropped (a lost message). */
  dropCommands(kind: Command['kind']): void;
  /** The next `times` calls of `publishEvents` throw synchronously (a broken bus client). */
  throwOnPublish(times?: number): void;
}

export function faultyBus(inner: Bus): FaultyBus {
  const dropped = new Set<string>();
  let throws = 0;
  const bus = new Proxy(inner, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key, target);
      if (key === 'publishCommand') {
        return (command: Command) => {
          if (!dropped.has(command.kind)) target.publishCommand(command);
        };
      }
      if (key === 'publishEvents') {
        return (...args: Parameters<Bus['publishEvents']>) => {
          if (throws > 0) {
            throws -= 1;
            throw new Error('injected: publishEvents threw');
          }
          target.publishEvents(...args);
        };
      }
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    bus,
    dropCommands: (kind) => void dropped.add(kind),
    throwOnPublish: (times = 1) => void (throws += times),
  };
}

export interface Outage {
  /** Where clients connect instead of the server (`127.0.0.1:port`). */
  readonly port: number;
  /** The server becomes unreachable: the port stops listening (connect is refused) and open connections are cut. */
  cut(): Promise<void>;
  /** The server is reachable again on the same port. */
  restore(): Promise<void>;
  /** Cuts and stops for good. */
  close(): Promise<void>;
}

/**
 * A TCP relay in front of a real server (PostgreSQL here), so a test can take the server away from
 * the code under test and give it back, without touching the server other tests share.
 */
export async function outage(target: { host: string; port: number }): Promise<Outage> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const listen = (port: number): Promise<void> => new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  await listen(0);
  const port = (server.address() as net.AddressInfo).port;
  const cut = async (): Promise<void> => {
    if (!server.listening) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of sockets) s.destroy();
    await closed;
  };
  return { port, cut, restore: () => (server.listening ? Promise.resolve() : listen(port)), close: cut };
}
