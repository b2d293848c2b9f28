/**
 * Events: stored before any watcher sees them; seq gap-free; every subscriber, whenever it joins,
 * gets exactly the log; slow and departing subscribers cost the task and the others nothing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { defineTask, type EventRecord, type TaskEvent } from '../../src/index.js';
import { assertLog, collect, deferred, finished, open, describeBackends, within } from './helpers.js';

await describeBackends('core', 'events', (tmp) => {

  /** Waits for `gate` (so watchers can attach before the first event), then sends `count` ticks quickly. */
  function burstTask(gate: Promise<void>, onTick?: (i: number, id: number) => void) {
    return defineTask({
      app: 'core',
      type: 'Burst',
      input: z.object({ count: z.number().int(), chunk: z.number().int().default(25) }),
      async run(ctx, { count, chunk }) {
        await gate;
        let batch: Array<Promise<void>> = [];
        for (let i = 1; i <= count; i++) {
          batch.push(ctx.send('tick', { i }));
          onTick?.(i, ctx.task.id);
          if (batch.length === chunk) {
            await Promise.all(batch);
            batch = [];
          }
        }
        await Promise.all(batch);
        return { sent: count };
      },
    });
  }

  /** Asserts `events` are exactly seq from+1..to, each tick carrying its number. */
  function assertRange(events: readonly TaskEvent[], from: number, to: number, who: string): void {
    const seqs = events.map((e) => e.seq);
    const expected = Array.from({ length: to - from }, (_, k) => from + 1 + k);
    if (seqs.length !== expected.length || seqs.some((s, k) => s !== expected[k])) {
      const firstBad = seqs.findIndex((s, k) => s !== expected[k]);
      assert.fail(`${who}: expected seq ${from + 1}..${to} (${expected.length} events), got ${seqs.length} events; first mismatch at index ${firstBad}: ${seqs[firstBad]} (around ${seqs.slice(Math.max(0, firstBad - 2), firstBad + 3).join(',')})`);
    }
    for (const e of events) if (e.type === 'tick') assert.equal(e.data.i, e.seq, `${who}: tick data matches its seq`);
  }

  void describe('events', () => {
    void test('an event is stored before any watcher sees it', async () => {
      const gate = deferred();
      const Burst = burstTask(gate.promise);
      await using rt = await open(tmp.db(), { tasks: [Burst] });
      const task = await rt.create(Burst, { count: 200, chunk: 7 });

      // Low-level sink: the store is read synchronously at the moment of delivery (better-sqlite3
      // runs the query before returning its promise), so the event must already be in it.
      const reads: Array<Promise<[EventRecord, EventRecord[]]>> = [];
      const sinkEnded = deferred<string>();
      const detach = rt.watch(task.id, 0, {
        event: (e) => {
          reads.push(rt.store.readEvents(task.id, e.seq - 1, { limit: 1 }).then((page) => [e, page?.events ?? []]));
          return true;
        },
        end: (reason) => sinkEnded.resolve(reason),
      });
      const subscription = await rt.subscribe(task.id);
      const checked = (async () => {
        let n = 0;
        for await (const e of subscription) {
          const stored = await rt.events(task.id, { afterSeq: e.seq - 1, limit: 1 });
          assert.deepEqual(stored[0], e, `event ${e.seq} must be readable when received`);
          n++;
        }
        return n;
      })();
      gate.resolve();
      assert.equal(await within(5000, checked, 'the subscriber to read everything'), 201);
      assert.equal(await within(5000, sinkEnded.promise, 'the sink to end'), 'terminal');
      detach();
      assert.equal(reads.length, 201);
      for (const [e, rows] of await Promise.all(reads)) {
        assert.equal(rows.length, 1, `event ${e.seq} was not stored when the sink got it`);
        assert.equal(rows[0]?.seq, e.seq);
        assert.equal(rows[0]?.json, e.json);
      }
      await assertLog(rt, await finished(rt, task.id), 'complete');
    });

    void test('2000 events, subscribers joining before, during (at random moments, some with afterSeq) and after: each gets exactly its range', async () => {
      const N = 2000;
      const total = N + 1; // the ticks and `complete`
      const gate = deferred();
      const joins: Array<Promise<void>> = [];
      let joinAt = new Set<number>();
      let rt!: Awaited<ReturnType<typeof open>>;
      const join = (id: number, afterSeq: number, who: string, later = false): void => {
        joins.push((async () => {
          if (later) await new Promise((resolve) => setImmediate(resolve));
          const events = await collect(await rt.subscribe(id, { afterSeq }), 10_000, `${who} to end`);
          assertRange(events, afterSeq, total, who);
          if (afterSeq < total) assert.equal(events.at(-1)?.type, 'complete', who);
        })());
      };
      // Random moments: some ticks, chosen up front, make the task's own loop start a subscriber
      // (half of them resume after a random seq already sent), others join on a later macrotask.
      const Burst = burstTask(gate.promise, (i, id) => {
        if (!joinAt.has(i)) return;
        if (i % 2 === 0) join(id, Math.floor(Math.random() * i), `joiner at tick ${i} with afterSeq`);
        else join(id, 0, `joiner after tick ${i}`, true);
      });
      rt = await open(tmp.db(), { tasks: [Burst] });
      try {
        joinAt = new Set(Array.from({ length: 16 }, () => 1 + Math.floor(Math.random() * (N - 1))));
        const task = await rt.create(Burst, { count: N, chunk: 50 });
        join(task.id, 0, 'early subscriber');
        join(task.id, 0, 'second early subscriber');
        gate.resolve();
        const done = await finished(rt, task.id, 15_000);
        await assertLog(rt, done, 'complete');
        join(task.id, 0, 'subscriber after the end');
        join(task.id, 1500, 'subscriber after the end with afterSeq 1500');
        join(task.id, total, 'subscriber after the end at the last seq');
        await within(15_000, Promise.all(joins), 'every subscriber to end');
        assert.equal(joins.length, 5 + joinAt.size);
      } finally {
        await rt.close();
      }
    });

    void test('resuming after the terminal event (Last-Event-ID = last seq) ends at once instead of hanging', async () => {
      const gate = deferred();
      const Burst = burstTask(gate.promise);
      await using rt = await open(tmp.db(), { tasks: [Burst] });
      const task = await rt.create(Burst, { count: 3 });
      gate.resolve();
      const done = await finished(rt, task.id);
      assert.equal(done.lastSeq, 4);
      assert.deepEqual(await collect(await rt.subscribe(task.id, { afterSeq: 4 }), 2000, 'a resume at the end to end'), []);
      assert.deepEqual(await collect(await rt.subscribe(task.id, { afterSeq: 9 }), 2000, 'a resume past the end to end'), []);
      const last = await collect(await rt.subscribe(task.id, { afterSeq: 3 }), 2000, 'a resume before the last event');
      assert.deepEqual(last.map((e) => [e.seq, e.type]), [[4, 'complete']]);
      assert.equal(rt.stats.subscribers, 0);
    });

    void test('60 subscribers each get every event', async () => {
      const gate = deferred();
      const Burst = burstTask(gate.promise);
      await using rt = await open(tmp.db(), { tasks: [Burst] });
      const task = await rt.create(Burst, { count: 300, chunk: 10 });
      const readers = await Promise.all(Array.from({ length: 60 }, () => rt.subscribe(task.id)));
      const results = Promise.all(readers.map((r) => collect(r, 10_000, 'a subscriber to end')));
      gate.resolve();
      const all = await results;
      all.forEach((events, k) => assertRange(events, 0, 301, `subscriber ${k}`));
      assert.equal(rt.stats.subscribers, 0);
    });

    void test('consecutive live batches go to the watchers in alternating order (no stream is always written last)', async () => {
      const gate = deferred();
      const Burst = burstTask(gate.promise);
      await using rt = await open(tmp.db(), { tasks: [Burst] });
      // chunk 1: each send is awaited, so every event is a bus batch of its own.
      const task = await rt.create(Burst, { count: 20, chunk: 1 });
      const order = new Map<number, string[]>();
      const opened = new Set<string>();
      const ended: Array<Promise<string>> = [];
      const detaches = ['a', 'b', 'c'].map((name) => {
        const end = deferred<string>();
        ended.push(end.promise);
        return rt.watch(task.id, 0, {
          event: (e) => {
            let names = order.get(e.seq);
            if (names === undefined) order.set(e.seq, (names = []));
            names.push(name);
            return true;
          },
          end: (reason) => end.resolve(reason),
          opened: () => void opened.add(name),
        });
      });
      // Each watcher goes live in the turn its first read found the task.
      await within(5000, (async () => {
        while (opened.size < 3) await new Promise((resolve) => setImmediate(resolve));
        await new Promise((resolve) => setImmediate(resolve));
      })(), 'the watchers to go live');
      gate.resolve();
      assert.deepEqual(await within(5000, Promise.all(ended), 'the watchers to end'), ['terminal', 'terminal', 'terminal']);
      for (const detach of detaches) detach();
      assert.equal(order.size, 21);
      for (let seq = 2; seq <= 21; seq++) {
        assert.deepEqual(order.get(seq), [...order.get(seq - 1)!].reverse(), `seq ${seq} goes to the watchers in the reverse order of seq ${seq - 1}`);
      }
    });

    void test('a stalled subscriber blocks neither the task nor others; when it reads again it gets every event in order', async () => {
      const gate = deferred();
      const Burst = burstTask(gate.promise);
      await using rt = await open(tmp.db(), { tasks: [Burst], subscriberBuffer: 8 });
      const task = await rt.create(Burst, { count: 500, chunk: 20 });
      const stalled = await rt.subscribe(task.id);
      const healthy = await rt.subscribe(task.id);
      const healthyEvents = collect(healthy, 10_000, 'the healthy subscriber to end');
      gate.resolve();
      const first = await within(2000, stalled.next(), 'the stalled subscriber\'s first event');
      assert.equal(first.done, false);
      assert.equal(first.value?.seq, 1);
      // It stops reading: the task still finishes and the other subscriber gets everything.
      await finished(rt, task.id, 10_000);
      assertRange(await healthyEvents, 0, 501, 'healthy subscriber');
      // The stalled reader is paused, not queued for: it stays attached and reads the rest from the store.
      assert.equal(rt.stats.subscribers, 1);
      const rest = await collect(stalled, 10_000, 'the stalled subscriber to catch up');
      assertRange([first.value, ...rest], 0, 501, 'stalled subscriber');
    });

    void test('a subscriber that leaves does not stop the task', async () => {
      const gate = deferred();
      const Burst = burstTask(gate.promise);
      await using rt = await open(tmp.db(), { tasks: [Burst] });
      const task = await rt.create(Burst, { count: 100, chunk: 5 });
      const subscription = await rt.subscribe(task.id);
      gate.resolve();
      let seen = 0;
      await within(2000, (async () => {
        for await (const e of subscription) {
          seen = e.seq;
          if (e.seq === 3) break;
        }
      })(), 'three events');
      assert.equal(seen, 3);
      assert.equal(rt.stats.subscribers, 0);
      const done = await finished(rt, task.id);
      assert.equal(done.status, 'completed');
      assert.equal(done.lastSeq, 101);
    });

    void test('a subscriber that aborts its signal detaches; the task goes on', async () => {
      const gate = deferred();
      const Burst = burstTask(gate.promise);
      await using rt = await open(tmp.db(), { tasks: [Burst] });
      const task = await rt.create(Burst, { count: 50, chunk: 5 });
      const controller = new AbortController();
      const subscription = await rt.subscribe(task.id, { signal: controller.signal });
      gate.resolve();
      const first = await within(2000, subscription.next(), 'the first event');
      assert.equal(first.value?.seq, 1);
      controller.abort();
      await assert.rejects(within(2000, subscription.next(), 'the aborted read'), { name: 'AbortError' });
      assert.equal((await finished(rt, task.id)).status, 'completed');
    });
  });
});
