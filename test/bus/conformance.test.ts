/**
 * Every Bus honours the same contract (src/bus/types.ts): a subscription is live once
 * `subscribeEvents` resolves, events keep their order and content, commands reach every process,
 * publish never throws, `ping` tells the truth. Two "processes" are two bus instances (the local
 * bus is one instance shared by the runtimes of one process). Networked buses are then hurt:
 * a slow SUBSCRIBE, a killed connection, a subscriber that hears nothing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { createClient } from 'redis';
import { LocalBus, type Bus, type Command, type EventRecord } from '../../src/index.js';
import type { EventPage, TaskRecord } from '../../src/store/types.js';
import { postgresBus } from '../../src/store/postgres/index.js';
import { pgAdmin } from '../support/pg.js';
import { redisBus } from '../../src/bus/redis/index.js';
import { faultyClient } from '../support/faulty-redis.js';
import { POSTGRES_URL, REDIS_URL, skipUnlessPostgres, skipUnlessRedis } from '../support/services.js';
import { within } from '../support/within.js';
import { deferred } from '../core/helpers.js';

interface Pair {
  /** The subscribing process. */
  readonly a: Bus;
  /** Another process on the same bus. */
  readonly b: Bus;
  /** What the buses' store holds. */
  readonly log: Log;
}

/**
 * The store behind the buses, as far as they read it: events are stored before they are
 * published (the writer's rule), so `publish` records them here first. A hint-carrying bus
 * (PostgreSQL NOTIFY) reads them back from it.
 */
