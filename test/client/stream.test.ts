/** `client.stream()` against a real server: order, replay, resume after dropped connections, abort, errors. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { exampleTasks } from '../../examples/tasks.js';
import { createClient, TaskstreamClientError, type StreamItem, type TaskstreamClient } from '../../src/client/index.js';
import { collect, startPlainServer, startServer, within, type TestServer } from './fixtures/server.js';

const EXAMPLE_TYPES = ['start', 'progress', 'progress', 'progress', 'complete'];

void describe('client.stream', { timeout: 15_000 }, () => {
  let srv: TestServer;
  let client: TaskstreamClient<typeof exampleTasks>;
  before(async () => {
    srv = await startServer();
    client = createClient<typeof exampleTasks>({ baseUrl: srv.baseUrl });
  });
  after(() => srv.close());

  void test('yields every event of an ExampleTask in order, then ends after complete', async () => {
    const task = await client.create('examples/ExampleTask', { message: 'm', steps: 3, delay_ms: 5 });
    const events = await collect(client.stream(task));
    assert.deepEqual(events.map((e) => e.type), EXAMPLE_TYPES);
    assert.deepEqual(events.map((e) => e.seq), [1, 2, 3, 4, 5]);
    assert.ok(events.every((e) => e.id === e.seq && !Number.isNaN(Date.parse(e.timestamp))));
    assert.deepEqual(events[0]!.data, { message: 'm', total_steps: 3 });
    assert.deepEqual(events[2]!.data, { step: 2, total_steps: 3, message: 'Step 2 of 3', data: 'Processing step 2...' });
    assert.deepEqual(events[4]!.data, { final_value: 'Completed processing: m' });
    for (const e of events) for (const key of ['_task_id', '_app', '_model', '_timestamp', '_seq']) assert.ok(!(key in e.data), key);
    // One connection: nothing was retried.
    assert.equal(srv.streams.filter((s) => s.path.endsWith(`/${task.id}`)).length, 1);
  });

  void test('a finished task replays its log; lastEventId resumes after it; at the end it stops at once (204)', async () => {
    const task = await client.create('examples/ExampleTask', { steps: 3, delay_ms: 0 });
    const all = await collect(client.stream(task));
    assert.deepEqual(all.map((e) => e.seq), [1, 2, 3, 4, 5]);
    const rest = await collect(client.stream(task, { lastEventId: 3 }));
    assert.deepEqual(rest.map((e) => e.seq), [4, 5]);
    const none = await collect(client.stream(task, { lastEventId: '5' }));
    assert.deepEqual(none, []);
    const requests = srv.streams.filter((s) => s.path.endsWith(`/${task.id}`));
    assert.deepEqual(requests.map((r) => r.lastEventId), [undefined, '3', '5']);
  });

  void test('resumes with Last-Event-ID after the server drops the connection, without gap or duplicate', async () => {
    const task = await client.create('examples/ContinueTask', { timeout_ms: 60_000 });
    const events: StreamItem[] = [];
    const mine = (r: { path: string }): boolean => r.path.endsWith(`/${task.id}`);
    let resumedThenSignalled: Promise<unknown> | undefined;
    for await (const event of client.stream(task)) {
      events.push(event);
      if (event.type === 'started') {
        // The task now waits for its signal, so nothing is in flight: the drop is mid-stream for sure.
        srv.server.closeAllConnections();
        // Signal once the client is back (it reconnects when this loop asks for the next event).
        resumedThenSignalled = srv.nextStream((r) => mine(r) && r.lastEventId === '1').then(() => client.signal(task, 'continue'));
      }
    }
    assert.deepEqual(await resumedThenSignalled, { delivered: true });
    assert.deepEqual(events.map((e) => [e.seq, e.type]), [[1, 'started'], [2, 'final'], [3, 'complete']]);
    assert.deepEqual(srv.streams.filter(mine).map((r) => r.lastEventId), [undefined, '1']);
  });

  void test('resumes across repeated drops of a running ExampleTask, each time after the last event it yielded', async () => {
    const task = await client.create('examples/ExampleTask', { steps: 4, delay_ms: 20 });
    const mine = (r: { path: string }): boolean => r.path.endsWith(`/${task.id}`);
    const events: StreamItem[] = [];
    for await (const event of client.stream(task)) {
      events.push(event);
      if (event.type !== 'complete') srv.server.closeAllConnections();
    }
    assert.deepEqual(events.map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(events.map((e) => e.type), ['start', 'progress', 'progress', 'progress', 'progress', 'complete']);
    const resumed = srv.streams.filter(mine).slice(1).map((r) => Number(r.lastEventId));
    assert.ok(resumed.length >= 2, `expected several reconnects, got ${resumed.length}`);
    const seqs = events.map((e) => e.seq);
    assert.ok(resumed.every((id, i) => seqs.includes(id) && (i === 0 || id >= resumed[i - 1]!)), `Last-Event-IDs ${resumed.join(',')}`);
  });

  void test('aborting the signal closes the connection at once and throws the reason', async () => {
    const task = await client.create('examples/ContinueTask', { timeout_ms: 60_000 });
    const controller = new AbortController();
    const reason = new Error('stop watching');
    const seen: string[] = [];
    const consumed = (async () => {
      for await (const event of client.stream(task, { signal: controller.signal })) {
        seen.push(event.type);
        if (event.type === 'started') controller.abort(reason);
      }
    })();
    await assert.rejects(within(2000, consumed, 'the aborted stream to stop'), (err) => err === reason);
    assert.deepEqual(seen, ['started']);
    const request = srv.streams.find((r) => r.path.endsWith(`/${task.id}`))!;
    await within(2000, request.closed, 'the server to see the connection close');
    // An already aborted signal makes no request at all.
    const before = srv.streams.length;
    await assert.rejects(collect(client.stream(task, { signal: AbortSignal.abort(reason) })), (err) => err === reason);
    assert.equal(srv.streams.length, before);
    await client.cancel(task);
  });

  void test('an abort stops at once even when more events of the same chunk are buffered', async () => {
    const task = await client.create('examples/ExampleTask', { steps: 3, delay_ms: 0 });
    await collect(client.stream(task));
    const controller = new AbortController();
    const seen: number[] = [];
    const consumed = (async () => {
      // A finished task's log arrives in one burst: events 2..5 are already parsed when 1 is yielded.
      for await (const event of client.stream(task, { signal: controller.signal })) {
        seen.push(event.seq);
        controller.abort(new Error('enough'));
      }
    })();
    await assert.rejects(within(2000, consumed, 'the aborted stream'), /enough/);
    assert.deepEqual(seen, [1]);
  });

  void test('breaking out of the loop closes the connection', async () => {
    const task = await client.create('examples/ContinueTask', { timeout_ms: 60_000 });
    for await (const event of client.stream(task)) if (event.type === 'started') break;
    const request = srv.streams.find((r) => r.path.endsWith(`/${task.id}`))!;
    await within(2000, request.closed, 'the connection to close after break');
    await client.cancel(task);
  });

  void test('404 and 400 throw typed errors without retrying', async () => {
    const before = srv.streams.length;
    const missing = await collect(client.stream('examples/ExampleTask/999999')).catch((e: unknown) => e);
    assert.ok(missing instanceof TaskstreamClientError);
    assert.deepEqual([missing.status, missing.code], [404, 'not_found']);
    const task = await client.create('examples/ExampleTask', { steps: 0 });
    const wrongKind = await collect(client.stream({ app: 'examples', type: 'ContinueTask', id: task.id })).catch((e: unknown) => e);
    assert.ok(wrongKind instanceof TaskstreamClientError);
    assert.equal(wrongKind.status, 404);
    assert.equal(srv.streams.length, before + 2);
  });
});

void describe('client.stream against a failing server', { timeout: 10_000 }, () => {
  void test('retries 503 with backoff honouring Retry-After, and an abort during the wait stops at once', async () => {
    let hits = 0;
    let firstHit!: () => void;
    const hit = new Promise<void>((resolve) => (firstHit = resolve));
    await using plain = await startPlainServer((_req, res) => {
      hits++;
      firstHit();
      res.writeHead(503, { 'retry-after': '30', 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'draining', message: 'shutting down' }));
    });
    const client = createClient({ baseUrl: plain.url });
    const controller = new AbortController();
    const consumed = collect(client.stream('examples/ExampleTask/1', { signal: controller.signal }), 5000);
    await within(2000, hit, 'the first request');
    const started = Date.now();
    controller.abort(new Error('give up'));
    await assert.rejects(consumed, /give up/);
    assert.ok(Date.now() - started < 15_000, 'the abort ends the 30 s Retry-After wait, not its end');
    assert.equal(hits, 1, 'Retry-After: 30 holds the next attempt back');
  });

  void test('gives up after maxAttempts with stream_failed', async () => {
    await using plain = await startPlainServer((_req, res) => {
      res.writeHead(502);
      res.end('bad gateway');
    });
    const client = createClient({ baseUrl: plain.url });
    const err = await collect(client.stream('a/B/1', { reconnect: { initialDelayMs: 1, maxAttempts: 2 } })).catch((e: unknown) => e);
    assert.ok(err instanceof TaskstreamClientError);
    assert.equal(err.code, 'stream_failed');
  });

  void test('401 is not retried', async () => {
    let hits = 0;
    await using plain = await startPlainServer((_req, res) => {
      hits++;
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'unauthorized', message: 'missing credentials' }));
    });
    const client = createClient({ baseUrl: plain.url });
    const err = await collect(client.stream('a/B/1')).catch((e: unknown) => e);
    assert.ok(err instanceof TaskstreamClientError);
    assert.deepEqual([err.status, err.code, hits], [401, 'unauthorized', 1]);
  });

  void test('a stream that ends with no events reconnects until the task is known finished', async () => {
    let streamHits = 0;
    await using plain = await startPlainServer((req, res) => {
      if (req.url?.startsWith('/stream/')) {
        streamHits++;
        if (streamHits === 1) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.end('retry: 5\n\nid: 1\nevent: start\ndata: {"a":1}\n\n');
        } else {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.end('retry: 5\n\n');
        }
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 1, app: 'a', type: 'B', status: 'completed', last_seq: 1 }));
    });
    const client = createClient({ baseUrl: plain.url });
    const events = await collect(client.stream('a/B/1'));
    assert.deepEqual(events.map((e) => [e.seq, e.type]), [[1, 'start']]);
    assert.equal(streamHits, 2);
  });
});
