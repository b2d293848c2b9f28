/**
 * Cancellation: pending, before the first step, mid-step (a real fetch stops), finished/unknown,
 * concurrent cancels, cancel racing completion, a run that ignores its signal, an error while
 * handling the abort, and cleanup in `finally`.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { defineTask, TaskAbortedError, type TaskRecord } from '../../src/index.js';
import { assertLog, capturingLogger, deferred, finished, nextEvent, open, describeBackends, untilAborted, within } from './helpers.js';

await describeBackends('core', 'cancel', (tmp) => {

  /** Sends `start`, then waits until released or aborted. */
  function blockingTask(type: string, hooks: { started?: (id: number) => void; release?: Promise<void>; runs?: number[] } = {}) {
    return defineTask({
      app: 'core',
      type,
      input: z.object({}),
      async run(ctx) {
        hooks.runs?.push(ctx.task.id);
        await ctx.send('start', {});
        hooks.started?.(ctx.task.id);
        await Promise.race([hooks.release ?? new Promise(() => {}), untilAborted(ctx.signal)]);
        return 'released';
      },
    });
  }

  function assertCancelled(task: TaskRecord, reason: string): void {
    assert.equal(task.status, 'cancelled');
    assert.equal(task.cancelReason, reason);
    assert.equal(task.completedAt, null);
    assert.ok(task.finishedAt instanceof Date, 'finishedAt is set');
  }

  void describe('cancellation', () => {
    void test('a pending task (concurrency full) is cancelled at once and never runs', async () => {
      const release = deferred();
      const runs: number[] = [];
      const started = deferred<number>();
      const Block = blockingTask('Block', { release: release.promise, runs, started: (id) => started.resolve(id) });
      await using rt = await open(tmp.db(), { tasks: [Block], concurrency: 1 });
      const first = await rt.create(Block, {});
      assert.equal(await within(2000, started.promise, 'the first task to start'), first.id);
      const queued = await rt.create(Block, {});
      assert.equal((await rt.get(queued.id))?.status, 'pending');
      const finishedEvent = nextEvent(rt, 'task:finished', (e) => e.id === queued.id, 2000, 'task:finished of the cancelled task');
      assert.equal(await rt.cancel(queued.id, 'not needed'), true);
      assert.equal((await finishedEvent).status, 'cancelled');
      const task = await finished(rt, queued.id);
      assertCancelled(task, 'not needed');
      const events = await assertLog(rt, task, 'cancelled');
      assert.deepEqual(events.map((e) => [e.type, e.data]), [['cancelled', { message: 'Task was cancelled', reason: 'not needed' }]]);
      release.resolve();
      assert.equal((await finished(rt, first.id)).status, 'completed');
      assert.deepEqual(runs, [first.id], 'the cancelled task never ran');
    });

    void test('a pending task with runAt in the future is cancelled and never runs', async () => {
      const runs: number[] = [];
      const Block = blockingTask('Block', { release: Promise.resolve(), runs });
      await using rt = await open(tmp.db(), { tasks: [Block] });
      const task = await rt.create(Block, {}, { runAt: new Date(Date.now() + 3_600_000) });
      assert.equal(await rt.cancel(task.id), true);
      const done = await finished(rt, task.id);
      assertCancelled(done, 'external_cancellation');
      await assertLog(rt, done, 'cancelled');
      assert.equal(await rt.cancel(task.id), false, 'a second cancel is a no-op');
      assert.deepEqual(runs, []);
    });

    void test('a running task cancelled before its first step: no step runs, it ends cancelled', async () => {
      const steps: number[] = [];
      let sawAbort: unknown;
      let reason: unknown;
      const Steps = defineTask({
        app: 'core',
        type: 'Steps',
        input: z.object({}),
        async run(ctx) {
          try {
            for (let step = 1; step <= 5; step++) {
              // Only the cancel ends this wait: it rejects with the signal's reason (an AbortError).
              await untilAborted(ctx.signal);
              steps.push(step);
              await ctx.progress({ step });
            }
          } catch (err) {
            sawAbort = err;
            reason = ctx.signal.reason;
            throw err;
          }
        },
      });
      await using rt = await open(tmp.db(), { tasks: [Steps] });
      const cancelled = deferred<boolean>();
      // Cancel from the `task:started` listener, in the very tick the run starts.
      rt.on('task:started', (e) => {
        rt.cancel(e.id, 'early').then(cancelled.resolve, cancelled.reject);
      });
      const task = await rt.create(Steps, {});
      assert.equal(await within(2000, cancelled.promise, 'cancel()'), true);
      const done = await finished(rt, task.id);
      assertCancelled(done, 'early');
      assert.equal(done.attempt, 1);
      const events = await assertLog(rt, done, 'cancelled');
      assert.deepEqual(events.map((e) => e.type), ['cancelled']);
      assert.deepEqual(steps, []);
      assert.equal((sawAbort as Error | undefined)?.name, 'AbortError', 'the step rejects with an AbortError');
      assert.ok(reason instanceof TaskAbortedError, 'ctx.signal.reason is a TaskAbortedError');
      assert.equal(reason.name, 'AbortError');
      assert.equal(reason.kind, 'cancel');
      assert.equal(reason.reason, 'early');
      assert.equal(rt.stats.running, 0);
    });

    void test('cancel mid-step aborts ctx.signal: a fetch to a slow local server stops and its socket closes', async () => {
      const requested = deferred();
      const socketClosed = deferred();
      const server = http.createServer((req) => {
        // Never answers; the request must be ended by the client's abort.
        req.socket.once('close', () => socketClosed.resolve());
        requested.resolve();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slow`;
      let fetchError: unknown;
      const Fetch = defineTask({
        app: 'core',
        type: 'Fetch',
        input: z.object({ url: z.string() }),
        async run(ctx, input) {
          await ctx.progress({ status: 'fetching' });
          try {
            const response = await fetch(input.url, { signal: ctx.signal });
            return await response.text();
          } catch (err) {
            fetchError = err;
            throw err;
          }
        },
      });
      try {
        await using rt = await open(tmp.db(), { tasks: [Fetch] });
        const task = await rt.create(Fetch, { url });
        await within(2000, requested.promise, 'the server to get the request');
        assert.equal(await rt.isRunning(task.id), true);
        assert.equal(await rt.cancel(task.id, 'user'), true);
        await within(2000, socketClosed.promise, 'the server to see the socket close');
        const done = await finished(rt, task.id);
        assertCancelled(done, 'user');
        const events = await assertLog(rt, done, 'cancelled');
        assert.deepEqual(events.map((e) => e.type), ['progress', 'cancelled']);
        assert.deepEqual(events[1]?.data, { message: 'Task was cancelled', reason: 'user' });
        assert.equal(done.error, null, 'the AbortError is the cancel itself, not an error');
        assert.ok(fetchError instanceof Error && fetchError.name === 'AbortError', `fetch rejects with AbortError, got ${String(fetchError)}`);
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    });

    void test('cancel of a finished or unknown task returns false and changes nothing', async () => {
      const Block = blockingTask('Block', { release: Promise.resolve() });
      await using rt = await open(tmp.db(), { tasks: [Block] });
      const task = await rt.create(Block, {});
      const done = await finished(rt, task.id);
      assert.equal(done.status, 'completed');
      assert.equal(await rt.cancel(task.id), false);
      assert.equal(await rt.cancel(99_999), false);
      assert.equal(await rt.cancel({ id: task.id, app: 'other' }), false, 'a ref with the wrong app is not found');
      const after = await rt.get(task.id);
      assert.equal(after?.status, 'completed');
      assert.equal(after?.cancelReason, null);
      await assertLog(rt, after!, 'complete');
    });

    void test('three cancels at once all resolve; one cancelled event; the first reason is kept', async () => {
      const started = deferred<number>();
      const Block = blockingTask('Block', { started: (id) => started.resolve(id) });
      await using rt = await open(tmp.db(), { tasks: [Block] });
      let finishes = 0;
      rt.on('task:finished', () => finishes++);
      const task = await rt.create(Block, {});
      await within(2000, started.promise, 'the task to start');
      const results = await within(2000, Promise.all([rt.cancel(task.id, 'r1'), rt.cancel(task.id, 'r2'), rt.cancel(task.id, 'r3')]), 'three cancels');
      assert.ok(results.includes(true), `one cancel takes effect: ${results.join(',')}`);
      const done = await finished(rt, task.id);
      // The first to reach the store: r1 where calls reach it in call order; over a connection
      // pool (PostgreSQL) concurrent calls may arrive in any order.
      const first = tmp.backend.store.name === 'postgres' ? done.cancelReason ?? '' : 'r1';
      assert.ok(['r1', 'r2', 'r3'].includes(first), `kept reason ${first}`);
      assertCancelled(done, first);
      const events = await assertLog(rt, done, 'cancelled');
      assert.deepEqual(events.map((e) => e.type), ['start', 'cancelled']);
      assert.equal(events[1]?.data.reason, first, 'the event and the row agree on the kept reason');
      assert.equal(finishes, 1);
      assert.equal(await rt.cancel(task.id, 'r4'), false, 'idempotent: later cancels are no-ops');
      assert.equal((await rt.get(task.id))?.lastSeq, 2);
    });

    void test('cancel racing completion: exactly one outcome, and cancel() says true iff it won', async (t) => {
      const nearEnd = new Map<number, () => void>();
      const Quick = defineTask({
        app: 'core',
        type: 'Quick',
        input: z.object({}),
        async run(ctx) {
          await ctx.progress({ step: 1 });
          nearEnd.get(ctx.task.id)?.();
          return 'done';
        },
      });
      await using rt = await open(tmp.db(), { tasks: [Quick], concurrency: 10 });
      const iterations = 120;
      const races: Array<Promise<{ id: number; won: boolean }>> = [];
      for (let k = 0; k < iterations; k++) {
        const task = await rt.create(Quick, {}, { runAt: new Date(Date.now() + 3_600_000) });
        const fired = deferred<boolean>();
        // Cancel when the run is about to return, delayed by 0..5 turns of the event loop
        // (or, for some, right away in the same tick), so it lands before, during and after the
        // write of the outcome.
        const delay = k % 7;
        nearEnd.set(task.id, () => {
          const go = (): void => {
            rt.cancel(task.id, 'race').then(fired.resolve, fired.reject);
          };
          if (delay === 6) go();
          else {
            let turns = delay;
            const spin = (): void => {
              if (turns-- <= 0) go();
              else setImmediate(spin);
            };
            spin();
          }
        });
        await rt.start(task.id);
        races.push(fired.promise.then((won) => ({ id: task.id, won })));
      }
      const outcomes = { completed: 0, cancelled: 0 };
      for (const { id, won } of await within(20_000, Promise.all(races), 'every cancel to resolve')) {
        const task = await finished(rt, id);
        const types = (await rt.events(id)).map((e) => e.type);
        if (task.status === 'completed') {
          outcomes.completed++;
          await assertLog(rt, task, 'complete');
          assert.ok(!types.includes('cancelled'), `task ${id}: completed but has a cancelled event`);
          assert.equal(won, false, `task ${id}: completed, yet cancel() returned true`);
          assert.equal(task.cancelReason, null);
        } else {
          assert.equal(task.status, 'cancelled', `task ${id}: ${task.status}`);
          outcomes.cancelled++;
          await assertLog(rt, task, 'cancelled');
          assert.ok(!types.includes('complete'), `task ${id}: cancelled but has a complete event`);
          assert.equal(won, true, `task ${id}: cancelled, yet cancel() returned false`);
          assert.equal(task.completedAt, null);
        }
      }
      assert.equal(outcomes.completed + outcomes.cancelled, iterations);
      t.diagnostic(`outcomes: ${JSON.stringify(outcomes)}`);
    });

    void test('a task that ignores its signal is finished as cancelled after its grace period, its promise abandoned', async () => {
      const started = deferred<number>();
      const stuck = deferred();
      const Stubborn = defineTask({
        app: 'core',
        type: 'Stubborn',
        input: z.object({}),
        graceMs: 60,
        async run(ctx) {
          started.resolve(ctx.task.id);
          await stuck.promise; // ignores ctx.signal
          return 'too late';
        },
      });
      const logger = capturingLogger();
      await using rt = await open(tmp.db(), { tasks: [Stubborn], logger });
      const task = await rt.create(Stubborn, {});
      await within(2000, started.promise, 'the task to start');
      const abandoned = nextEvent(rt, 'task:abandoned', (e) => e.id === task.id, 10_000, 'task:abandoned');
      const t0 = performance.now();
      assert.equal(await rt.cancel(task.id), true);
      // The run never ends by itself: it finishes only because the grace period abandons it.
      const done = await finished(rt, task.id, 10_000);
      const elapsed = performance.now() - t0;
      assert.equal((await abandoned).reason, 'cancel');
      assertCancelled(done, 'external_cancellation');
      await assertLog(rt, done, 'cancelled');
      assert.ok(elapsed >= 50, `waited the grace period first (${elapsed.toFixed(0)} ms)`);
      assert.ok(logger.entries.some((e) => e.level === 'warn' && e.msg.includes(`core/Stubborn/${task.id}`) && e.msg.includes('abandoned')),
        'a warning names the abandoned run');
      assert.equal(rt.stats.running, 0);
      stuck.resolve();
    });

    void test('an error thrown while handling the abort: the task stays cancelled, the error is kept and carried in the event', async () => {
      class CleanupError extends Error {
        override name = 'CleanupError';
      }
      const started = deferred<number>();
      const Broken = defineTask({
        app: 'core',
        type: 'Broken',
        input: z.object({}),
        async run(ctx) {
          started.resolve(ctx.task.id);
          try {
            await untilAborted(ctx.signal);
          } catch {
            throw new CleanupError('Cleanup failed');
          }
        },
      });
      const logger = capturingLogger();
      await using rt = await open(tmp.db(), { tasks: [Broken], logger });
      const task = await rt.create(Broken, {});
      await within(2000, started.promise, 'the task to start');
      assert.equal(await rt.cancel(task.id, 'stop'), true);
      const done = await finished(rt, task.id);
      assertCancelled(done, 'stop');
      assert.equal(done.error?.message, 'Cleanup failed');
      assert.equal(done.error?.type, 'CleanupError');
      assert.match(done.error?.stack ?? '', /CleanupError: Cleanup failed/);
      const events = await assertLog(rt, done, 'cancelled');
      assert.deepEqual(events.at(-1)?.data, {
        message: 'Task was cancelled', reason: 'stop', error: { message: 'Cleanup failed', error_type: 'CleanupError' },
      });
      assert.ok(logger.entries.some((e) => e.level === 'warn' && (e.obj as { err?: unknown }).err instanceof CleanupError),
        'the error is logged, not swallowed');
    });

    void test('cleanup in finally runs to the end after the abort; its event is logged before the terminal one', async () => {
      const started = deferred<number>();
      let cleanedUp = false;
      const Tidy = defineTask({
        app: 'core',
        type: 'Tidy',
        input: z.object({}),
        async run(ctx) {
          await ctx.send('start', {});
          started.resolve(ctx.task.id);
          try {
            await untilAborted(ctx.signal);
          } finally {
            await new Promise((resolve) => setImmediate(resolve)); // a later turn, as a cleanup write would be: no signal
            await ctx.send('cleanup', { saved: true });
            cleanedUp = true;
          }
        },
      });
      await using rt = await open(tmp.db(), { tasks: [Tidy] });
      const task = await rt.create(Tidy, {});
      await within(2000, started.promise, 'the task to start');
      const subscription = await rt.subscribe(task.id);
      assert.equal(await rt.cancel(task.id), true);
      const done = await finished(rt, task.id);
      assert.equal(cleanedUp, true);
      assertCancelled(done, 'external_cancellation');
      const events = await assertLog(rt, done, 'cancelled');
      assert.deepEqual(events.map((e) => e.type), ['start', 'cleanup', 'cancelled']);
      assert.deepEqual(events[1]?.data, { saved: true });
      const seen = [];
      for await (const e of subscription) seen.push(e.type);
      assert.deepEqual(seen, ['start', 'cleanup', 'cancelled']);
    });
  });
});