class Log {
  readonly #events = new Map<number, EventRecord[]>();
  add(events: readonly EventRecord[]): void {
    for (const e of events) {
      let list = this.#events.get(e.taskId);
      if (list === undefined) this.#events.set(e.taskId, (list = []));
      list.push(e);
    }
  }
  async getTask(taskId: number): Promise<TaskRecord | undefined> {
    return { lastSeq: this.#events.get(taskId)?.at(-1)?.seq ?? 0 } as TaskRecord;
  }
  async readEvents(taskId: number, afterSeq: number, page: { limit: number }): Promise<EventPage | undefined> {
    const all = this.#events.get(taskId) ?? [];
    const events = all.filter((e) => e.seq > afterSeq).slice(0, page.limit);
    return { events, firstSeq: 1, lastSeq: all.at(-1)?.seq ?? 0, status: 'running' };
  }
}
/** Stores, then publishes (the writer's order). */
function publish(pair: { b: Bus; log: Log }, taskId: number, events: EventRecord[]): void {
  pair.log.add(events);
  pair.b.publishEvents(taskId, events);
}

interface Backend {
  readonly name: string;
  readonly skip: string | false;
  open(): Promise<Pair>;
}

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

const prefix = (): string => `ts-bus-${randomBytes(6).toString('hex')}`;

/** A PostgreSQL database of this file's own (named with this suite's prefix), dropped after it. */
const pgSkip = await skipUnlessPostgres();
const pgDb = `ts_bus_conformance_${process.pid}`;
let pgCreated: Promise<void> | undefined;
async function pgUrl(): Promise<string> {
  pgCreated ??= pgAdmin(`CREATE DATABASE "${pgDb}"`);
  await pgCreated;
  return POSTGRES_URL.replace(/\/[^/?]*(\?|$)/, `/${pgDb}$1`);
}
after(async () => {
  if (pgCreated !== undefined) await pgAdmin(`DROP DATABASE IF EXISTS "${pgDb}" WITH (FORCE)`);
});
let pgChannels = 0;

export const backends: Backend[] = [
  {
    name: 'local',
    skip: false,
    async open() {
      const bus = new LocalBus();
      closers.push(() => bus.close());
      return { a: bus, b: bus, log: new Log() };
    },
  },
  {
    name: 'redis',
    skip: await skipUnlessRedis(),
    async open() {
      const p = prefix();
      const a = redisBus({ url: REDIS_URL, prefix: p });
      const b = redisBus({ url: REDIS_URL, prefix: p });
      closers.push(() => a.close(), () => b.close());
      await Promise.all([a.ready(), b.ready()]);
      return { a, b, log: new Log() };
    },
  },
  {
    name: 'postgres (LISTEN/NOTIFY)',
    skip: pgSkip,
    async open() {
      const url = await pgUrl();
      const channel = `ts_bus_${process.pid}_${++pgChannels}`;
      const log = new Log();
      const a = postgresBus({ connectionString: url, channel, store: log });
      const b = postgresBus({ connectionString: url, channel, store: log });
      closers.push(() => a.close(), () => b.close());
      await Promise.all([a.ready(), b.ready()]);
      return { a, b, log };
    },
  },
];

function event(taskId: number, seq: number, json = `{"n":${seq}}`): EventRecord {
  return { taskId, seq, type: 'progress', json, at: 1_700_000_000_000 + seq };
}

/** Collects what a listener receives; `until(n)` resolves once n events have arrived. */
function collector(): { listener: (events: readonly EventRecord[]) => void; got: EventRecord[]; until(n: number, ms?: number): Promise<void> } {
  const got: EventRecord[] = [];
  const waits: Array<{ n: number; resolve(): void }> = [];
  return {
    got,
    listener(events) {
      got.push(...events);
      for (const w of waits) if (got.length >= w.n) w.resolve();
    },
    until(n, ms = 5000) {
      if (got.length >= n) return Promise.resolve();
      return within(ms, new Promise<void>((resolve) => waits.push({ n, resolve })), `${n} events (got ${got.length})`);
    },
  };
}

function nextCommand(bus: Bus, match: (c: Command) => boolean): Promise<Command> {
  return new Promise((resolve) => {
    void bus.subscribeCommands((c) => {
      if (match(c)) resolve(c);
    });
  });
}

for (const backend of backends) {
  describe(`bus conformance: ${backend.name}`, { skip: backend.skip }, () => {
    test('events published after subscribe resolved reach the subscriber, in order and intact', async () => {
      const pair = await backend.open();
      const { a, b } = pair;
      const c = collector();
      const off = await a.subscribeEvents(7, c.listener);
      const sent = [event(7, 1, '{"text":"héllo ✓"}'), event(7, 2, '{}'), event(7, 3, '{"nested":{"a":[1,2]}}')];
      publish(pair, 7, sent.slice(0, 2));
      publish(pair, 7, sent.slice(2));
      await c.until(3);
      assert.deepEqual(c.got, sent);
      off();
    });

    test('batches of many tasks published in one tick each reach their own subscriber, in order', async () => {
      const pair = await backend.open();
      const ids = Array.from({ length: 20 }, (_, i) => 100 + i);
      const collectors = new Map(ids.map((id) => [id, collector()]));
      const offs = await Promise.all(ids.map((id) => pair.a.subscribeEvents(id, collectors.get(id)!.listener)));
      for (let seq = 1; seq <= 3; seq++) for (const id of ids) publish(pair, id, [event(id, seq)]);
      for (const id of ids) {
        const c = collectors.get(id)!;
        await c.until(3);
        assert.deepEqual(c.got.map((e) => [e.taskId, e.seq]), [[id, 1], [id, 2], [id, 3]]);
      }
      for (const off of offs) off();
    });

    test('a task nobody here watches is not delivered; the last unsubscribe stops delivery', async () => {
      const pair = await backend.open();
      const { a, b } = pair;
      const one = collector();
      const two = collector();
      const offOne = await a.subscribeEvents(1, one.listener);
      await a.subscribeEvents(2, two.listener);
      offOne();
      publish(pair, 3, [event(3, 1)]);
      publish(pair, 1, [event(1, 1)]);
      // Messages of one publisher arrive in order: once task 2's is here, task 1's would have been too.
      publish(pair, 2, [event(2, 1)]);
      await two.until(1);
      assert.equal(one.got.length, 0);
    });

    test('two listeners of one task both get every event', async () => {
      const pair = await backend.open();
      const { a, b } = pair;
      const x = collector();
      const y = collector();
      await a.subscribeEvents(9, x.listener);
      const offY = await a.subscribeEvents(9, y.listener);
      publish(pair, 9, [event(9, 1)]);
      await Promise.all([x.until(1), y.until(1)]);
      offY();
      publish(pair, 9, [event(9, 2)]);
      await x.until(2);
      assert.equal(y.got.length, 1);
    });

    test('commands reach every process, the publisher included', async () => {
      const pair = await backend.open();
      const { a, b } = pair;
      const atA = nextCommand(a, (c) => c.kind === 'cancel');
      const atB = nextCommand(b, (c) => c.kind === 'cancel');
      // subscribeCommands resolves once live; give both a tick to register before publishing.
      await Promise.all([a.ready(), b.ready()]);
      const signal = nextCommand(a, (c) => c.kind === 'signal');
      const wakes: Command[] = [];
      const twoWakes = new Promise<void>((resolve) => {
        void a.subscribeCommands((c) => {
          if (c.kind === 'wake' && wakes.push(c) === 2) resolve();
        });
      });
      await new Promise((r) => setImmediate(r));
      b.publishCommand({ kind: 'cancel', taskId: 5, reason: 'user asked' });
      b.publishCommand({ kind: 'signal', taskId: 5, name: 'continue' });
      b.publishCommand({ kind: 'wake' });
      b.publishCommand({ kind: 'wake', inMs: 1500 });
      assert.deepEqual(await within(5000, atA, 'cancel at a'), { kind: 'cancel', taskId: 5, reason: 'user asked' });
      assert.deepEqual(await within(5000, atB, 'cancel at b'), { kind: 'cancel', taskId: 5, reason: 'user asked' });
      assert.deepEqual(await within(5000, signal, 'signal at a'), { kind: 'signal', taskId: 5, name: 'continue' });
      await within(5000, twoWakes, 'both wakes at a');
      assert.deepEqual(wakes, [{ kind: 'wake' }, { kind: 'wake', inMs: 1500 }], 'a delayed wake says when');
    });

    test('ping resolves while connected and rejects after close; publish after close does not throw', async () => {
      const { a } = await backend.open();
      await a.ping();
      await a.close();
      if (backend.name !== 'local') await assert.rejects(a.ping());
      a.publishEvents(1, [event(1, 1)]);
      a.publishCommand({ kind: 'wake' });
    });
  });
}

describe('redis bus under faults', { skip: backends[1]!.skip }, () => {
  async function faulty(): Promise<{ a: Bus; b: Bus; log: Log; faults: ReturnType<typeof faultyClient>['faults']; name: string; resyncs: () => number; nextResync(): Promise<void>; connected: readonly boolean[]; untilConnected(state: boolean): Promise<void> }> {
    const p = prefix();
    const name = `${p}-a`;
    const { client, faults } = faultyClient(REDIS_URL, name);
    const connected: boolean[] = [];
    // Resolved the first time onConnected is told false, and true.
    const told = { false: deferred(), true: deferred() };
    const a = redisBus({
      client, prefix: p, probeIntervalMs: 100, probeTimeoutMs: 300,
      onConnected: (state) => {
        connected.push(state);
        told[`${state}`].resolve();
      },
    });
    const b = redisBus({ url: REDIS_URL, prefix: p });
    closers.push(async () => {
      await a.close();
      client.destroy();
    }, () => b.close());
    await Promise.all([a.ready(), b.ready()]);
    let count = 0;
    let waiters: Array<() => void> = [];
    a.onResync(() => {
      count++;
      for (const w of waiters) w();
      waiters = [];
    });
    return {
      a, b, log: new Log(), faults, name,
      resyncs: () => count,
      nextResync: () => within(10_000, new Promise<void>((resolve) => waiters.push(resolve)), 'onResync'),
      /** What onConnected was told, in order. */
      connected,
      /** Resolves once onConnected has been told `state` (now or later). */
      untilConnected: (state: boolean) => within(10_000, told[`${state}`].promise, `onConnected(${state})`),
    };
  }

  test('a SUBSCRIBE acknowledged 50 ms late: subscribeEvents waits for it, so the next publish is not lost', async () => {
    const pair = await faulty();
    const { a, faults } = pair;
    faults.subscribeDelayMs = 50;
    const c = collector();
    await a.subscribeEvents(11, c.listener);
    publish(pair, 11, [event(11, 1)]);
    await c.until(1);
    assert.equal(c.got[0]!.seq, 1);
  });

  test('one tick\'s publishes go as one EVAL; a server that refuses scripts gets them one by one, in order', async () => {
    const pair = await faulty();
    const { a, b, faults } = pair;
    const c = collector();
    const off = await b.subscribeEvents(12, c.listener);
    const send = (seqs: number[]): void => {
      const events = seqs.map((seq) => event(12, seq));
      pair.log.add(events);
      for (const e of events) a.publishEvents(12, [e]);
    };
    send([1, 2, 3]);
    await c.until(3);
    assert.equal(faults.evals, 1, 'three publishes of one tick, one command');
    faults.refuseScripts = true;
    send([4, 5, 6]);
    send([7, 8]);
    await c.until(8);
    assert.deepEqual(c.got.map((e) => e.seq), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(faults.evals, 2, 'refused once, then no more EVAL');
    off();
  });

  test('a dropped message is gone (at-most-once), and the next one still arrives', async () => {
    const pair = await faulty();
    const { a, faults } = pair;
    assert.equal(a.delivery, 'at-most-once');
    const c = collector();
    await a.subscribeEvents(12, c.listener);
    faults.dropEvents = 1;
    publish(pair, 12, [event(12, 1)]);
    publish(pair, 12, [event(12, 2)]);
    await c.until(1);
    assert.deepEqual(c.got.map((e) => e.seq), [2]);
  });

  test('CLIENT KILL of its connections: the bus reconnects, fires onResync with every channel live again', async () => {
    const pair = await faulty();
    const { a, b, name, faults, nextResync } = pair;
    assert.deepEqual(pair.connected, [], 'onConnected is not told of the first connection');
    const back = pair.untilConnected(true);
    const c = collector();
    await a.subscribeEvents(13, c.listener);
    const resynced = nextResync();
    // onResync says the subscriber is back; the publisher reconnects on its own.
    const publisherBack = within(10_000, faults.nextPublisherReady(), 'the publisher to reconnect');
    const admin = createClient({ url: REDIS_URL });
    await admin.connect();
    try {
      const list = await admin.sendCommand<string>(['CLIENT', 'LIST']);
      const ids = list.split('\n').filter((line) => line.includes(` name=${name} `)).map((line) => /id=(\d+)/.exec(line)![1]!);
      assert.ok(ids.length >= 2, `expected the publisher and the subscriber connection named ${name}`);
      // In one transaction: both connections are gone before either can reconnect.
      const kill = admin.multi();
      for (const id of ids) kill.addCommand(['CLIENT', 'KILL', 'ID', id]);
      await kill.exec();
    } finally {
      admin.destroy();
    }
    await Promise.all([resynced, publisherBack, back]);
    assert.deepEqual(pair.connected, [false, true], 'told once that Redis was lost, once that it is back');
    await within(5000, a.ping(), 'ping after reconnect');
    const commands = nextCommand(a, (cmd) => cmd.kind === 'signal');
    publish(pair, 13, [event(13, 1)]);
    b.publishCommand({ kind: 'signal', taskId: 13, name: 'go' });
    await c.until(1);
    await within(5000, commands, 'a command after reconnect');
  });

  test('a subscriber that stays connected but hears nothing is found by the probe, replaced, then onResync', async () => {
    const pair = await faulty();
    const { a, faults, nextResync } = pair;
    const c = collector();
    await a.subscribeEvents(14, c.listener);
    const made = faults.subscribers;
    const resynced = nextResync();
    faults.deafen();
    await resynced;
    assert.equal(faults.subscribers, made + 1, 'a new subscriber connection was made');
    publish(pair, 14, [event(14, 1)]);
    await c.until(1);
  });

  test('a batch larger than the inline limit announces its newest event, so a receiver knows it is behind', async () => {
    const p = prefix();
    const a = redisBus({ url: REDIS_URL, prefix: p, inlineMaxBytes: 100 });
    const b = redisBus({ url: REDIS_URL, prefix: p, inlineMaxBytes: 100 });
    const pair = { b, log: new Log() };
    closers.push(() => a.close(), () => b.close());
    await Promise.all([a.ready(), b.ready()]);
    const c = collector();
    await a.subscribeEvents(15, c.listener);
    const big = `{"pad":"${'x'.repeat(60)}"}`;
    publish(pair, 15, [event(15, 1, big), event(15, 2, big), event(15, 3, big)]);
    await c.until(1);
    assert.deepEqual(c.got.map((e) => e.seq), [3]);
    assert.equal(c.got[0]!.json, big);
  });
});

describe('postgres bus under faults', { skip: pgSkip }, () => {
  test('its listening connection terminated (pg_terminate_backend): it listens again, fires onResync, and hears what follows', async () => {
    const url = await pgUrl();
    const channel = `ts_bus_${process.pid}_${++pgChannels}`;
    const log = new Log();
    const a = postgresBus({ connectionString: url, channel, store: log });
    const b = postgresBus({ connectionString: url, channel, store: log });
    const pair = { b, log };
    closers.push(() => a.close(), () => b.close());
    await Promise.all([a.ready(), b.ready()]);
    const c = collector();
    await a.subscribeEvents(21, c.listener);
    // Both listening connections are terminated: each bus says when it listens again.
    const resynced = within(10_000, Promise.all([a, b].map((bus) => new Promise<void>((resolve) => bus.onResync(resolve)))), 'onResync of both');
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const killed = await admin.query(
        "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = current_database() AND query = $1 AND pid <> pg_backend_pid()",
        [`LISTEN "${channel}"`],
      );
      assert.equal(killed.rowCount, 2, 'both listening connections (a and b) were found');
    } finally {
      await admin.end();
    }
    await resynced;
    await within(5000, Promise.all([a.ping(), b.ping()]), 'ping after reconnect');
    const signal = nextCommand(a, (cmd) => cmd.kind === 'signal');
    publish(pair, 21, [event(21, 1)]);
    b.publishCommand({ kind: 'signal', taskId: 21, name: 'go' });
    await c.until(1);
    await within(5000, signal, 'a command after reconnect');
  });

  test('a burst is coalesced: many batches of one task cost few notifications, and the subscriber still gets every event', async () => {
    const url = await pgUrl();
    const channel = `ts_bus_${process.pid}_${++pgChannels}`;
    const log = new Log();
    const a = postgresBus({ connectionString: url, channel, store: log });
    const b = postgresBus({ connectionString: url, channel, store: log });
    const pair = { b, log };
    closers.push(() => a.close(), () => b.close());
    await Promise.all([a.ready(), b.ready()]);
    const c = collector();
    await a.subscribeEvents(22, c.listener);
    for (let seq = 1; seq <= 200; seq++) publish(pair, 22, [event(22, seq)]);
    await c.until(200);
    assert.deepEqual(c.got.map((e) => e.seq), Array.from({ length: 200 }, (_, i) => i + 1));
  });
});
