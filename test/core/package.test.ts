/**
 * Housekeeping: prune, the built package's exports, and nothing left keeping the event loop alive
 * after close().
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { defineTask, TaskNotFoundError } from '../../src/index.js';
import { collect, deferred, finished, open, describeBackends, untilAborted, within } from './helpers.js';

await describeBackends('core', 'package', (tmp) => {

  void describe('prune', () => {
    void test('prune removes finished tasks older than the cutoff and reports the count; dryRun counts without deleting', async () => {
      const Work = defineTask({
        app: 'core',
        type: 'Work',
        input: z.object({ ms: z.number(), fail: z.boolean().default(false) }),
        async run(ctx, { ms, fail }) {
          await ctx.progress({ ms });
          await sleep(ms);
          if (fail) throw new Error('failed on purpose');
          return ms;
        },
      });
      await using rt = await open(tmp.db(), { tasks: [Work], concurrency: 4 });
      // Old: three finished tasks (completed, failed, cancelled).
      const old = [await rt.create(Work, { ms: 0 }), await rt.create(Work, { ms: 0, fail: true })];
      const cancelledOld = await rt.create(Work, { ms: 0 }, { runAt: new Date(Date.now() + 3_600_000) });
      assert.equal(await rt.cancel(cancelledOld.id), true);
      old.push(cancelledOld);
      const oldDone = await Promise.all(old.map((t) => finished(rt, t.id)));
      const lastOld = Math.max(...oldDone.map((t) => t.finishedAt!.getTime()));
      // Recent: one finishing at least 40 ms after the old ones; and one never finished.
      const recent = await rt.create(Work, { ms: 40 });
      const recentDone = await finished(rt, recent.id);
      const unfinished = await rt.create(Work, { ms: 0 }, { runAt: new Date(0 + Date.now() + 3_600_000) });
      assert.ok(recentDone.finishedAt!.getTime() - lastOld >= 30, 'the recent task finished well after the old ones');

      // A cutoff between them: 15 ms before the recent task finished.
      const olderThanMs = (): number => Date.now() - recentDone.finishedAt!.getTime() + 15;
      assert.equal(await rt.prune({ olderThanMs: 3_600_000 }), 0, 'nothing is an hour old');
      assert.equal(await rt.prune({ olderThanMs: olderThanMs(), dryRun: true }), 3);
      for (const t of old) assert.ok(await rt.get(t.id), `dryRun deleted nothing (task ${t.id})`);
      assert.equal(await rt.prune({ olderThanMs: olderThanMs() }), 3);
      for (const t of old) {
        assert.equal(await rt.get(t.id), undefined, `task ${t.id} was pruned`);
        await assert.rejects(rt.events(t.id), TaskNotFoundError);
        assert.equal(await rt.store.readEvents(t.id, 0, { limit: 100 }), undefined, `task ${t.id} and its log are gone`);
      }
      assert.equal((await rt.get(recent.id))?.status, 'completed');
      assert.equal((await rt.events(recent.id)).length, 2);
      assert.equal((await rt.get(unfinished.id))?.status, 'pending');
      assert.equal(await rt.prune({ olderThanMs: 0, dryRun: true }) >= 1, true, 'the recent one is prunable with a zero cutoff later');
      assert.equal((await rt.get(unfinished.id))?.status, 'pending', 'unfinished tasks are never pruned');
    });
  });

  void describe('package', () => {
    void test('the built package exports the public API (package self-reference "taskstream")', async () => {
      const name = 'taskstream'; // a variable, so the typecheck does not need dist/ to exist
      let mod: Record<string, unknown>;
      try {
        mod = (await import(name)) as Record<string, unknown>;
      } catch (err) {
        assert.fail(`cannot import the built package (run \`npm run build\` first): ${String(err)}`);
      }
      for (const fn of ['createTaskstream', 'defineTask', 'sqliteStore', 'localBus', 'isAbortError']) {
        assert.equal(typeof mod[fn], 'function', `export ${fn}`);
      }
      const errorClasses = [
        'TaskstreamError', 'InputValidationError', 'InvalidEventError', 'LeaseLostError', 'NonRetryableError',
        'RuntimeClosedError', 'TaskAbortedError', 'TaskNotFoundError', 'TaskStateError', 'UnknownTaskTypeError',
      ];
      for (const cls of errorClasses) {
        const ctor = mod[cls] as (new (...args: never[]) => unknown) | undefined;
        assert.equal(typeof ctor, 'function', `export ${cls}`);
        assert.ok(ctor!.prototype instanceof Error, `${cls} extends Error`);
      }
      const base = mod.TaskstreamError as new (...args: never[]) => unknown;
      for (const cls of errorClasses.filter((c) => c !== 'TaskstreamError' && c !== 'NonRetryableError')) {
        assert.ok((mod[cls] as { prototype: unknown }).prototype instanceof base, `${cls} extends TaskstreamError`);
      }
      assert.ok(mod.TERMINAL_EVENTS instanceof Set, 'TERMINAL_EVENTS');
      assert.ok(mod.TERMINAL_STATUSES instanceof Set, 'TERMINAL_STATUSES');
      assert.ok(mod.silentLogger && typeof mod.silentLogger === 'object', 'silentLogger');
      assert.equal(mod.default, undefined, 'no default export');
    });

    void test('the built package runs a task end to end (its migrations are shipped)', async () => {
      const name = 'taskstream';
      const pkg = (await import(name)) as typeof import('../../src/index.js');
      const Hello = pkg.defineTask({ app: 'pkg', type: 'Hello', input: z.object({ who: z.string() }), run: (_ctx, { who }) => `hello ${who}` });
      await using rt = await pkg.createTaskstream({ store: pkg.sqliteStore(path.join(tmp.dir, 'pkg.db')), tasks: [Hello] });
      const task = await rt.create(Hello, { who: 'dist' });
      const events = await collect(await rt.subscribe(task.id), 3000);
      assert.deepEqual(events.map((e) => [e.type, e.data]), [['complete', { final_value: 'hello dist' }]]);
      assert.equal((await rt.get(task.id))?.finalValue, 'hello dist');
    });
  });

  void describe('resources', () => {
    const count = (kind: string): number => process.getActiveResourcesInfo().filter((r) => r === kind).length;
    const timers = (): number => count('Timeout');

    void test('after close() no timer is left keeping the process alive', async () => {
      const before = timers();
      const waiting = deferred<number>();
      const Timed = defineTask({ app: 'core', type: 'Timed', input: z.object({}), timeoutMs: 20, run: (ctx) => untilAborted(ctx.signal) });
      const Retry = defineTask({
        app: 'core', type: 'Retry', input: z.object({}), retries: { limit: 1, backoffMs: 5 },
        run(ctx) {
          if (ctx.task.attempt === 1) throw new Error('once');
          return 'second time';
        },
      });
      const Wait = defineTask({
        app: 'core', type: 'Wait', input: z.object({}), graceMs: 5000,
        async run(ctx) {
          await ctx.send('waiting', {});
          waiting.resolve(ctx.task.id);
          return ctx.waitForSignal('go');
        },
      });
      let during: number;
      {
        const rt = await open(tmp.db(), { tasks: [Timed, Retry, Wait], leaseMs: 60_000 });
        try {
          const timed = await rt.create(Timed, {});
          const retry = await rt.create(Retry, {});
          const later = await rt.create(Retry, {}, { runAt: new Date(Date.now() + 3_600_000) }); // arms the wake timer
          const wait = await rt.create(Wait, {});
          const stream = await rt.subscribe(wait.id);
          await within(2000, waiting.promise, 'the waiting task');
          assert.equal((await finished(rt, timed.id)).status, 'timed_out');
          assert.equal((await finished(rt, retry.id)).status, 'completed');
          const toCancel = await rt.create(Wait, {});
          await rt.signal(wait.id, 'go', 1);
          assert.equal((await finished(rt, wait.id)).status, 'completed');
          assert.equal((await collect(stream, 2000)).at(-1)?.type, 'complete');
          during = timers();
          assert.equal(await rt.cancel(toCancel.id), true);
          await finished(rt, toCancel.id);
          assert.equal((await rt.get(later.id))?.status, 'pending');
        } finally {
          await rt.close({ timeoutMs: 1000 });
        }
        await assert.rejects(rt.store.getTask(1), 'the store is closed');
      }
      assert.ok(during > before, `sanity: the runtime had timers while running (${before} → ${during})`);
      const leftover = process.getActiveResourcesInfo();
      assert.ok(timers() <= before, `timers left after close(): ${timers()} (before: ${before}); active: ${leftover.join(', ')}`);
      // A one-shot setImmediate may still be queued; one that re-arms itself would be a leak.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(count('Immediate'), 0, `immediates keep coming back: ${process.getActiveResourcesInfo().join(', ')}`);
    });
  });
});
