/**
 * Timeouts abort ctx.signal and end with `timeout`; retries with backoff; NonRetryableError;
 * signals are pushed to `waitForSignal` (kept while pending, never polled).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import {
  defineTask, NonRetryableError, TaskAbortedError, TaskNotFoundError, createTaskstream, type Store,
} from '../../src/index.js';
import { intercept } from '../support/intercept.js';
import { assertLog, collect, deferred, finished, nextEvent, open, describeBackends, untilAborted, within } from './helpers.js';

await describeBackends('core', 'trs', (tmp) => {

  void describe('timeouts', () => {
    void test('a timeout aborts ctx.signal and ends with `timeout` (status timed_out)', async () => {
      let reason: unknown;
      const Slow = defineTask({
        app: 'core',
        type: 'Slow',
        input: z.object({}),
        timeoutMs: 50,
        async run(ctx) {
          await ctx.send('start', {});
          try {
            await untilAborted(ctx.signal);
          } finally {
            reason = ctx.signal.reason;
          }
        },
      });
      await using rt = await open(tmp.db(), { tasks: [Slow] });
      const t0 = performance.now();
      const task = await rt.create(Slow, {});
      // The run waits until aborted: it ends only because of its timeout.
      const done = await finished(rt, task.id, 10_000);
      const elapsed = performance.now() - t0;
      assert.equal(done.status, 'timed_out');
      assert.equal(done.completedAt, null);
      assert.equal(done.error, null);
      assert.ok(elapsed >= 45, `ended after the deadline (${elapsed.toFixed(0)} ms)`);
      assert.ok(reason instanceof TaskAbortedError, 'ctx.signal aborted with a TaskAbortedError');
      assert.equal(reason.kind, 'timeout');
      const events = await assertLog(rt, done, 'timeout');
      assert.deepEqual(events.map((e) => e.type), ['start', 'timeout']);
      assert.deepEqual(events[1]?.data, { message: 'Task timed out after 0.05 seconds', timeout_ms: 50 });
    });

    void test('a per-task timeoutMs beats the type\'s default, both ways', async () => {
      const Work = defineTask({
        app: 'core',
        type: 'Work',
        input: z.object({ ms: z.number() }),
        timeoutMs: 30,
        async run(ctx, { ms }) {
          await sleep(ms, undefined, { signal: ctx.signal });
          return 'worked';
        },
      });
      await using rt = await open(tmp.db(), { tasks: [Work] });
      // Longer than the default 30 ms, within the override: completes.
      const longer = await rt.create(Work, { ms: 80 }, { timeoutMs: 5000 });
      assert.equal(longer.timeoutMs, 5000);
      // Shorter override on a type whose default would let it finish: times out.
      const Patient = defineTask({ ...Work, type: 'Patient', timeoutMs: 10_000 });
      await using rt2 = await open(tmp.db(), { tasks: [Patient] });
      const shorter = await rt2.create(Patient, { ms: 5000 }, { timeoutMs: 40 });

      const a = await finished(rt, longer.id, 3000);
      assert.equal(a.status, 'completed');
      assert.equal(a.finalValue, 'worked');
      const b = await finished(rt2, shorter.id, 3000);
      assert.equal(b.status, 'timed_out');
      const events = await assertLog(rt2, b, 'timeout');
      assert.deepEqual(events.at(-1)?.data, { message: 'Task timed out after 0.04 seconds', timeout_ms: 40 });
    });
  });

  void describe('retries', () => {
    void test('a failing task is retried with backoff, with a `retry` event per failure, and succeeds on a later attempt', async () => {
      const attempts: Array<{ attempt: number; at: number }> = [];
      const Flaky = defineTask({
        app: 'core',
        type: 'Flaky',
        input: z.object({}),
        retries: { limit: 3, backoffMs: 15 },
        async run(ctx) {
          attempts.push({ attempt: ctx.task.attempt, at: performance.now() });
          await ctx.send('attempt', { attempt: ctx.task.attempt });
          if (ctx.task.attempt < 3) throw new Error(`flake ${ctx.task.attempt}`);
          return { succeededOn: ctx.task.attempt };
        },
      });
      await using rt = await open(tmp.db(), { tasks: [Flaky] });
      const requeued: number[] = [];
      rt.on('task:requeued', (e) => requeued.push(e.attempt));
      const task = await rt.create(Flaky, {});
      const done = await finished(rt, task.id, 5000);
      assert.equal(done.status, 'completed');
      assert.equal(done.attempt, 3);
      assert.deepEqual(done.finalValue, { succeededOn: 3 });
      assert.deepEqual(attempts.map((a) => a.attempt), [1, 2, 3]);
      assert.deepEqual(requeued, [1, 2]);
      const events = await assertLog(rt, done, 'complete');
      assert.deepEqual(events.map((e) => [e.type, e.data]), [
        ['attempt', { attempt: 1 }],
        ['retry', { attempt: 1, max_attempts: 4, delay_ms: 15, message: 'flake 1' }],
        ['attempt', { attempt: 2 }],
        ['retry', { attempt: 2, max_attempts: 4, delay_ms: 30, message: 'flake 2' }],
        ['attempt', { attempt: 3 }],
        ['complete', { final_value: { succeededOn: 3 } }],
      ]);
      // The backoff was waited (timer granularity allows a millisecond of slack).
      assert.ok(attempts[1]!.at - attempts[0]!.at >= 14, `first backoff ${attempts[1]!.at - attempts[0]!.at} ms`);
      assert.ok(attempts[2]!.at - attempts[1]!.at >= 29, `second backoff ${attempts[2]!.at - attempts[1]!.at} ms`);
    });

    void test('when the retries run out the task fails with the last error', async () => {
      const Doomed = defineTask({
        app: 'core',
        type: 'Doomed',
        input: z.object({}),
        retries: { limit: 2, backoffMs: 1 },
        run(ctx) {
          throw new RangeError(`attempt ${ctx.task.attempt} failed`);
        },
      });
      await using rt = await open(tmp.db(), { tasks: [Doomed] });
      const task = await rt.create(Doomed, {});
      const done = await finished(rt, task.id, 5000);
      assert.equal(done.status, 'failed');
      assert.equal(done.attempt, 3);
      assert.equal(done.error?.message, 'attempt 3 failed');
      assert.equal(done.error?.type, 'RangeError');
      const events = await assertLog(rt, done, 'error');
      assert.deepEqual(events.map((e) => e.type), ['retry', 'retry', 'error']);
      assert.deepEqual(events.at(-1)?.data, { message: 'attempt 3 failed', error_type: 'RangeError' });
    });

    void test('NonRetryableError (and subclasses) fail at once, without retry', async () => {
      class BadConfig extends NonRetryableError {}
      const runs: number[] = [];
      const Strict = defineTask({
        app: 'core',
        type: 'Strict',
        input: z.object({ sub: z.boolean() }),
        retries: { limit: 5, backoffMs: 1 },
        run(ctx, { sub }) {
          runs.push(ctx.task.id);
          throw sub ? new BadConfig('no config') : new NonRetryableError('give up');
        },
      });
      await using rt = await open(tmp.db(), { tasks: [Strict] });
      for (const [sub, type, message] of [[false, 'NonRetryableError', 'give up'], [true, 'BadConfig', 'no config']] as const) {
        const task = await rt.create(Strict, { sub });
        const done = await finished(rt, task.id);
        assert.equal(done.status, 'failed');
        assert.equal(done.attempt, 1);
        assert.equal(done.error?.type, type);
        assert.equal(done.error?.message, message);
        const events = await assertLog(rt, done, 'error');
        assert.deepEqual(events.map((e) => e.type), ['error']);
        assert.equal(runs.filter((id) => id === task.id).length, 1);
      }
    });
  });

  /**
   * Counts `takeSignal` calls (the only way a run reads its signals from the store) and lease
   * renewals; renewals answer without the signals they found, so the store's fallback for a lost
   * signal cannot deliver one and a signal that arrives came the direct way.
   */
  async function countingStore(file: string): Promise<{ store: Store; takes: () => number; renewal: () => Promise<void> }> {
    const inner = await tmp.store(file);
    let takes = 0;
    let renewed = deferred();
    const store = intercept(inner, {
      takeSignal(taskId: number, name: string) {
        takes++;
        return inner.takeSignal(taskId, name);
      },
      async renewLeases(...args: Parameters<Store['renewLeases']>) {
        const answer = await inner.renewLeases(...args);
        if (args[1].length > 0) {
          renewed.resolve();
          renewed = deferred();
        }
        return { ...answer, signals: [] };
      },
    });
    return { store, takes: () => takes, renewal: () => renewed.promise };
  }

  void describe('signals', () => {
    const Waiter = defineTask({
      app: 'core',
      type: 'Waiter',
      input: z.object({}),
      async run(ctx) {
        await ctx.send('waiting', {});
        const payload = await ctx.waitForSignal<{ go: number }>('continue');
        await ctx.send('got', { payload });
        return payload;
      },
    });

    void test('waitForSignal resolves with the payload when signal() is called, directly and without polling', async () => {
      const { store, takes, renewal } = await countingStore(tmp.db());
      // Renewals every 100 ms: the clock the test waits on while the run waits.
      await using rt = await createTaskstream({ store, tasks: [Waiter], sweepIntervalMs: 60_000, leaseMs: 300 });
      const task = await rt.create(Waiter, {});
      const subscription = await rt.subscribe(task.id);
      const first = await within(2000, subscription.next(), 'the `waiting` event');
      assert.equal(first.value?.type, 'waiting');
      // While it waits, two lease renewals go by; a run polling for its signal would have read the store.
      for (let i = 0; i < 2; i++) await within(5000, renewal(), 'a lease renewal');
      const takesWhileWaiting = takes();
      assert.ok(takesWhileWaiting <= 1, `waitForSignal read the store ${takesWhileWaiting} times while waiting: polling`);
      assert.equal(await rt.isRunning(task.id), true);

      assert.equal(await rt.signal(task.id, 'continue', { go: 7 }), true);
      const done = await finished(rt, task.id, 5000);
      assert.equal(done.status, 'completed');
      assert.deepEqual(done.finalValue, { go: 7 });
      const rest = await collect(subscription, 2000);
      assert.deepEqual(rest.map((e) => [e.type, e.data]), [['got', { payload: { go: 7 } }], ['complete', { final_value: { go: 7 } }]]);
      assert.equal(takes(), takesWhileWaiting + 1, 'one store read per signal');
    });

    void test('a signal sent while the task is pending is kept and delivered when it runs', async () => {
      await using rt = await open(tmp.db(), { tasks: [Waiter] });
      const task = await rt.create(Waiter, {}, { runAt: new Date(Date.now() + 3_600_000) });
      assert.equal(await rt.signal(task.id, 'continue', { go: 1 }), true);
      assert.equal(await rt.signal(task.id, 'other', { go: 2 }), true);
      const started = nextEvent(rt, 'task:started', (e) => e.id === task.id, 2000, 'the task to start');
      assert.equal(await rt.start(task.id), true);
      await started;
      const done = await finished(rt, task.id, 2000);
      assert.equal(done.status, 'completed');
      assert.deepEqual(done.finalValue, { go: 1 }, 'the `continue` signal, not the other one');
    });

    void test('signals queue in order: two sent before the waits are taken one each', async () => {
      const Twice = defineTask({
        app: 'core',
        type: 'Twice',
        input: z.object({}),
        async run(ctx) {
          const a = await ctx.waitForSignal('next');
          const b = await ctx.waitForSignal('next');
          return [a, b];
        },
      });
      await using rt = await open(tmp.db(), { tasks: [Twice] });
      const task = await rt.create(Twice, {}, { runAt: new Date(Date.now() + 3_600_000) });
      assert.equal(await rt.signal(task.id, 'next', 1), true);
      assert.equal(await rt.signal(task.id, 'next', 2), true);
      await rt.start(task.id);
      assert.deepEqual((await finished(rt, task.id)).finalValue, [1, 2]);
    });

    void test('a signal to a finished task returns false; to an unknown one throws TaskNotFoundError', async () => {
      const Done = defineTask({ app: 'core', type: 'Done', input: z.object({}), run: () => 'ok' });
      await using rt = await open(tmp.db(), { tasks: [Done] });
      const task = await rt.create(Done, {});
      await finished(rt, task.id);
      assert.equal(await rt.signal(task.id, 'continue', {}), false);
      await assert.rejects(rt.signal(99_999, 'continue'), TaskNotFoundError);
      assert.equal((await rt.get(task.id))?.lastSeq, 1);
    });

    void test('a waitForSignal is ended by a cancel (the wait rejects with the abort)', async () => {
      let waitError: unknown;
      const Stuck = defineTask({
        app: 'core',
        type: 'Stuck',
        input: z.object({}),
        async run(ctx) {
          await ctx.send('waiting', {});
          try {
            await ctx.waitForSignal('never');
          } catch (err) {
            waitError = err;
            throw err;
          }
        },
      });
      await using rt = await open(tmp.db(), { tasks: [Stuck] });
      const task = await rt.create(Stuck, {});
      const subscription = await rt.subscribe(task.id);
      assert.equal((await within(2000, subscription.next(), 'the `waiting` event')).value?.type, 'waiting');
      assert.equal(await rt.cancel(task.id), true);
      const done = await finished(rt, task.id);
      assert.equal(done.status, 'cancelled');
      assert.ok(waitError instanceof TaskAbortedError, 'waitForSignal rejects with the abort reason');
      await assertLog(rt, done, 'cancelled');
    });
  });
});
