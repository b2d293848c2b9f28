/**
 * Leases: a long run keeps its lease by renewal, so another runtime never takes it over; a run
 * whose process stops renewing is taken over after the lease expires, and the old owner's writes
 * are refused (fenced by the epoch), so the log has no event of the old run after `interrupted`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { createTaskstream, defineTask, LeaseLostError, type Store } from '../../src/index.js';
import { intercept } from '../support/intercept.js';
import { assertLog, deferred, finished, open, describeBackends, within } from './helpers.js';

await describeBackends('core', 'lease', (tmp) => {

  /** A store whose lease renewals can be switched off: the process looks frozen to the others. */
  async function freezableStore(file: string): Promise<{ store: Store; freeze(): void }> {
    const inner = await tmp.store(file);
    let frozen = false;
    // Frozen: it neither renews its leases nor claims new work, as a stalled process would.
    const store = intercept(inner, {
      renewLeases: async (...args: Parameters<Store['renewLeases']>) => (frozen ? { lost: [], cancelRequested: [], signals: [] } : inner.renewLeases(...args)),
      claimTasks: async (...args: Parameters<Store['claimTasks']>) => (frozen ? [] : inner.claimTasks(...args)),
    });
    return { store, freeze: () => (frozen = true) };
  }

  void describe('leases', () => {
    void test('a run that stalls its own event loop past its lease is not recovered (run twice) by its own runtime', async () => {
      let runs = 0;
      const Stall = defineTask({
        app: 'core',
        type: 'Stall',
        input: z.object({}),
        async run(ctx) {
          runs += 1;
          await ctx.send('start', {});
          // A synchronous stretch longer than the lease: renewal and sweep timers both come due at once.
          const until = Date.now() + 250;
          while (Date.now() < until) { /* blocking work */ }
          await ctx.send('after', {});
          return 'done';
        },
      });
      await using rt = await open(tmp.db(), { tasks: [Stall], leaseMs: 60, sweepIntervalMs: 5 });
      const task = await rt.create(Stall, {});
      const done = await finished(rt, task.id);
      assert.equal(done.status, 'completed');
      assert.equal(done.attempt, 1);
      assert.equal(runs, 1);
      const log = await assertLog(rt, done, 'complete');
      assert.deepEqual(log.map((e) => e.type), ['start', 'after', 'complete']);
    });

    void test('a run longer than its lease keeps it by renewal; a second runtime never takes it over', async () => {
      const file = tmp.db();
      const runs = new Map<number, number>();
      // Each step of a run waits for its next lease renewal: ten renewals (every 100 ms) is more than
      // three 300 ms leases of work, however fast or slow the machine.
      const renewed = new Map<number, () => void>();
      const nextRenewal = (taskId: number) => new Promise<void>((resolve) => renewed.set(taskId, resolve));
      const Long = defineTask({
        app: 'core',
        type: 'Long',
        input: z.object({}),
        async run(ctx) {
          runs.set(ctx.task.id, (runs.get(ctx.task.id) ?? 0) + 1);
          for (let i = 0; i < 10; i++) {
            await nextRenewal(ctx.task.id);
            await ctx.progress({ i });
          }
        },
      });
      await using a = await open(file, { tasks: [Long], leaseMs: 300, sweepIntervalMs: 30 });
      await using b = await open(file, { tasks: [Long], leaseMs: 300, sweepIntervalMs: 30 });
      for (const rt of [a, b]) {
        const renew = rt.store.renewLeases.bind(rt.store);
        (rt.store as { renewLeases: typeof renew }).renewLeases = async (owner, held, leaseMs, now) => {
          const renewal = await renew(owner, held, leaseMs, now);
          for (const { taskId } of held) {
            if (renewal.lost.includes(taskId)) continue;
            renewed.get(taskId)?.();
            renewed.delete(taskId);
          }
          return renewal;
        };
      }
      const ended = new Set<number>();
      const bothEnded = deferred();
      for (const rt of [a, b]) {
        rt.on('task:finished', (e) => {
          ended.add(e.id);
          if (ended.size === 2) bothEnded.resolve();
        });
      }
      const ids = [(await a.create(Long, {})).id, (await a.create(Long, {})).id];
      await within(15_000, bothEnded.promise, 'both tasks to finish');
      for (const id of ids) {
        const done = await finished(a, id);
        assert.equal(done.status, 'completed');
        assert.equal(done.attempt, 1, 'never interrupted');
        assert.equal(runs.get(id), 1);
        const events = await assertLog(a, done, 'complete');
        assert.ok(!events.some((e) => e.type === 'interrupted'), 'no takeover');
      }
    });

    void test('a run whose owner stops renewing is taken over after the lease; the old owner is fenced', async () => {
      const file = tmp.db();
      const aStarted = deferred<number>();
      const aRefused = deferred<unknown>();
      const Ticker = defineTask({
        app: 'core',
        type: 'Ticker',
        input: z.object({}),
        async run(ctx) {
          await ctx.send('begin', { attempt: ctx.task.attempt });
          if (ctx.task.attempt > 1) return 'taken over';
          aStarted.resolve(ctx.task.id);
          for (let i = 0; ; i++) {
            try {
              await ctx.send('tick', { i });
            } catch (err) {
              aRefused.resolve(err);
              throw err;
            }
            await sleep(5); // deliberately ignores its signal: only the fence stops its writes
          }
        },
      });
      const frozen = await freezableStore(file);
      const a = await createTaskstream({ store: frozen.store, tasks: [Ticker], leaseMs: 80, sweepIntervalMs: 60_000, owner: 'A' });
      try {
        const id = (await a.create(Ticker, {})).id;
        await within(2000, aStarted.promise, 'the first run to start');
        frozen.freeze();
        await using b = await open(file, { tasks: [Ticker], leaseMs: 80, sweepIntervalMs: 20, owner: 'B' });
        const done = await finished(b, id, 5000);
        assert.equal(done.status, 'completed');
        assert.equal(done.attempt, 2);
        assert.equal(done.finalValue, 'taken over');
        assert.ok(await within(2000, aRefused.promise, 'the old owner to be refused') instanceof LeaseLostError, 'a LeaseLostError');
        const events = await assertLog(b, done, 'complete');
        const cut = events.findIndex((e) => e.type === 'interrupted');
        assert.ok(cut > 0, 'an interrupted event marks the takeover');
        assert.deepEqual(events[cut]?.data, { reason: 'lease_expired' });
        assert.deepEqual(events.slice(cut + 1).map((e) => e.type), ['begin', 'complete'], 'nothing of the old run after the takeover');
        assert.deepEqual(events[cut + 1]?.data, { attempt: 2 });
      } finally {
        await a.close({ timeoutMs: 500 });
      }
    });
  });
});
