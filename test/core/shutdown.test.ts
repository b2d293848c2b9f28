/**
 * Graceful shutdown: stop claiming, abort runs with reason `shutdown`, wait up to the timeout
 * (warning about runs that did not stop), put unfinished tasks back to `pending` with an
 * `interrupted` event, end open streams, refuse new work; idempotent; a new runtime resumes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { defineTask, RuntimeClosedError, TaskAbortedError } from '../../src/index.js';
import { assertLog, capturingLogger, deferred, finished, open, describeBackends, untilAborted, within } from './helpers.js';

await describeBackends('core', 'shutdown', (tmp) => {

  void describe('shutdown', () => {
    void test('close() with nothing running takes milliseconds, is idempotent, and refuses new work', async () => {
      const Noop = defineTask({ app: 'core', type: 'Noop', input: z.object({}), run: () => 'ok' });
      // A grace period far beyond the wait below: a close that waited it out would fail.
      const rt = await open(tmp.db(), { tasks: [Noop], graceMs: 600_000 });
      const task = await rt.create(Noop, {});
      await finished(rt, task.id);
      const first = rt.close();
      const second = rt.close({ timeoutMs: 5 });
      assert.equal(second, first, 'a second call returns the first call\'s promise');
      await within(10_000, first, 'close() with nothing running, well before the grace period');
      assert.equal(rt.closed, true);
      assert.equal(rt.close(), first);
      await assert.rejects(rt.create(Noop, {}), RuntimeClosedError);
      await assert.rejects(rt.start(task.id), RuntimeClosedError);
      await assert.rejects(rt.subscribe(task.id), RuntimeClosedError);
      await assert.rejects(rt.create(Noop, {}), (err: unknown) => {
        assert.ok(err instanceof RuntimeClosedError, 'a RuntimeClosedError');
        assert.equal(err.code, 'closed');
        assert.match(err.message, /closed/);
        return true;
      });
    });

    void test('close({timeoutMs}) aborts runs with reason shutdown, waits for the timeout at most, names the stuck run, and requeues both', async () => {
      const file = tmp.db();
      const started = new Map<string, number>();
      const bothStarted = deferred();
      let coopReason: unknown;
      const stuck = deferred();
      const Coop = defineTask({
        app: 'core',
        type: 'Coop',
        input: z.object({}),
        async run(ctx) {
          await ctx.send('step', { attempt: ctx.task.attempt });
          started.set('coop', ctx.task.id);
          if (started.size === 2) bothStarted.resolve();
          try {
            await untilAborted(ctx.signal);
          } finally {
            coopReason = ctx.signal.reason;
          }
        },
      });
      const Deaf = defineTask({
        app: 'core',
        type: 'Deaf',
        input: z.object({}),
        async run(ctx) {
          await ctx.send('step', { attempt: ctx.task.attempt });
          started.set('deaf', ctx.task.id);
          if (started.size === 2) bothStarted.resolve();
          await stuck.promise; // ignores its signal
        },
      });
      const logger = capturingLogger();
      const rt = await open(file, { tasks: [Coop, Deaf], logger });
      const coop = await rt.create(Coop, {});
      const deaf = await rt.create(Deaf, {});
      await within(2000, bothStarted.promise, 'both tasks to start');
      const watching = await rt.subscribe(coop.id);
      const seen: string[] = [];
      const streamEnd = (async () => {
        try {
          for await (const e of watching) seen.push(e.type);
          return 'ended';
        } catch (err) {
          return err;
        }
      })();

      const t0 = performance.now();
      // The deaf run never ends: close() returns at all only because of its timeout.
      await within(10_000, rt.close({ timeoutMs: 150 }), 'close()');
      const elapsed = performance.now() - t0;
      assert.ok(elapsed >= 140, `waited for the stuck run (${elapsed.toFixed(0)} ms)`);
      assert.ok(coopReason instanceof TaskAbortedError, 'the cooperative run saw its signal abort');
      assert.equal(coopReason.kind, 'shutdown');

      const warnings = logger.entries.filter((e) => e.level === 'warn' && /shutdown/.test(e.msg));
      assert.equal(warnings.length, 1, `one shutdown warning: ${JSON.stringify(logger.entries.map((e) => e.msg))}`);
      assert.match(warnings[0]!.msg, new RegExp(`core/Deaf/${deaf.id}\\b`));
      assert.doesNotMatch(warnings[0]!.msg, /core\/Coop/);

      // The open stream got the `interrupted` event, then ended so its client can resume elsewhere.
      const end = await within(2000, streamEnd, 'the open stream to end');
      assert.ok(end instanceof RuntimeClosedError, `the stream ends with RuntimeClosedError, got ${String(end)}`);
      assert.deepEqual(seen, ['step', 'interrupted']);

      // Both are back to pending with an `interrupted` event as their last.
      await using after = await open(file, { tasks: [], logger });
      for (const ref of [coop, deaf]) {
        const task = await after.get(ref.id);
        assert.equal(task?.status, 'pending', `task ${ref.id} is pending again`);
        assert.equal(task?.attempt, 1);
        const events = await after.events(ref.id);
        assert.deepEqual(events.map((e) => [e.seq, e.type]), [[1, 'step'], [2, 'interrupted']]);
        assert.deepEqual(events[1]?.data, { reason: 'shutdown' });
        assert.equal(task?.lastSeq, 2);
      }
      stuck.resolve();
    });

    void test('a new runtime on the same file picks interrupted tasks up again (attempt 2) and continues their log', async () => {
      const file = tmp.db();
      const firstRun = deferred<number>();
      const Resumable = defineTask({
        app: 'core',
        type: 'Resumable',
        input: z.object({}),
        async run(ctx) {
          await ctx.send('begin', { attempt: ctx.task.attempt });
          if (ctx.task.attempt === 1) {
            await ctx.progress({ done: 1 });
            firstRun.resolve(ctx.task.id);
            await untilAborted(ctx.signal);
          }
          await ctx.progress({ done: 2 });
          return { attempt: ctx.task.attempt };
        },
      });
      let id: number;
      {
        const rt = await open(file, { tasks: [Resumable] });
        id = (await rt.create(Resumable, {})).id;
        await within(2000, firstRun.promise, 'the first run to reach its wait');
        await within(3000, rt.close({ timeoutMs: 1000 }), 'close()');
      }
      await using rt = await open(file, { tasks: [Resumable] });
      const done = await finished(rt, id, 3000);
      assert.equal(done.status, 'completed');
      assert.equal(done.attempt, 2);
      assert.deepEqual(done.finalValue, { attempt: 2 });
      const events = await assertLog(rt, done, 'complete');
      assert.deepEqual(events.map((e) => [e.seq, e.type]), [
        [1, 'begin'], [2, 'progress'], [3, 'interrupted'], [4, 'begin'], [5, 'progress'], [6, 'complete'],
      ]);
      assert.deepEqual(events[3]?.data, { attempt: 2 });
    });

    void test('a run that returns a value while being shut down completes', async () => {
      const file = tmp.db();
      const started = deferred<number>();
      const Finisher = defineTask({
        app: 'core',
        type: 'Finisher',
        input: z.object({}),
        async run(ctx) {
          started.resolve(ctx.task.id);
          await untilAborted(ctx.signal).catch(() => {});
          return 'partial result';
        },
      });
      const rt = await open(file, { tasks: [Finisher] });
      const task = await rt.create(Finisher, {});
      await within(2000, started.promise, 'the task to start');
      await within(3000, rt.close({ timeoutMs: 1000 }), 'close()');
      await using again = await open(file, { tasks: [] });
      const done = await again.get(task.id);
      assert.equal(done?.status, 'completed');
      assert.equal(done?.finalValue, 'partial result');
      await assertLog(again, done!, 'complete');
    });

    void test('close() stops claiming: pending tasks stay pending and untouched', async () => {
      const file = tmp.db();
      const started = deferred<number>();
      const runs: number[] = [];
      const One = defineTask({
        app: 'core',
        type: 'One',
        input: z.object({}),
        async run(ctx) {
          runs.push(ctx.task.id);
          started.resolve(ctx.task.id);
          await untilAborted(ctx.signal);
        },
      });
      const rt = await open(file, { tasks: [One], concurrency: 1 });
      const first = await rt.create(One, {});
      const queued = await rt.create(One, {});
      await within(2000, started.promise, 'the first task to start');
      // The first run's slot frees up during close: the queued task must not be claimed.
      await within(3000, rt.close({ timeoutMs: 1000 }), 'close()');
      assert.deepEqual(runs, [first.id]);
      await using again = await open(file, { tasks: [] });
      const q = await again.get(queued.id);
      assert.equal(q?.status, 'pending');
      assert.equal(q?.attempt, 0);
      assert.equal(q?.lastSeq, 0);
      assert.equal((await again.get(first.id))?.status, 'pending');
    });
  });
});
