/**
 * Lifecycle: a created task runs and its outcome persists; the concurrency limit queues the rest;
 * one terminal event, last, written with the status once; finished tasks never run again; two
 * runtimes on one file never run a task twice.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { type Bus, type Command, defineTask, localBus, type Store, TaskNotFoundError, TaskStateError, type TaskStatus } from '../../src/index.js';
import { busFor, storeFor } from '../support/backends.js';
import { intercept } from '../support/intercept.js';
import { assertLog, capturingLogger, deferred, finished, nextEvent, open, describeBackends, within } from './helpers.js';

await describeBackends('core', 'lifecycle', (tmp) => {

  class ParseFailure extends Error {
    override name = 'ParseFailure';
  }

  const Double = defineTask({
    app: 'core',
    type: 'Double',
    input: z.object({ n: z.number() }),
    async run(ctx, { n }) {
      await ctx.send('start', { n });
      await ctx.progress({ step: 1 });
      return { doubled: n * 2 };
    },
  });

  const Fails = defineTask({
    app: 'core',
    type: 'Fails',
    input: z.object({ why: z.string() }),
    async run(ctx, { why }) {
      await ctx.send('start', {});
      throw new ParseFailure(`cannot parse: ${why}`);
    },
  });

  void describe('lifecycle', () => {
    void test('a created task runs; status, final value and timestamps persist', async () => {
      const file = tmp.db();
      let id: number;
      {
        await using rt = await open(file, { tasks: [Double] });
        let finishes = 0;
        rt.on('task:finished', () => finishes++);
        const created = await rt.create(Double, { n: 21 });
        assert.equal(created.app, 'core');
        assert.equal(created.type, 'Double');
        assert.deepEqual(created.input, { n: 21 });
        id = created.id;
        const task = await finished(rt, id);
        assert.equal(task.status, 'completed');
        assert.deepEqual(task.finalValue, { doubled: 42 });
        assert.equal(task.error, null);
        assert.equal(task.attempt, 1);
        assert.ok(task.startedAt && task.finishedAt && task.completedAt, 'timestamps are set');
        assert.ok(task.createdAt.getTime() <= task.startedAt.getTime(), 'created before started');
        assert.ok(task.startedAt.getTime() <= task.finishedAt.getTime(), 'started before finished');
        assert.equal(task.completedAt.getTime(), task.finishedAt.getTime());
        const events = await assertLog(rt, task, 'complete');
        assert.deepEqual(events.map((e) => e.type), ['start', 'progress', 'complete']);
        assert.deepEqual(events[2]?.data, { final_value: { doubled: 42 } });
        assert.equal(finishes, 1, 'task:finished is emitted once');
        assert.equal(await rt.isRunning(id), false);
      }
      // Persisted: a new runtime on the same file reads the same row.
      await using again = await open(file, { tasks: [Double] });
      const task = await again.get(id);
      assert.equal(task?.status, 'completed');
      assert.deepEqual(task?.finalValue, { doubled: 42 });
      assert.ok(task?.completedAt instanceof Date, 'completedAt persists');
      assert.equal((await again.events(id)).length, 3);
    });

    void test('an error persists with message, type and stack; one error event, last', async () => {
      const file = tmp.db();
      let id: number;
      {
        await using rt = await open(file, { tasks: [Fails] });
        id = (await rt.create(Fails, { why: 'bad header' })).id;
        const task = await finished(rt, id);
        assert.equal(task.status, 'failed');
        assert.equal(task.completedAt, null);
        assert.ok(task.finishedAt instanceof Date, 'finishedAt is set');
        assert.equal(task.finalValue, null);
        assert.equal(task.error?.message, 'cannot parse: bad header');
        assert.equal(task.error?.type, 'ParseFailure');
        assert.match(task.error?.stack ?? '', /ParseFailure: cannot parse: bad header/);
        assert.match(task.error?.stack ?? '', /lifecycle\.test\.ts/);
        const events = await assertLog(rt, task, 'error');
        assert.deepEqual(events.at(-1)?.data, { message: 'cannot parse: bad header', error_type: 'ParseFailure' });
      }
      await using again = await open(file, { tasks: [Fails] });
      const task = await again.get(id);
      assert.equal(task?.status, 'failed');
      assert.equal(task?.error?.type, 'ParseFailure');
      assert.ok(task?.error?.stack, 'the stack persists');
    });

    void test('a concurrency limit queues the rest: 5 tasks, never more than 2 at once, all complete', async () => {
      let running = 0;
      let maxRunning = 0;
      let released = false;
      const gates: Array<() => void> = [];
      const Slot = defineTask({
        app: 'core',
        type: 'Slot',
        input: z.object({}),
        async run() {
          running++;
          maxRunning = Math.max(maxRunning, running);
          try {
            if (!released) await new Promise<void>((resolve) => gates.push(resolve));
            await sleep(3);
          } finally {
            running--;
          }
        },
      });
      await using rt = await open(tmp.db(), { tasks: [Slot], concurrency: 2 });
      let started = 0;
      const twoStarted = deferred();
      rt.on('task:started', () => {
        if (++started === 2) twoStarted.resolve();
      });
      const ids: number[] = [];
      for (let i = 0; i < 5; i++) ids.push((await rt.create(Slot, {})).id);
      await within(2000, twoStarted.promise, 'two tasks to start');
      const statuses = await Promise.all(ids.map(async (id) => (await rt.get(id))?.status));
      assert.equal(statuses.filter((s) => s === 'running').length, 2);
      assert.equal(statuses.filter((s) => s === 'pending').length, 3);
      assert.equal(rt.stats.running, 2);
      released = true;
      for (const release of gates) release();
      for (const id of ids) assert.equal((await finished(rt, id)).status, 'completed');
      assert.equal(maxRunning, 2);
      assert.equal(started, 5);
    });

    void test('exactly one terminal event and one task:finished per task, over many tasks', async () => {
      await using rt = await open(tmp.db(), { tasks: [Double, Fails], concurrency: 8 });
      const finishes = new Map<number, TaskStatus[]>();
      rt.on('task:finished', (e) => finishes.set(e.id, [...(finishes.get(e.id) ?? []), e.status]));
      const ids: Array<[number, 'complete' | 'error']> = [];
      for (let i = 0; i < 20; i++) {
        ids.push(i % 2 === 0 ? [(await rt.create(Double, { n: i })).id, 'complete'] : [(await rt.create(Fails, { why: String(i) })).id, 'error']);
      }
      for (const [id, terminal] of ids) {
        const task = await finished(rt, id);
        await assertLog(rt, task, terminal);
      }
      for (const [id, terminal] of ids) {
        assert.deepEqual(finishes.get(id), [terminal === 'complete' ? 'completed' : 'failed']);
      }
    });

    void test('start(): a finished task is refused with TaskStateError; a delayed one runs now', async () => {
      await using rt = await open(tmp.db(), { tasks: [Double] });
      const done = await rt.create(Double, { n: 1 });
      await finished(rt, done.id);
      await assert.rejects(rt.start(done.id), (err: unknown) => {
        assert.ok(err instanceof TaskStateError, 'a TaskStateError');
        assert.equal(err.code, 'invalid_state');
        assert.equal(err.status, 'completed');
        return true;
      });
      assert.equal((await rt.get(done.id))?.attempt, 1, 'never run again');
      assert.equal((await rt.events(done.id)).length, 3);
      await assert.rejects(rt.start(99_999), TaskNotFoundError);

      const later = await rt.create(Double, { n: 2 }, { runAt: new Date(Date.now() + 3_600_000) });
      assert.equal((await rt.get(later.id))?.status, 'pending');
      const starting = nextEvent(rt, 'task:started', (e) => e.id === later.id, 2000, 'the delayed task to start');
      assert.equal(await rt.start(later.id), true);
      await starting;
      assert.equal((await finished(rt, later.id)).status, 'completed');
    });

    void test('a runAt beyond a timer\'s range (30 days) neither spins the scheduler nor warns; such timeouts are refused', async () => {
      const warnings: Error[] = [];
      const onWarning = (w: Error): void => {
        warnings.push(w);
      };
      process.on('warning', onWarning);
      try {
        const Later = defineTask({ app: 'core', type: 'Later', input: z.object({}), run: () => 'ran' });
        // Other work that lasts five sweeps (every 10 ms): time for a spinning wake timer to show.
        let sweeps = 0;
        let fiveSweeps: (() => void) | undefined;
        const Busy = defineTask({
          app: 'core',
          type: 'Busy',
          input: z.object({}),
          async run() {
            const from = sweeps;
            await new Promise<void>((resolve) => (fiveSweeps = () => sweeps >= from + 5 && resolve()));
          },
        });
        await using rt = await open(tmp.db(), { tasks: [Later, Busy], sweepIntervalMs: 10 });
        const recoverExpired = rt.store.recoverExpired.bind(rt.store);
        (rt.store as { recoverExpired: typeof recoverExpired }).recoverExpired = async (...args) => {
          sweeps++;
          fiveSweeps?.();
          return recoverExpired(...args);
        };
        let lookups = 0;
        const nextRunDelay = rt.store.nextRunDelay.bind(rt.store);
        (rt.store as { nextRunDelay: typeof nextRunDelay }).nextRunDelay = (kinds, now) => {
          lookups++;
          return nextRunDelay(kinds, now);
        };
        const later = await rt.create(Later, {}, { runAt: new Date(Date.now() + 30 * 86_400_000) });
        // Five sweeps of other work go by; a spinning wake timer would look the next run up every ms.
        // Legitimate lookups (one per sweep, and the creates) come far less often, and a
        // slow machine only makes that margin wider, so the bound scales with the time that passed.
        const started = Date.now();
        await finished(rt, (await rt.create(Busy, {})).id);
        const allowed = 10 + Math.ceil((Date.now() - started) / 100);
        assert.ok(lookups < allowed, `the scheduler looked for due work ${lookups} times in ${Date.now() - started} ms: it spins`);
        assert.equal((await rt.get(later.id))?.status, 'pending');
        assert.deepEqual(warnings.map((w) => w.name), []);
        await assert.rejects(rt.create(Later, {}, { timeoutMs: 2 ** 31 }), /at most 2147483647 ms/);
        assert.throws(() => defineTask({ ...Later, timeoutMs: 40 * 86_400_000 }), TypeError);
      } finally {
        process.off('warning', onWarning);
      }
    });

    void test('a delayed create wakes the scheduler when it comes due, without asking the store when that is', async () => {
      const Later = defineTask({ app: 'core', type: 'Later', input: z.object({}), run: () => 'ran' });
      // No sweep during the test: only the create itself can say when the task comes due.
      await using rt = await open(tmp.db(), { tasks: [Later], sweepIntervalMs: 600_000 });
      let lookups = 0;
      const nextRunDelay = rt.store.nextRunDelay.bind(rt.store);
      (rt.store as { nextRunDelay: typeof nextRunDelay }).nextRunDelay = (kinds, now) => {
        lookups++;
        return nextRunDelay(kinds, now);
      };
      const runAt = Date.now() + 300;
      const task = await rt.create(Later, {}, { runAt: new Date(runAt) });
      const done = await finished(rt, task.id, 10_000);
      assert.equal(done.status, 'completed');
      assert.ok(done.startedAt!.getTime() >= runAt - 50, 'not before its runAt');
      // At most the start-up sweep's and the one after the timer fired (for the next delayed task):
      // none for the create's claim passes, which know when it is due.
      assert.ok(lookups <= 2, `${lookups} lookups of the next delayed task`);
    });

    /** The store of `file`, recording each time it is asked for work (a claim, or when the next delayed task is due). */
    async function recordingLookups(file: string): Promise<{ store: Store; lookups: string[] }> {
      const inner = await storeFor(file);
      const lookups: string[] = [];
      const store = intercept(inner, {
        claimTasks(...args: Parameters<Store['claimTasks']>) {
          lookups.push('claimTasks');
          return inner.claimTasks(...args);
        },
        nextRunDelay(...args: Parameters<Store['nextRunDelay']>) {
          lookups.push('nextRunDelay');
          return inner.nextRunDelay(...args);
        },
      });
      return { store, lookups };
    }

    void test('a runtime with no task types (one that creates and watches) never looks for work to claim', async () => {
      const file = tmp.db();
      const Once = defineTask({ app: 'core', type: 'Once', input: z.object({}), run: () => 'ran' });
      const bus = localBus();
      const { store, lookups } = await recordingLookups(file);
      await using worker = await open(file, { tasks: [Once], bus });
      await using watcher = await open(file, { tasks: [], bus, store });
      // Every create wakes every scheduler on the bus, the watcher's included.
      for (let i = 0; i < 5; i++) {
        const { id } = await worker.create(Once, {});
        const seen: string[] = [];
        for await (const e of await watcher.subscribe(id)) seen.push(e.type);
        assert.deepEqual(seen, ['complete'], 'the watcher still watches');
      }
      assert.deepEqual(lookups, []);
    });

    void test('a runtime with concurrency 0 creates, watches and signals tasks that another runtime runs, and runs none itself', async () => {
      const file = tmp.db();
      const Waits = defineTask({
        app: 'core',
        type: 'Waits',
        input: z.object({ n: z.number() }),
        async run(ctx, { n }) {
          await ctx.send('waiting', {});
          return { n, payload: await ctx.waitForSignal('go') };
        },
      });
      const bus = busFor(file) ?? localBus();
      const { store, lookups } = await recordingLookups(file);
      await using front = await open(file, { tasks: [Waits], concurrency: 0, bus, store, owner: 'front' });
      await using worker = await open(file, { tasks: [Waits], bus: busFor(file) ?? bus, owner: 'worker' });
      const ranBy: string[] = [];
      for (const [name, rt] of [['front', front], ['worker', worker]] as const) rt.on('task:started', () => ranBy.push(name));
      await assert.rejects(front.create(Waits, { n: 'one' } as never), /n/, 'the front still validates input');
      const task = await front.create(Waits, { n: 1 });
      const seen: string[] = [];
      for await (const e of await front.subscribe(task.id)) {
        seen.push(e.type);
        if (e.type === 'waiting') await front.signal(task.id, 'go', { from: 'front' });
      }
      assert.deepEqual(seen, ['waiting', 'complete']);
      assert.deepEqual((await front.get(task.id))?.finalValue, { n: 1, payload: { from: 'front' } });
      assert.deepEqual(ranBy, ['worker']);
      assert.deepEqual(front.stats, { running: 0, subscribers: 0 });
      assert.deepEqual(lookups, [], 'the front never looked for work');
    });

    void test('concurrency must be a whole number >= 0', async () => {
      for (const concurrency of [-1, 1.5, Number.NaN]) {
        await assert.rejects(open(tmp.db(), { tasks: [], concurrency }), /concurrency must be a whole number >= 0/);
      }
    });

    void test('two runtimes on one database never run a task twice', async () => {
      const file = tmp.db();
      const runs = new Map<number, number>();
      const ranOn = new Map<string, number>();
      const Once = defineTask({
        app: 'core',
        type: 'Once',
        input: z.object({}),
        async run(ctx) {
          runs.set(ctx.task.id, (runs.get(ctx.task.id) ?? 0) + 1);
          await ctx.send('ran', {});
          await sleep(2);
          return ctx.task.id;
        },
      });
      // One bus between them: every create wakes both schedulers, so they race for each claim.
      const bus = localBus();
      await using a = await open(file, { tasks: [Once], concurrency: 4, bus, owner: 'a', sweepIntervalMs: 50 });
      await using b = await open(file, { tasks: [Once], concurrency: 4, bus, owner: 'b', sweepIntervalMs: 50 });
      const done = new Set<number>();
      const all = deferred();
      const total = 30;
      for (const [name, rt] of [['a', a], ['b', b]] as const) {
        rt.on('task:finished', (e) => {
          ranOn.set(name, (ranOn.get(name) ?? 0) + 1);
          done.add(e.id);
          if (done.size === total) all.resolve();
        });
      }
      const ids: number[] = [];
      for (let i = 0; i < total; i++) ids.push((await (i % 2 === 0 ? a : b).create(Once, {})).id);
      await within(10_000, all.promise, `all ${total} tasks to finish`);
      for (const id of ids) {
        assert.equal(runs.get(id), 1, `task ${id} must run exactly once`);
        const task = await a.get(id);
        assert.equal(task?.status, 'completed');
        assert.equal(task?.attempt, 1);
        assert.deepEqual((await a.events(id)).map((e) => e.type), ['ran', 'complete']);
      }
      assert.equal((ranOn.get('a') ?? 0) + (ranOn.get('b') ?? 0), total);
      assert.ok((ranOn.get('a') ?? 0) > 0 && (ranOn.get('b') ?? 0) > 0, `both runtimes should have run tasks: ${JSON.stringify([...ranOn])}`);
    });

    /** `bus`, counting the `wake` commands published through it. */
    function countingWakes(bus: Bus): { bus: Bus; wakes: Command[]; woke: Promise<void> } {
      const wakes: Command[] = [];
      const woke = deferred();
      const counted = intercept(bus, {
        publishCommand(command: Command) {
          if (command.kind === 'wake') {
            wakes.push(command);
            woke.resolve();
          }
          bus.publishCommand(command);
        },
      });
      return { bus: counted, wakes, woke: woke.promise };
    }

    /** Two runtimes on one database: `a` runs one task at a time, `b` has room for `total`; neither sweeps in the test's time. */
    async function pair(total: number, dropWakes: boolean, sweepMs = 60_000) {
      const file = tmp.db();
      const shared = localBus();
      const allStarted = deferred();
      let started = 0;
      const ranOn = { a: 0, b: 0 };
      // Every run waits until all have started: `a` holds one, so `b` must have claimed the rest.
      const Held = defineTask({ app: 'core', type: 'Held', input: z.object({}), run: async () => { await allStarted.promise; return 'ok'; } });
      const counted = countingWakes(busFor(file) ?? shared);
      const aBus: Bus = dropWakes ? intercept(counted.bus, {
        publishCommand(command: Command) { if (command.kind !== 'wake') counted.bus.publishCommand(command); },
      }) : counted.bus;
      const a = await open(file, { tasks: [Held], concurrency: 1, owner: 'a', bus: aBus });
      const b = await open(file, { tasks: [Held], concurrency: total, owner: 'b', bus: busFor(file) ?? shared, sweepIntervalMs: sweepMs });
      const done = deferred();
      let finishedCount = 0;
      for (const [name, rt] of [['a', a], ['b', b]] as const) {
        rt.on('task:started', () => {
          ranOn[name] += 1;
          if (++started === total) allStarted.resolve();
        });
        rt.on('task:finished', () => {
          if (++finishedCount === total) done.resolve();
        });
      }
      return { a, b, Held, wakes: counted.wakes, woke: counted.woke, ranOn, allStarted, done };
    }

    void test('the creates of one tick send one wake between them, and the other runtime claims the rest', async () => {
      const total = 20;
      const { a, b, Held, wakes, woke, ranOn, allStarted, done } = await pair(total, false);
      try {
        // One tick's creates (one group commit on PostgreSQL).
        const tasks = await Promise.all(Array.from({ length: total }, () => a.create(Held, {})));
        await within(10_000, allStarted.promise, `all ${total} tasks to start (b has no sweep in this time)`);
        await within(10_000, done.promise, `all ${total} tasks to finish`);
        await within(5000, woke, 'the wake to be published');
        assert.equal(wakes.length, 1, `one wake for the tick's ${total} creates, got ${wakes.length}`);
        assert.equal(ranOn.a + ranOn.b, total);
        assert.ok(ranOn.b >= total - 1, `b ran ${ranOn.b} (a runs one at a time)`);
        for (const t of tasks) assert.equal((await a.get(t.id))?.status, 'completed');
      } finally {
        await b.close();
        await a.close();
      }
    });

    void test('a wake still due when the runtime closes is sent before its bus closes', async () => {
      const file = tmp.db();
      const calls: string[] = [];
      const inner = busFor(file) ?? localBus();
      // The bus as it is, recording wakes published and its close.
      const bus = intercept(inner, {
        publishCommand(command: Command) {
          if (command.kind === 'wake') calls.push('wake');
          inner.publishCommand(command);
        },
        async close() {
          calls.push('close');
          await inner.close();
        },
      });
      const Noop = defineTask({ app: 'core', type: 'Noop', input: z.object({}), run: () => 'ok' });
      const logger = capturingLogger();
      const rt = await open(file, { tasks: [Noop], bus, logger });
      await rt.create(Noop, {});
      await within(10_000, rt.close(), 'close()');
      assert.deepEqual(calls, ['wake', 'close'], 'the create\'s wake, then the bus closed');
      assert.deepEqual(logger.entries.filter((e) => e.level === 'error'), [], 'no command published on a closed bus');
    });

    void test('a lost wake is covered by the other runtime\'s sweep', async () => {
      const total = 5;
      const { a, b, Held, ranOn, allStarted, done } = await pair(total, true, 20);
      try {
        await Promise.all(Array.from({ length: total }, () => a.create(Held, {})));
        await within(10_000, allStarted.promise, `all ${total} tasks to start (b claims on its sweep)`);
        await within(10_000, done.promise, `all ${total} tasks to finish`);
        assert.ok(ranOn.b >= total - 1, `b ran ${ranOn.b}`);
      } finally {
        await b.close();
        await a.close();
      }
    });
  });
});
