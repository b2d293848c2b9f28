import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { defineTask, type EventRecord } from '../../src/index.js';
import { getJson, post, range, seqs, startServer, tempDb, type TestServer, until, watch, within } from './helpers.js';

/** Sends nothing until it gets the signal `go`, then `count` events. */
const Gate = defineTask({
  app: 'test',
  type: 'Gate',
  input: z.object({ count: z.number().int().default(3), size: z.number().int().default(10) }),
  async run(ctx, { count, size }) {
    await ctx.waitForSignal('go');
    for (let i = 1; i <= count; i++) await ctx.send('tick', { i, pad: 'x'.repeat(size) });
    return count;
  },
});

/** After the signal `go`, `count` events sent `chunk` at a time without waiting: each chunk is one stored batch. */
const Batches = defineTask({
  app: 'test',
  type: 'Batches',
  input: z.object({ count: z.number().int(), chunk: z.number().int(), size: z.number().int() }),
  async run(ctx, { count, chunk, size }) {
    await ctx.waitForSignal('go');
    for (let i = 1; i <= count;) {
      let last: Promise<void> | undefined;
      for (let j = 0; j < chunk && i <= count; j++, i++) last = ctx.send('tick', { i, pad: 'x'.repeat(size) });
      await last;
    }
    return count;
  },
});

