/** `client.result()` against a real server: the final value, and a typed rejection for every other ending. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { exampleTasks } from '../../examples/tasks.js';
import {
  createClient, TaskCancelledError, TaskFailedError, TaskstreamClientError, TaskTimedOutError, type TaskstreamClient,
} from '../../src/client/index.js';
import { startPlainServer, startServer, within, type TestServer } from './fixtures/server.js';

void describe('client.result', { timeout: 15_000 }, () => {
  let srv: TestServer;
  let client: TaskstreamClient<typeof exampleTasks>;
  before(async () => {
    srv = await startServer();
    client = createClient<typeof exampleTasks>({ baseUrl: srv.baseUrl });
  });
  after(() => srv.close());

  void test('resolves with the final value of a running task, and of a finished one (from its task JSON)', async () => {
    const task = await client.create('examples/ExampleTask', { message: 'done', steps: 3, delay_ms: 5 });
    assert.equal(await within(5000, client.result(task), 'result'), 'Completed processing: done');
    const streamsBefore = srv.streams.length;
    assert.equal(await client.result(`examples/ExampleTask/${task.id}`), 'Completed processing: done');
    assert.equal(srv.streams.length, streamsBefore, 'a finished task needs no stream');
    const sync = await client.create('examples/SyncGeneratorTask', { items: ['a', 'b'] });
    assert.deepEqual(await within(5000, client.result(sync), 'result'), { index: 1, item: 'b', processed: 'Processed: b' });
  });

  void test('rejects with TaskCancelledError when the task is cancelled', async () => {
    const task = await client.create('examples/ContinueTask', { timeout_ms: 60_000 });
    const outcome = client.result(task).catch((e: unknown) => e);
    // Cancel once result() is watching the stream, so the rejection comes from the `cancelled` event.
    await srv.nextStream((r) => r.path.endsWith(`/${task.id}`));
    assert.equal((await client.cancel(task, 'user pressed stop')).cancelled, true);
    const err = await within(5000, outcome, 'result');
    assert.ok(err instanceof TaskCancelledError, String(err));
    assert.ok(err instanceof TaskstreamClientError);
    assert.equal(err.code, 'task_cancelled');
    assert.equal(err.reason, 'user pressed stop');
    assert.deepEqual(err.task, { app: 'examples', type: 'ContinueTask', id: task.id });
    // Asked again after the end, the task JSON gives the same answer.
    const again = await client.result(task).catch((e: unknown) => e);
    assert.ok(again instanceof TaskCancelledError);
    assert.equal(again.reason, 'user pressed stop');
  });

  void test('rejects with TaskTimedOutError when the task times out', async () => {
    const task = await client.create('examples/ContinueTask', { timeout_ms: 50 });
    const err = await within(5000, client.result(task).catch((e: unknown) => e), 'result');
    assert.ok(err instanceof TaskTimedOutError, String(err));
    assert.equal(err.code, 'task_timed_out');
    if (err.timeoutMs !== undefined) assert.equal(err.timeoutMs, 50);
    const again = await client.result(task).catch((e: unknown) => e);
    assert.ok(again instanceof TaskTimedOutError);
  });

  void test('rejects with TaskFailedError when the task throws (HttpFetchTask against a 500)', async () => {
    await using upstream = await startPlainServer((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"error":"boom"}');
    });
    const task = await client.create('examples/HttpFetchTask', { url: `${upstream.url}/data`, timeout_ms: 5000 });
    const err = await within(5000, client.result(task).catch((e: unknown) => e), 'result');
    assert.ok(err instanceof TaskFailedError, String(err));
    assert.equal(err.code, 'task_failed');
    assert.equal(err.errorType, 'Error');
    assert.match(err.taskMessage, /HTTP error: 500/);
    const again = await client.result(task).catch((e: unknown) => e);
    assert.ok(again instanceof TaskFailedError);
    assert.equal(again.errorType, 'Error');
  });

  void test('resolves with the parsed JSON of an HttpFetchTask', async () => {
    await using upstream = await startPlainServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true,"n":[1,2]}');
    });
    const task = await client.create('examples/HttpFetchTask', { url: upstream.url });
    assert.deepEqual(await within(5000, client.result(task), 'result'), { ok: true, n: [1, 2] });
  });

  void test('a missing task rejects with a 404 TaskstreamClientError', async () => {
    const err = await client.result('examples/ExampleTask/999999').catch((e: unknown) => e);
    assert.ok(err instanceof TaskstreamClientError);
    assert.equal(err.status, 404);
  });
});
