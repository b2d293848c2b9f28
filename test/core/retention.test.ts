/**
 * Retention: a task keeps at most its N newest events (runtime default or per type), never its
 * terminal event; pruning is done by the time the terminal event is stored, and runs in the
 * background while the task runs. A subscriber positioned before what is kept gets a `gap` event
 * naming what it can no longer have, then the retained events in order.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { defineTask, type RetentionPolicy, type Store, type TaskEvent } from '../../src/index.js';
import { intercept } from '../support/intercept.js';
import { collect, deferred, finished, open, storeFor, tempDb, within } from './helpers.js';

const tmp = tempDb('retention');

/** Sends `count` ticks (50 in flight), then waits for `hold` if given, then returns. */
function ticks(type: string, options: { retention?: RetentionPolicy; gate?: Promise<void>; hold?: Promise<void> } = {}) {
  return defineTask({
    app: 'core',
    type,
    input: z.object({ count: z.number().int() }),
    retention: options.retention,
    async run(ctx, { count }) {
      await options.gate;
      let batch: Array<Promise<void>> = [];
      for (let i = 1; i <= count; i++) {
        batch.push(ctx.send('tick', { i }));
        if (batch.length === 50) {
          await Promise.all(batch);
          batch = [];
        }
      }
      await Promise.all(batch);
      await options.hold;
      return count;
    },
  });
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

void describe('retention', () => {
  void test('retainEvents N: a finished task keeps its N newest events, first_seq moves, a new subscriber gets a gap first', async () => {
    const Ticks = ticks('Ticks');
    await using rt = await open(tmp.db(), { tasks: [Ticks], retainEvents: 10 });
    const task = await finished(rt, (await rt.create(Ticks, { count: 100 })).id);
    assert.equal(task.firstSeq, 92);
    assert.equal(task.lastSeq, 101);
    assert.deepEqual((await rt.events(task.id)).map((e) => e.seq), range(92, 101));
    const events = await collect(await rt.subscribe(task.id));
    assert.deepEqual(events.map((e) => [e.seq, e.type]), [[91, 'gap'], ...range(92, 100).map((s) => [s, 'tick']), [101, 'complete']]);
    assert.deepEqual(events[0]!.data, { from_seq: 1, to_seq: 91 });
    // Positioned inside the pruned range: the gap starts after it. At or past first_seq - 1: no gap.
    const fromInside = await collect(await rt.subscribe(task.id, { afterSeq: 40 }));
    assert.deepEqual([fromInside[0]!.type, fromInside[0]!.seq, fromInside[0]!.data], ['gap', 91, { from_seq: 41, to_seq: 91 }]);
    assert.deepEqual((await collect(await rt.subscribe(task.id, { afterSeq: 91 }))).map((e) => e.seq), range(92, 101));
  });

  void test('the terminal event is never pruned: retainEvents 1 keeps only it', async () => {
    const Ticks = ticks('Ticks');
    await using rt = await open(tmp.db(), { tasks: [Ticks], retainEvents: 1 });
    const task = await finished(rt, (await rt.create(Ticks, { count: 30 })).id);
    assert.deepEqual((await rt.events(task.id)).map((e) => [e.seq, e.type]), [[31, 'complete']]);
    const events = await collect(await rt.subscribe(task.id));
    assert.deepEqual(events.map((e) => [e.seq, e.type, e.data]), [[30, 'gap', { from_seq: 1, to_seq: 30 }], [31, 'complete', { final_value: 30 }]]);
  });

  void test('a type\'s own retention overrides the runtime\'s; "all" keeps every event', async () => {
    const Five = ticks('Five', { retention: { events: 5 } });
    const All = ticks('All', { retention: { events: 'all' } });
    const Default = ticks('Default');
    await using rt = await open(tmp.db(), { tasks: [Five, All, Default], retainEvents: 20 });
    const [five, all, dflt] = await Promise.all([rt.create(Five, { count: 60 }), rt.create(All, { count: 60 }), rt.create(Default, { count: 60 })]);
    for (const t of [five, all, dflt]) await finished(rt, t.id);
    assert.equal((await rt.events(five.id)).length, 5);
    assert.equal((await rt.events(all.id)).length, 61);
    assert.equal((await rt.events(dflt.id)).length, 20);
  });

  void test('a running task is pruned in the background, within a tenth of N', async () => {
    const hold = deferred();
    const Running = ticks('Running', { hold: hold.promise });
    const handle = tmp.db();
    const inner = await storeFor(handle);
    // The store as it is, telling when each background trim has been done.
    let trimmed = deferred();
    const store = intercept(inner, {
      async trimEvents(...args: Parameters<Store['trimEvents']>) {
        const result = await inner.trimEvents(...args);
        trimmed.resolve();
        trimmed = deferred();
        return result;
      },
    });
    await using rt = await open(handle, { tasks: [Running], retainEvents: 100, store });
    const task = await rt.create(Running, { count: 1000 });
    await within(10_000, (async () => {
      for (;;) {
        const next = trimmed.promise;
        const now = await rt.get(task.id);
        // Once the sends are done, the next background trim brings it within N + N/10.
        if (now !== undefined && now.lastSeq === 1000 && now.lastSeq - now.firstSeq + 1 <= 110) return;
        await next;
      }
    })(), 'the running task to be pruned');
    const now = (await rt.get(task.id))!;
    assert.equal(now.status, 'running');
    const kept = now.lastSeq - now.firstSeq + 1;
    assert.ok(kept >= 100 && kept <= 110, `a running task holds between N and N + N/10 events, holds ${kept}`);
    hold.resolve();
    const done = await finished(rt, task.id);
    assert.equal(done.lastSeq - done.firstSeq + 1, 100, 'exactly N once finished');
  });

  void test('a slow subscriber overtaken by pruning gets a gap mid-stream, then the retained events', async () => {
    const gate = deferred();
    const Ticks = ticks('Ticks', { gate: gate.promise });
    await using rt = await open(tmp.db(), { tasks: [Ticks], retainEvents: 50, subscriberBuffer: 4 });
    const task = await rt.create(Ticks, { count: 1000 });
    const sub = await rt.subscribe(task.id);
    gate.resolve();
    const first = await within(2000, sub.next(), 'the first event');
    await finished(rt, task.id); // the subscriber stopped reading; the log is pruned to 952..1001
    const events: TaskEvent[] = [first.value as TaskEvent, ...(await collect(sub))];
    const gaps = events.filter((e) => e.type === 'gap');
    assert.equal(gaps.length, 1, 'one gap');
    const at = events.indexOf(gaps[0]!);
    const before = events[at - 1]!;
    assert.deepEqual(gaps[0]!.data, { from_seq: before.seq + 1, to_seq: 951 });
    assert.equal(gaps[0]!.seq, 951);
    assert.deepEqual(events.slice(0, at).map((e) => e.seq), range(1, before.seq), 'what it had been given, in order');
    assert.deepEqual(events.slice(at + 1).map((e) => e.seq), range(952, 1001), 'then the retained window');
  });

  void test('bad retention settings are refused with a clear error', async () => {
    await assert.rejects(open(tmp.db(), { tasks: [], retainEvents: 0 }), /retainEvents must be a whole number >= 1/);
    await assert.rejects(open(tmp.db(), { tasks: [], retainEvents: 2.5 }), /retainEvents must be a whole number >= 1/);
    assert.throws(() => ticks('Bad', { retention: { events: 0 } }), /retention\.events must be a whole number >= 1/);
    assert.throws(() => ticks('Bad', { retention: {} as RetentionPolicy }), /retention must be \{ events: N \}/);
  });
});
