/**
 * Replay: a late or slow subscriber reads the log from the store in pages bounded in rows and
 * bytes, and what was read for it is kept until it takes it, never read twice. A subscriber
 * positioned past the end of a running task waits, and still gets the terminal event.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { createTaskstream, defineTask, sqliteStore, type TaskEvent } from '../../src/index.js';
import { lossyBus } from '../support/buses.js';
import { countingStore } from '../support/stores.js';
import { collect, deferred, finished, open, tempDb } from './helpers.js';
import { sendTicks } from '../support/ticks.js';

const tmp = tempDb('replay');
const PAGE_BYTES = 256 * 1024;

/** Waits for `gate`, then sends `count` events of `size` bytes of padding, 50 in flight at a time. */
function logTask(gate: Promise<void> = Promise.resolve()) {
  return defineTask({
    app: 'core',
    type: 'Log',
    input: z.object({ count: z.number().int(), size: z.number().int().default(10) }),
    async run(ctx, { count, size }) {
      await gate;
      await sendTicks(ctx, count, size);
      return count;
    },
  });
}

function assertSeqs(events: readonly TaskEvent[], from: number, to: number, who: string): void {
  assert.deepEqual(events.map((e) => e.seq), Array.from({ length: to - from + 1 }, (_, i) => from + i), `${who}: seq ${from}..${to}`);
}

/** Reads a subscription to its end, yielding to the event loop every few events (a reader slower than the store). */
async function readSlowly(sub: AsyncIterable<TaskEvent>): Promise<TaskEvent[]> {
  return collect((async function* () {
    let n = 0;
    for await (const e of sub) {
      yield e;
      if (++n % 5 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  })(), 60_000, 'the slow reader to end');
}

void describe('replay', () => {
  for (const [count, size] of [[600, 10_000], [6, 1_000_000], [3000, 100]] as const) {
    void test(`a late, slow reader of ${count} × ${size} B events: each row read from the store once, every page bounded in bytes`, async () => {
      const Log = logTask();
      const store = countingStore(sqliteStore(tmp.db()));
      await using rt = await createTaskstream({ store, tasks: [Log], subscriberBuffer: 16, sweepIntervalMs: 60_000 });
      const task = await rt.create(Log, { count, size });
      await finished(rt, task.id, 60_000);
      const events = await readSlowly(await rt.subscribe(task.id));
      assertSeqs(events, 1, count + 1, 'reader');
      const reread = [...store.reads.times].filter(([, n]) => n > 1).map(([seq]) => seq);
      assert.deepEqual(reread, [], 'no row is read twice');
      assert.equal(store.reads.rows(), count + 1, 'every row read once');
      for (const page of store.reads.pages) {
        assert.ok(page.maxBytes !== undefined && page.maxBytes <= PAGE_BYTES, `each read is bounded in bytes (asked ${page.maxBytes})`);
        // A page stops at the first row that reaches maxBytes: at most one event beyond it.
        assert.ok(page.bytes <= PAGE_BYTES + size + 100, `a page of ${page.rows} rows holds ${page.bytes} bytes`);
      }
    });
  }

  void test('a slow reader of a running task: part of the log from the store, no row read twice, no gap, no duplicate', async () => {
    const gate = deferred();
    const Log = logTask(gate.promise);
    const store = countingStore(sqliteStore(tmp.db()));
    await using rt = await createTaskstream({ store, tasks: [Log], subscriberBuffer: 8, sweepIntervalMs: 60_000 });
    const task = await rt.create(Log, { count: 3000, size: 50 });
    const slow = readSlowly(await rt.subscribe(task.id));
    gate.resolve();
    assertSeqs(await slow, 1, 3001, 'slow reader');
    assert.ok(store.reads.rows() > 0, 'the slow reader read part of the log from the store');
    assert.deepEqual([...store.reads.times].filter(([, n]) => n > 1), [], 'no row is read twice');
  });
});

void describe('a subscriber positioned past the end of a running task', () => {
  void test('waits, then gets the terminal event and ends', async () => {
    const gate = deferred();
    const Log = logTask(gate.promise);
    await using rt = await open(tmp.db(), { tasks: [Log] });
    const task = await rt.create(Log, { count: 3 });
    const beyond = collect(await rt.subscribe(task.id, { afterSeq: 50 }), 5000, 'the stream past the end to end');
    const within = collect(await rt.subscribe(task.id, { afterSeq: 2 }));
    gate.resolve();
    const events = await beyond;
    assert.deepEqual(events.map((e) => [e.seq, e.type]), [[4, 'complete']]);
    assertSeqs(await within, 3, 4, 'afterSeq 2');
  });

  void test('still ends when the terminal event\'s bus message is lost', async () => {
    const gate = deferred();
    const Log = logTask(gate.promise);
    const bus = lossyBus((_, events) => events.some((e) => e.type === 'complete'));
    await using rt = await open(tmp.db(), { tasks: [Log], bus, positionCheckMs: 50 });
    const task = await rt.create(Log, { count: 3 });
    const beyond = collect(await rt.subscribe(task.id, { afterSeq: 50 }), 5000, 'the stream past the end to end');
    gate.resolve();
    assert.deepEqual((await beyond).map((e) => [e.seq, e.type]), [[4, 'complete']]);
  });

  void test('on a finished task it ends at once, with nothing', async () => {
    const Log = logTask();
    await using rt = await open(tmp.db(), { tasks: [Log] });
    const task = await rt.create(Log, { count: 2 });
    await finished(rt, task.id);
    assert.deepEqual(await collect(await rt.subscribe(task.id, { afterSeq: 3 })), []);
    assert.deepEqual(await collect(await rt.subscribe(task.id, { afterSeq: 50 })), []);
  });
});
