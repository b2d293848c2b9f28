/**
 * The hub over a bus that behaves like a network: a subscription that goes live late, messages
 * lost (at-most-once), a reconnect that asks for a resync, and a second process on the same store
 * whose bus this one never hears. A lost bus message costs latency, never an event.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { createTaskstream, defineTask, sqliteStore, TaskNotFoundError, TERMINAL_EVENTS, type TaskEvent } from '../../src/index.js';
import { FaultyBus, lossyBus, slowBus } from '../support/buses.js';
import { countingStore } from '../support/stores.js';
import { capturingLogger, collect, deferred, finished, open, tempDb, within } from './helpers.js';

const tmp = tempDb('hub-bus');

/** Waits for `gate`, then sends `count` ticks one after another (one bus message each). */
function steps(gate: Promise<void>) {
  return defineTask({
    app: 'core',
    type: 'Steps',
    input: z.object({ count: z.number().int() }),
    async run(ctx, { count }) {
      await gate;
      for (let i = 1; i <= count; i++) await ctx.send('tick', { i });
      return count;
    },
  });
}

/** A type another runtime registers so that it never claims `Steps`. */
const Other = defineTask({ app: 'core', type: 'Other', input: z.object({}), run: () => null });

function assertWhole(events: readonly TaskEvent[], count: number, who: string): void {
  assert.deepEqual(events.map((e) => e.seq), Array.from({ length: count + 1 }, (_, i) => i + 1), `${who}: seq 1..${count + 1}`);
  assert.equal(events.at(-1)?.type, 'complete', `${who}: ends with complete`);
}