describe('GET /stream', { timeout: 300_000 }, () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ tasks: [Gate, Batches], http: { heartbeatMs: 50, maxBufferedBytes: 64 * 1024, stalledClientMs: 300 } });
  });
  after(() => s.close());

  const create = async (kind: string, input: unknown): Promise<{ id: number; stream: string }> => {
    const { status, json } = await post(`${s.url}/tasks/${kind}`, input);
    assert.equal(status, 201, JSON.stringify(json));
    return { id: json.id, stream: `${s.url}${json.stream_url}` };
  };

  test('headers and retry: are sent at once, before any event', async () => {
    const t = await create('test/Gate', {});
    const ac = new AbortController();
    const res = await within(30_000, fetch(t.stream, { signal: ac.signal, headers: { accept: 'text/event-stream' } }), 'headers');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    assert.equal(res.headers.get('x-accel-buffering'), 'no');
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await within(30_000, reader.read(), 'first chunk')).value);
    assert.match(first, /^retry: \d+\n\n/);
    ac.abort();
    await post(`${s.url}/tasks/test/Gate/${t.id}/signals/go`);
  });

  test('idle streams get ": ping" comments', async () => {
    const t = await create('test/Gate', {});
    const ac = new AbortController();
    const res = await fetch(t.stream, { signal: ac.signal });
    const reader = res.body!.getReader();
    let text = '';
    await within(30_000, (async () => {
      while (!text.includes(': ping\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    })(), 'a ping');
    ac.abort();
    await post(`${s.url}/tasks/test/Gate/${t.id}/signals/go`);
  });

  test('several clients on one task get identical sequences; a late joiner gets the whole log', async () => {
    const t = await create('examples/ExampleTask', { message: 'many', steps: 6, delay_ms: 15 });
    const clients = [watch(t.stream), watch(t.stream), watch(t.stream)];
    let late: ReturnType<typeof watch> | undefined;
    const first = watch(t.stream, (e) => {
      if (e.seq === 3) late = watch(t.stream);
    });
    const results = await within(30_000, Promise.all([first.done, ...clients.map((c) => c.done)]), 'all clients');
    for (const events of results) {
      assert.deepEqual(seqs(events), range(1, 8));
      assert.deepEqual(events.map((e) => e.type), ['start', 'progress', 'progress', 'progress', 'progress', 'progress', 'progress', 'complete']);
      assert.deepEqual(events, results[0]);
    }
    assert.ok(late, 'late client started');
    assert.deepEqual(await within(30_000, late.done, 'late client'), results[0]);
    const last = results[0]!.at(-1)!;
    assert.deepEqual(last.data.final_value, 'Completed processing: many');
    assert.equal(last.data._task_id, t.id);
    assert.equal(last.data._app, 'examples');
    assert.equal(last.data._model, 'ExampleTask');
    assert.equal(last.data._seq, 8);
    assert.match(String(last.data._timestamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  test('a dropped connection resumes with Last-Event-ID: no gap, no duplicate', async () => {
    const t = await create('examples/ExampleTask', { message: 'drop', steps: 8, delay_ms: 20 });
    let dropped = false;
    const client = watch(t.stream, (e) => {
      if (e.seq === 3 && !dropped) {
        dropped = true;
        s.server.closeAllConnections(); // the server drops every open connection mid-stream
      }
    });
    const events = await within(30_000, client.done, 'resumed stream');
    assert.ok(dropped);
    assert.deepEqual(seqs(events), range(1, 10));
  });

  test('?last_event_id= and Last-Event-ID replay only later events; after the end: 204', async () => {
    const t = await create('examples/SyncGeneratorTask', { items: [1, 2, 3, 4] });
    await until(s.runtime, async () => (await s.runtime.get(t.id))?.status === 'completed', 5000, 'task completion');
    const viaQuery = await (await fetch(`${t.stream}?last_event_id=3`, { headers: { accept: 'text/event-stream' } })).text();
    assert.deepEqual([...viaQuery.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])), [4, 5]);
    const viaHeader = await (await fetch(t.stream, { headers: { accept: 'text/event-stream', 'last-event-id': '4' } })).text();
    assert.deepEqual([...viaHeader.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])), [5]);
    const end = await fetch(t.stream, { headers: { accept: 'text/event-stream', 'last-event-id': '5' } });
    assert.equal(end.status, 204);
    const bad = await fetch(t.stream, { headers: { accept: 'text/event-stream', 'last-event-id': 'abc' } });
    assert.equal(bad.status, 400);
  });

  test('a finished task replays its log and ends; without text/event-stream it answers the Django Streaming Coordinator JSON', async () => {
    const t = await create('examples/ExampleTask', { message: 'done', steps: 1, delay_ms: 1 });
    await until(s.runtime, async () => (await s.runtime.get(t.id))?.status === 'completed', 5000, 'task completion');
    const replay = await within(30_000, watch(t.stream).done, 'replay');
    assert.deepEqual(seqs(replay), [1, 2, 3]);
    const { status, json } = await getJson(t.stream, { accept: 'application/json' });
    assert.equal(status, 200);
    assert.equal(json.status, 'completed');
    assert.equal(json.final_value, 'Completed processing: done');
    assert.match(json.completed_at, /Z$/);
  });

  test('curl -N prints the stream and exits when the terminal event ends the response', async () => {
    const t = await create('examples/AsyncGeneratorTask', { count: 3, delay_ms: 10 });
    const curl = spawn('curl', ['-sN', '-H', 'Accept: text/event-stream', t.stream]);
    let out = '';
    curl.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const code = await within(30_000, new Promise((resolve) => curl.on('close', resolve)), 'curl to exit');
    assert.equal(code, 0);
    assert.deepEqual([...out.matchAll(/^event: (\S+)$/gm)].map((m) => m[1]), ['progress', 'progress', 'progress', 'complete']);
  });

  test('a client that disconnects is released at once; the task goes on', async () => {
    const t = await create('test/Gate', { count: 2 });
    const ac = new AbortController();
    const before = s.runtime.stats.subscribers;
    const res = await fetch(t.stream, { signal: ac.signal });
    await res.body!.getReader().read();
    await until(s.runtime, () => s.runtime.stats.subscribers === before + 1, 2000, 'subscriber attached');
    ac.abort();
    await until(s.runtime, () => s.runtime.stats.subscribers === before, 2000, 'subscriber release');
    await post(`${s.url}/tasks/test/Gate/${t.id}/signals/go`);
    await until(s.runtime, async () => (await s.runtime.get(t.id))?.status === 'completed', 5000, 'task completion');
  });

  /** A raw client that sends the stream request and never reads the response; `closed` once the server drops it. */
  function stalledClient(stream: string): { stalled: net.Socket; closed: Promise<void> } {
    const stalled = net.connect(Number(new URL(s.url).port), '127.0.0.1');
    stalled.write(`GET ${new URL(stream).pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
    stalled.pause();
    return { stalled, closed: new Promise<void>((resolve) => stalled.on('close', () => resolve())) };
  }

  test('a client that stops reading is paused, then dropped; a slow one catches up from the store', async () => {
    // 25 MB: far more than the kernel's socket buffers, so the stalled client must be paused.
    const t = await create('test/Gate', { count: 2500, size: 10_000 });
    const before = s.runtime.stats.subscribers;
    const { stalled, closed } = stalledClient(t.stream);
    await until(s.runtime, () => s.runtime.stats.subscribers === before + 1, 10_000, 'stalled client attached');
    const healthy = watch(t.stream);
    await post(`${s.url}/tasks/test/Gate/${t.id}/signals/go`);
    // Bounds are generous on purpose: they catch a hang, not a slow machine.
    const events = await within(60_000, healthy.done, 'healthy client');
    assert.deepEqual(seqs(events), range(1, 2501));
    // It never drains, so its stall timer drops it (the healthy client is detached by now).
    await until(s.runtime, () => s.runtime.stats.subscribers === before, 60_000, 'the server to drop the stalled client');
    stalled.resume(); // drain what the kernel buffered; the server has closed it
    await within(60_000, closed, 'the stalled client\'s socket to close');
    const rest = await within(60_000, watch(t.stream).done, 'resume from the store');
    assert.deepEqual(seqs(rest), range(1, 2501));
  });

  test('events stored together reach streams in one piece, whole and in order; a stalled stream is paused between batches, then dropped', async () => {
    // Batches of 10 × 5 KB (each fits in the 64 KiB backlog), 10 MB in all.
    const t = await create('test/Batches', { count: 2000, chunk: 10, size: 5000 });
    const before = s.runtime.stats.subscribers;
    const { stalled, closed } = stalledClient(t.stream);
    await until(s.runtime, () => s.runtime.stats.subscribers === before + 1, 10_000, 'stalled client attached');
    const healthy = [watch(t.stream), watch(t.stream)];
    await until(s.runtime, () => s.runtime.stats.subscribers === before + 3, 10_000, 'healthy clients attached');
    await post(`${s.url}/tasks/test/Batches/${t.id}/signals/go`);
    for (const h of healthy) assert.deepEqual(seqs(await within(60_000, h.done, 'healthy client')), range(1, 2001));
    await until(s.runtime, () => s.runtime.stats.subscribers === before, 60_000, 'the server to drop the stalled client');
    stalled.resume();
    await within(60_000, closed, 'the stalled client\'s socket to close');
    assert.deepEqual(seqs(await within(60_000, watch(t.stream).done, 'resume from the store')), range(1, 2001));
  });

  test('cancel over HTTP while three clients watch: all get cancelled, then the streams end', async () => {
    const t = await create('examples/ContinueTask', { timeout_ms: 60_000 });
    let started = 0;
    const onStarted = (e: { type: string }): void => {
      if (e.type === 'started') started += 1;
    };
    const clients = [watch(t.stream, onStarted), watch(t.stream, onStarted), watch(t.stream, onStarted)];
    await within(30_000, (async () => {
      while (started < 3) await new Promise((r) => setImmediate(r));
    })(), 'three clients to see started');
    const res = await post(`${s.url}/tasks/examples/ContinueTask/${t.id}/cancel`, { reason: 'user clicked cancel' });
    assert.equal(res.status, 202);
    assert.equal(res.json.cancelled, true);
    for (const c of clients) {
      const events = await within(30_000, c.done, 'cancelled');
      assert.deepEqual(events.map((e) => e.type), ['started', 'cancelled']);
      assert.equal(events[1]!.data.reason, 'user clicked cancel');
    }
    const again = await post(`${s.url}/tasks/examples/ContinueTask/${t.id}/cancel`);
    assert.equal(again.status, 409);
    assert.deepEqual({ cancelled: again.json.cancelled, status: again.json.status }, { cancelled: false, status: 'cancelled' });
  });

  test('timeout ends the stream with `timeout`', async () => {
    const t = await create('examples/ContinueTask', { timeout_ms: 100 });
    const events = await within(30_000, watch(t.stream).done, 'timeout');
    assert.deepEqual(events.map((e) => e.type), ['started', 'timeout']);
    assert.equal(events[1]!.data.timeout_ms, 100);
    assert.equal(events[1]!.data.message, 'Task timed out after 0.1 seconds');
    assert.equal((await s.runtime.get(t.id))?.status, 'timed_out');
  });

  test('the signal `continue` lets a ContinueTask finish', async () => {
    const t = await create('examples/ContinueTask', { timeout_ms: 60_000 });
    const client = watch(t.stream, (e) => {
      if (e.type === 'started') void post(`${s.url}/tasks/examples/ContinueTask/${t.id}/signals/continue`, { ok: 1 });
    });
    const events = await within(30_000, client.done, 'completion');
    assert.deepEqual(events.map((e) => e.type), ['started', 'final', 'complete']);
    assert.deepEqual(events[1]!.data.payload, { ok: 1 });
  });

  test('every watcher in the process shares one event object (serialised once)', async () => {
    const t = await create('test/Gate', { count: 3 });
    const seen: EventRecord[][] = [[], []];
    const ended: Array<Promise<void>> = seen.map((list) => new Promise<void>((resolve) => {
      s.runtime.watch(t.id, 0, { event: (e) => (list.push(e), true), end: () => resolve() });
    }));
    const client = watch(t.stream);
    await post(`${s.url}/tasks/test/Gate/${t.id}/signals/go`);
    await within(30_000, Promise.all([...ended, client.done]), 'streams');
    assert.equal(seen[0]!.length, 4);
    seen[0]!.forEach((e, i) => assert.equal(e, seen[1]![i], 'same object'));
  });
});

describe('server restart mid-task', { timeout: 30_000 }, () => {
  test('the task is interrupted, runs again, and a reconnecting client continues the log', async () => {
    const db = tempDb(); // shared by both servers, removed at the end
    const dbPath = db.path;
    const first = await startServer({ dbPath });
    const { json } = await post(`${first.url}/tasks/examples/ContinueTask`, { timeout_ms: 60_000 });
    const events: Array<{ seq: number; type: string }> = [];
    const read = async (url: string, lastEventId?: number): Promise<void> => {
      const res = await fetch(url, { headers: { accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': String(lastEventId) } : {}) } });
      const text = await res.text();
      for (const m of text.matchAll(/^id: (\d+)\nevent: (\S+)$/gm)) events.push({ seq: Number(m[1]), type: m[2]! });
    };
    const firstRead = read(`${first.url}${json.stream_url}`);
    await until(first.runtime, async () => (await first.runtime.get(json.id))?.lastSeq === 1 && first.runtime.stats.subscribers === 1, 3000, 'started and watched');
    await first.runtime.close({ timeoutMs: 1000 }); // graceful shutdown ends the stream after the last stored event
    await within(30_000, firstRead, 'the first stream to end');
    first.server.closeAllConnections();
    first.server.close();
    assert.deepEqual(events, [{ seq: 1, type: 'started' }, { seq: 2, type: 'interrupted' }]);

    const second = await startServer({ dbPath });
    try {
      await until(second.runtime, async () => (await second.runtime.get(json.id))?.attempt === 2, 3000, 'the second run');
      const secondRead = read(`${second.url}${json.stream_url}`, events.at(-1)!.seq);
      await until(second.runtime, async () => (await second.runtime.get(json.id))!.lastSeq >= 3, 3000, 'second started');
      await post(`${second.url}/tasks/examples/ContinueTask/${json.id}/signals/continue`);
      await within(30_000, secondRead, 'the resumed stream to end');
      assert.deepEqual(events.map((e) => e.type), ['started', 'interrupted', 'started', 'final', 'complete']);
      assert.deepEqual(seqs(events as never), [1, 2, 3, 4, 5]);
    } finally {
      await second.close();
      db.cleanup();
    }
  });
});
