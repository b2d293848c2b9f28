/**
 * The event writer with a store that takes more than one append at once (`appendsInFlight`, as
 * PostgreSQL's does): a second batch goes while the first waits for its commit, but never with a
 * task the first holds, so each task's log stays in seq order, through retries too.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { createTaskstream, defineTask, StoreUnavailableError, type NewEvent, type Store } from '../../src/index.js';
import { assertLog, deferred, describeBackends, finished, within, type Deferred } from './helpers.js';

interface Appends {
  readonly store: Store;
  /** Task ids of each append, in call order. */
  readonly calls: number[][];
  /** Appends that began while another one holding one of their tasks was still in flight. */
  readonly overlaps: string[];
  /** The next append holding `taskId` waits (before reaching the store) until released. */
  hold(taskId: number): { entered: Promise<void>; release(): void };
  /** The next `times` appends holding `taskId` fail as a dropped connection would. */
  fail(taskId: number, times: number): void;
}

/** `inner`, taking `slots` appends at once, recording which tasks each append holds. */
function appends(inner: Store, slots: number): Appends {
  const calls: number[][] = [];
  const overlaps: string[] = [];
  const inFlight = new Set<ReadonlySet<number>>();
  const holds: Array<{ taskId: number; entered: Deferred<void>; gate: Deferred<void> }> = [];
  const failures = new Map<number, number>();
  const appendEvents = async (events: readonly NewEvent[]): Promise<number[]> => {
    const tasks = new Set(events.map((e) => e.taskId));
    calls.push([...tasks]);
    for (const other of inFlight) {
      for (const t of tasks) if (other.has(t)) overlaps.push(`task ${t} in two appends at once`);
    }
    inFlight.add(tasks);
    try {
      const failing = [...tasks].find((t) => (failures.get(t) ?? 0) > 0);
      if (failing !== undefined) {
        failures.set(failing, failures.get(failing)! - 1);
        throw new StoreUnavailableError(`injected: appending task ${failing}'s events failed (connection reset)`);
      }
      const i = holds.findIndex((h) => tasks.has(h.taskId));
      if (i >= 0) {
        const [h] = holds.splice(i, 1);
        h!.entered.resolve();
        await h!.gate.promise;
      }
      return await inner.appendEvents(events);
    } finally {
      inFlight.delete(tasks);
    }
  };
  const store = new Proxy(inner, {
    get(target, key) {
      if (key === 'appendsInFlight') return slots;
      if (key === 'appendEvents') return appendEvents;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    store, calls, overlaps,
    hold(taskId) {
      const h = { taskId, entered: deferred(), gate: deferred() };
      holds.push(h);
      return { entered: h.entered.promise, release: () => h.gate.resolve() };
    },
    fail: (taskId, times) => void failures.set(taskId, times),
  };
}

await describeBackends('writer', 'writer', (tmp) => {
  void test('two appends in flight: while one run\'s batch waits for its commit, another run\'s events are stored; no task is in both', async () => {
    const s = appends(await tmp.store(tmp.db()), 2);
    const firstHeld = deferred<number>();
    const secondSent = deferred();
    const freeStored = deferred();
    const Held = defineTask({
      app: 'core', type: 'Held', input: z.object({}),
      async run(ctx) {
        const first = ctx.progress({ i: 1 });
        firstHeld.resolve(ctx.task.id);
        await within(5000, held.entered, 'the held append to begin');
        // Sent while its first batch is in flight: it must wait for that batch, not join the other run's.
        const second = ctx.progress({ i: 2 });
        secondSent.resolve();
        await Promise.all([first, second]);
        await ctx.progress({ i: 3 });
      },
    });
    const Free = defineTask({
      app: 'core', type: 'Free', input: z.object({}),
      async run(ctx) {
        for (let i = 1; i <= 3; i++) await ctx.progress({ i });
        freeStored.resolve();
      },
    });
    await using rt = await createTaskstream({ store: s.store, tasks: [Held, Free], concurrency: 4, sweepIntervalMs: 60_000 });
    // Task ids are known only once created; the hold is armed for the first task's id.
    const created = await rt.create(Held, {}, { runAt: new Date(Date.now() + 3_600_000) });
    const held = s.hold(created.id);
    await rt.start(created.id);
    assert.equal(await within(5000, firstHeld.promise, 'the held run to send'), created.id);
    await within(5000, held.entered, 'the held append to begin');
    await within(5000, secondSent.promise, 'the held run\'s second send');
    const free = await rt.create(Free, {});
    try {
      // Free's three sends are acknowledged (stored) one by one while Held's first append is held.
      await within(5000, freeStored.promise, 'the free run\'s events to be stored while the other run\'s append is held');
      assert.deepEqual((await rt.events(free.id)).map((e) => e.data.i), [1, 2, 3]);
      assert.deepEqual((await rt.events(created.id)).map((e) => e.seq), [], 'the held batch is not stored yet');
    } finally {
      // Released on failure too, or closing the runtime would wait for the held append.
      held.release();
    }
    for (const ref of [created, free]) {
      const done = await finished(rt, ref.id);
      assert.equal(done.status, 'completed');
      const events = await assertLog(rt, done, 'complete');
      assert.deepEqual(events.slice(0, -1).map((e) => e.data.i), [1, 2, 3]);
    }
    assert.deepEqual(s.overlaps, []);
  });

  void test('two appends in flight: a batch retried after a store error holds back only its own run\'s later events; every log is in order', async () => {
    const s = appends(await tmp.store(tmp.db()), 2);
    const N = 20;
    const Burst = defineTask({
      app: 'core', type: 'Burst', input: z.object({}),
      async run(ctx) {
        // Fire and forget, in separate ticks, while the first batch is failing and being retried.
        const sends: Array<Promise<void>> = [];
        for (let i = 1; i <= N; i++) {
          sends.push(ctx.progress({ i }));
          await new Promise((resolve) => setImmediate(resolve));
        }
        await Promise.all(sends);
      },
    });
    const Steady = defineTask({
      app: 'core', type: 'Steady', input: z.object({}),
      async run(ctx) {
        for (let i = 1; i <= N; i++) await ctx.progress({ i });
      },
    });
    await using rt = await createTaskstream({ store: s.store, tasks: [Burst, Steady], concurrency: 4, sweepIntervalMs: 60_000 });
    const later = { runAt: new Date(Date.now() + 3_600_000) };
    const burst = await rt.create(Burst, {}, later);
    const steady = await rt.create(Steady, {}, later);
    s.fail(burst.id, 3);
    await Promise.all([rt.start(burst.id), rt.start(steady.id)]);
    for (const ref of [burst, steady]) {
      const done = await finished(rt, ref.id, 10_000);
      assert.equal(done.status, 'completed', `task ${ref.id}: ${done.error?.message ?? ''}`);
      assert.equal(done.attempt, 1, 'not a lost lease');
      const events = await assertLog(rt, done, 'complete');
      assert.deepEqual(events.slice(0, -1).map((e) => e.data.i), Array.from({ length: N }, (_, i) => i + 1), 'every event, once, in order');
    }
    assert.deepEqual(s.overlaps, []);
    // The failing batch was tried again (3 failures, then stored).
    assert.ok(s.calls.filter((c) => c.includes(burst.id)).length >= 4);
  });
});
