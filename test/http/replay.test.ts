/**
 * Replay over HTTP: a client slower than the server is paused and resumed where it stopped (what
 * was read for it is kept, never read again); Last-Event-ID past the end of a running task waits
 * for the terminal event.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { createFetchHandler, createTaskstream, defineTask, sqliteStore } from '../../src/index.js';
import { countingStore } from '../support/stores.js';
import { post, range, startServer, type TestServer, tempDb, until, within } from './helpers.js';
import { sendTicks } from '../support/ticks.js';

/** Sends nothing until the signal `go` (when `gated`), then `count` events of `size` bytes. */
const Log = defineTask({
  app: 'test',
  type: 'Log',
  input: z.object({ count: z.number().int(), size: z.number().int().default(10), gated: z.boolean().default(false) }),
  async run(ctx, { count, size, gated }) {
    if (gated) await ctx.waitForSignal('go');
    await sendTicks(ctx, count, size);
    return count;
  },
});

/** Reads an SSE response to its end, yielding to the event loop between chunks; returns the frames' ids and types. */
async function readSlowly(res: Response): Promise<Array<[number, string]>> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    await new Promise((resolve) => setImmediate(resolve));
  }
  return [...text.matchAll(/^id: (\d+)\nevent: (\S+)$/gm)].map((m) => [Number(m[1]), m[2]!]);
}

describe('replay over HTTP', { timeout: 120_000 }, () => {
  const db = tempDb();
  const store = countingStore(sqliteStore(db.path));
  let s: TestServer;
  before(async () => {
    s = await startServer({ dbPath: db.path, tasks: [Log], runtime: { store }, http: { maxBufferedBytes: 64 * 1024 } });
  });
  after(async () => {
    await s.close();
    db.cleanup();
  });

  const create = async (input: unknown): Promise<{ id: number; stream: string }> => {
    const { status, json } = await post(`${s.url}/tasks/test/Log`, input);
    assert.equal(status, 201, JSON.stringify(json));
    return { id: json.id, stream: `${s.url}${json.stream_url}` };
  };

  test('a client slower than the server gets the whole log, each stored row read once', async () => {
    const t = await create({ count: 600, size: 10_000 });
    await until(s.runtime, async () => (await s.runtime.get(t.id))?.status === 'completed', 60_000, 'the log to be written');
    const rowsBefore = store.reads.rows();
    const frames = await within(60_000, fetch(t.stream, { headers: { accept: 'text/event-stream' } }).then(readSlowly), 'the replay');
    assert.deepEqual(frames.map(([id]) => id), range(1, 601));
    assert.equal(frames.at(-1)![1], 'complete');
    assert.equal(store.reads.rows() - rowsBefore, 601, 'every row read from the store exactly once');
  });

  test('Last-Event-ID past the end of a running task: the stream waits, gets the terminal event, and ends', async () => {
    const t = await create({ count: 3, gated: true });
    const res = await fetch(t.stream, { headers: { accept: 'text/event-stream', 'last-event-id': '50' } });
    assert.equal(res.status, 200);
    const frames = readSlowly(res);
    await until(s.runtime, () => s.runtime.stats.subscribers > 0, 5000, 'the stream to attach');
    await post(`${s.url}/tasks/test/Log/${t.id}/signals/go`);
    assert.deepEqual(await within(10_000, frames, 'the stream to end'), [[4, 'complete']]);
  });
});

describe('replay through the Fetch handler', { timeout: 120_000 }, () => {
  test('a reader slower than the server gets the whole log, each stored row read once', async () => {
    const db = tempDb();
    const store = countingStore(sqliteStore(db.path));
    const runtime = await createTaskstream({ store, tasks: [Log], sweepIntervalMs: 60_000 });
    try {
      const handler = createFetchHandler(runtime, { maxBufferedBytes: 64 * 1024 });
      const task = await runtime.create(Log, { count: 600, size: 10_000 });
      await until(runtime, async () => (await runtime.get(task.id))?.status === 'completed', 60_000, 'the log to be written');
      const res = await handler(new Request(`http://localhost/stream/test/Log/${task.id}`, { headers: { accept: 'text/event-stream' } }));
      assert.equal(res.status, 200);
      const frames = await within(60_000, readSlowly(res), 'the replay');
      assert.deepEqual(frames.map(([id]) => id), range(1, 601));
      assert.equal(store.reads.rows(), 601, 'every row read from the store exactly once');
    } finally {
      await runtime.close({ timeoutMs: 1000 });
      db.cleanup();
    }
  });
});