/** Resolves once `check()` holds, re-checking every tick; bounded. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  await within(ms, (async () => {
    while (!check()) await new Promise((resolve) => setImmediate(resolve));
  })(), what);
}

void describe('subscribing resolves once the subscription is live', () => {
  void test('a task that finishes while SUBSCRIBE is in flight: the subscriber still gets every event and ends', async () => {
    const asked = deferred();
    const live = deferred();
    const bus = slowBus(async () => {
      asked.resolve();
      await live.promise;
    });
    const gate = deferred();
    const Steps = steps(gate.promise);
    // No position check during the test: only the hand-over can deliver the events.
    await using rt = await open(tmp.db(), { tasks: [Steps], bus, positionCheckMs: 3_600_000 });
    const task = await rt.create(Steps, { count: 3 });
    // subscribe() resolves once the subscription is live and the first read has found the task.
    const subscribing = rt.subscribe(task.id);
    await within(2000, asked.promise, 'the hub to subscribe');
    gate.resolve();
    await finished(rt, task.id);
    assert.ok(bus.lost.length === 0, 'nothing was dropped by the bus itself');
    live.resolve(); // the subscription is live only now: every publish so far reached no one
    const sub = await within(5000, subscribing, 'subscribe to resolve once live');
    assertWhole(await collect(sub, 5000, 'the late-live subscriber to end'), 3, 'subscriber');
  });

  void test('a subscription that goes live 50 ms later, under a task already sending: no gap, no duplicate', async () => {
    const gate = deferred();
    const Steps = steps(gate.promise);
    await using rt = await open(tmp.db(), { tasks: [Steps], bus: slowBus(50), positionCheckMs: 3_600_000 });
    const task = await rt.create(Steps, { count: 200 });
    gate.resolve();
    const subs = await Promise.all([rt.subscribe(task.id), rt.subscribe(task.id, { afterSeq: 5 })]);
    const [all, after5] = await Promise.all(subs.map((s) => collect(s, 10_000)));
    assertWhole(all!, 200, 'from the start');
    assert.deepEqual(after5!.map((e) => e.seq), Array.from({ length: 196 }, (_, i) => i + 6));
  });

  void test('a SUBSCRIBE that fails ends its watchers with an error; the next subscribe tries again and works', async () => {
    let failures = 1;
    const bus = new FaultyBus({ failSubscribe: () => failures-- > 0 });
    const gate = deferred();
    const Steps = steps(gate.promise);
    const logger = capturingLogger();
    await using rt = await open(tmp.db(), { tasks: [Steps], bus, logger });
    const task = await rt.create(Steps, { count: 2 });
    await assert.rejects(within(2000, rt.subscribe(task.id), 'the failed subscribe'), /event stream failed/);
    assert.equal(logger.entries.filter((e) => e.level === 'error').length, 1, 'the SUBSCRIBE error is logged once');
    assert.equal(rt.stats.subscribers, 0);
    const again = await rt.subscribe(task.id);
    gate.resolve();
    assertWhole(await collect(again), 2, 'second subscriber');
  });

  void test('a subscriber that leaves while SUBSCRIBE is in flight leaves no bus subscription behind', async () => {
    const live = deferred();
    const bus = slowBus(() => live.promise);
    const gate = deferred();
    const Steps = steps(gate.promise);
    await using rt = await open(tmp.db(), { tasks: [Steps], bus });
    const task = await rt.create(Steps, { count: 1 });
    const leave = new AbortController();
    const subscribing = rt.subscribe(task.id, { signal: leave.signal });
    assert.equal(rt.stats.subscribers, 1);
    leave.abort();
    await assert.rejects(within(2000, subscribing, 'the abandoned subscribe'), { name: 'AbortError' });
    assert.equal(rt.stats.subscribers, 0);
    live.resolve();
    // The subscription goes live after its last watcher left: the hub lets go of it at once.
    await until(() => bus.subscribed === 1 && bus.listeners === 0, 2000, 'the late subscription to be released');
    gate.resolve();
  });
});

void describe('a lost bus message costs latency, never an event', () => {
  void test('the terminal event\'s message is lost: the position check ends the stream anyway', async () => {
    const bus = lossyBus((_, events) => events.some((e) => TERMINAL_EVENTS.has(e.type)));
    const gate = deferred();
    const Steps = steps(gate.promise);
    await using rt = await open(tmp.db(), { tasks: [Steps], bus, positionCheckMs: 50 });
    const task = await rt.create(Steps, { count: 3 });
    const sub = await rt.subscribe(task.id);
    gate.resolve();
    assertWhole(await collect(sub, 5000, 'the stream to end without its terminal message'), 3, 'subscriber');
    assert.ok(bus.lost.some((l) => l.seqs.includes(4)), 'the terminal message was in fact lost');
  });

  void test('a third of all messages lost, at random: every subscriber gets exactly the log', async () => {
    let n = 0;
    const bus = lossyBus(() => ++n % 3 === 0);
    const gate = deferred();
    const Steps = steps(gate.promise);
    await using rt = await open(tmp.db(), { tasks: [Steps], bus, positionCheckMs: 50 });
    const task = await rt.create(Steps, { count: 300 });
    const subs = await Promise.all([rt.subscribe(task.id), rt.subscribe(task.id), rt.subscribe(task.id, { afterSeq: 100 })]);
    gate.resolve();
    const [a, b, c] = await Promise.all(subs.map((s) => collect(s, 10_000)));
    assertWhole(a!, 300, 'first');
    assertWhole(b!, 300, 'second');
    assert.deepEqual(c!.map((e) => e.seq), Array.from({ length: 201 }, (_, i) => i + 101));
    assert.ok(bus.lost.length >= 90, `messages were lost (${bus.lost.length})`);
  });

  void test('a bus reconnect asks for a resync: watchers catch up at once, without waiting for the position check', async () => {
    const bus = new FaultyBus();
    const gate = deferred();
    const Steps = steps(gate.promise);
    await using rt = await open(tmp.db(), { tasks: [Steps], bus, positionCheckMs: 3_600_000 });
    const task = await rt.create(Steps, { count: 5 });
    const sub = await rt.subscribe(task.id);
    gate.resolve();
    const first = await within(2000, sub.next(), 'the first event');
    const got: TaskEvent[] = [first.value as TaskEvent];
    bus.disconnect();
    await finished(rt, task.id);
    assert.ok(bus.lost.length > 0, 'messages were lost while disconnected');
    bus.reconnect();
    got.push(...(await collect(sub, 5000, 'the rest after the resync')));
    assertWhole(got, 5, 'subscriber');
  });
});

void describe('the position check costs one store read, whatever the watched tasks and their subscribers', () => {
  void test('30 subscribers on one task and 1 on another: each check is one read of both positions, and no page', async () => {
    const gate = deferred();
    const Held = defineTask({
      app: 'core',
      type: 'Held',
      input: z.object({}),
      async run(ctx) {
        await ctx.send('tick', { i: 1 });
        await gate.promise;
      },
    });
    const bus = lossyBus(() => false); // at-most-once, so every watched task is checked
    const store = countingStore(sqliteStore(tmp.db()));
    await using rt = await createTaskstream({ tasks: [Held], bus, store, positionCheckMs: 3_600_000, sweepIntervalMs: 60_000 });
    const [a, b] = [await rt.create(Held, {}), await rt.create(Held, {})];
    const subs = [...await Promise.all(Array.from({ length: 30 }, () => rt.subscribe(a.id))), await rt.subscribe(b.id)];
    // Every subscriber has had event 1, the last stored: all are live and caught up.
    await within(5000, Promise.all(subs.map((s) => s.next())), 'every subscriber\'s first event');
    const [pagesBefore, checksBefore] = [store.reads.calls, store.reads.positions.length];
    for (let i = 0; i < 3; i++) {
      bus.reconnect(); // a resync runs the position check at once
      await until(() => store.reads.positions.length >= checksBefore + i + 1, 2000, 'the check');
      await new Promise((resolve) => setImmediate(resolve));
    }
    const checks = store.reads.positions.slice(checksBefore);
    assert.equal(checks.length, 3, 'three checks, one read each');
    for (const ids of checks) assert.deepEqual([...ids].sort((x, y) => x - y), [a.id, b.id], 'each read asks for both watched tasks');
    assert.equal(store.reads.calls, pagesBefore, 'caught-up watchers read no page');
    gate.resolve();
    for (const s of subs) await collect(s);
  });
});

void describe('subscribing by id costs one store read', () => {
  void test('the first page tells that the task exists: no lookup of its own; a missing id or a wrong type is TaskNotFoundError', async () => {
    const gate = deferred();
    const Steps = steps(gate.promise);
    const store = countingStore(sqliteStore(tmp.db()));
    await using rt = await createTaskstream({ tasks: [Steps, Other], store, positionCheckMs: 3_600_000 });
    const task = await rt.create(Steps, { count: 2 });
    const [lookups, pages] = [store.reads.lookups, store.reads.calls];
    const sub = await rt.subscribe(task.id);
    assert.equal(store.reads.lookups, lookups, 'no getTask');
    assert.equal(store.reads.calls, pages + 1, 'one page read');
    gate.resolve();
    assertWhole(await collect(sub), 2, 'subscriber');
    await assert.rejects(rt.subscribe(task.id + 1000), TaskNotFoundError);
    assert.equal(rt.stats.subscribers, 0, 'the missing task left no watcher');
    await assert.rejects(rt.subscribe({ app: 'core', type: 'Other', id: task.id }), TaskNotFoundError);
    await assert.rejects(rt.subscribe(0), TaskNotFoundError);
  });

  void test('subscribes made in one tick share one first page read (readPages); each gets its own task, a missing id still fails alone', async () => {
    const gate = deferred();
    const Steps = steps(gate.promise);
    const store = countingStore(sqliteStore(tmp.db()));
    await using rt = await createTaskstream({ tasks: [Steps], store, positionCheckMs: 3_600_000 });
    const tasks: Array<{ id: number }> = [];
    for (let i = 0; i < 20; i++) tasks.push(await rt.create(Steps, { count: 1 + (i % 3) }));
    const pages = store.reads.calls;
    const missing = tasks.at(-1)!.id + 1000;
    const opened = await Promise.allSettled([...tasks.map((t) => rt.subscribe(t.id)), rt.subscribe(missing)]);
    assert.equal(opened.at(-1)!.status, 'rejected');
    assert.ok((opened.at(-1) as PromiseRejectedResult).reason instanceof TaskNotFoundError, 'the missing id');
    assert.deepEqual(store.reads.batches, [[...tasks.map((t) => t.id), missing]], 'one readPages for all 21');
    assert.equal(store.reads.calls, pages, 'no readEvents of their own');
    gate.resolve();
    for (let i = 0; i < tasks.length; i++) {
      const sub = (opened[i] as PromiseFulfilledResult<AsyncIterableIterator<TaskEvent>>).value;
      const events = await collect(sub);
      assertWhole(events, 1 + (i % 3), `subscriber ${i}`);
      assert.ok(events.every((e) => e.taskId === tasks[i]!.id), `subscriber ${i}: its own task's events`);
    }
  });

  void test('streams opened on one task in one tick share its first page: one read, and each still gets every event', async () => {
    const gate = deferred();
    const Steps = steps(gate.promise);
    const store = countingStore(sqliteStore(tmp.db()));
    await using rt = await createTaskstream({ tasks: [Steps], store, positionCheckMs: 3_600_000 });
    const task = await rt.create(Steps, { count: 3 });
    const pages = store.reads.calls;
    const subs = await Promise.all(Array.from({ length: 30 }, () => rt.subscribe(task.id)));
    assert.equal(store.reads.calls, pages + 1, 'one readEvents for the 30');
    assert.deepEqual(store.reads.batches, [], 'no readPages');
    gate.resolve();
    for (const [i, sub] of subs.entries()) assertWhole(await collect(sub), 3, `subscriber ${i}`);
  });
});

void describe('two runtimes on one SQLite file (two processes, a rolling restart)', () => {
  void test('a stream opened on the runtime that does not run the task gets every event and ends', async () => {
    const file = tmp.db();
    const gate = deferred();
    const Steps = steps(gate.promise);
    // Each has its own in-process bus: the watcher's bus never hears the runner's events.
    await using runner = await open(file, { tasks: [Steps] });
    await using watcher = await open(file, { tasks: [Other], positionCheckMs: 50 });
    const task = await runner.create(Steps, { count: 11 });
    const remote = await watcher.subscribe(task.id);
    const local = await runner.subscribe(task.id);
    gate.resolve();
    const [there, here] = await Promise.all([collect(remote, 10_000, 'the other runtime\'s stream'), collect(local)]);
    assertWhole(there, 11, 'other runtime');
    assert.deepEqual(there, here);
  });
});
