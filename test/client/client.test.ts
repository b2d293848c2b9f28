/** REST round trips of `taskstream/client` against a real server: create, get, list, cancel, signal, errors. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { exampleTasks } from '../../examples/tasks.js';
import { createClient, TaskstreamClientError, type TaskstreamClient } from '../../src/client/index.js';
import { collect, startServer, type TestServer } from './fixtures/server.js';

void describe('client REST', { timeout: 15_000 }, () => {
  let srv: TestServer;
  let client: TaskstreamClient<typeof exampleTasks>;
  before(async () => {
    srv = await startServer();
    client = createClient<typeof exampleTasks>({ baseUrl: `${srv.baseUrl}/` });
  });
  after(() => srv.close());

  void test('create returns the task JSON; get finds it by string, object and task JSON', async () => {
    const task = await client.create('examples/ExampleTask', { message: 'hi', steps: 1, delay_ms: 1 });
    assert.equal(task.app, 'examples');
    assert.equal(task.type, 'ExampleTask');
    assert.ok(Number.isInteger(task.id) && task.id > 0);
    assert.ok(['pending', 'running', 'completed'].includes(task.status));
    assert.deepEqual(task.input, { message: 'hi', steps: 1, delay_ms: 1 });
    assert.equal(task.stream_url, `/stream/examples/ExampleTask/${task.id}`);
    for (const ref of [`examples/ExampleTask/${task.id}`, { app: 'examples', type: 'ExampleTask', id: String(task.id) }, task]) {
      const got = await client.get(ref);
      assert.equal(got.id, task.id);
      assert.equal(got.created_at, task.created_at);
    }
    await collect(client.stream(task));
    const done = await client.get(task);
    assert.equal(done.status, 'completed');
    assert.equal(done.final_value, 'Completed processing: hi');
  });

  void test('idempotencyKey returns the first task', async () => {
    const first = await client.create('examples/ExampleTask', { steps: 0 }, { idempotencyKey: 'client-key-1' });
    const second = await client.create('examples/ExampleTask', { steps: 0 }, { idempotencyKey: 'client-key-1' });
    assert.equal(second.id, first.id);
  });

  void test('list filters and pages newest first', async () => {
    const made = [];
    for (let i = 0; i < 3; i++) made.push(await client.create('examples/SyncGeneratorTask', { items: [i] }));
    const page1 = await client.list({ app: 'examples', type: 'SyncGeneratorTask', limit: 2 });
    assert.deepEqual(page1.tasks.map((t) => t.id), [made[2]!.id, made[1]!.id]);
    assert.notEqual(page1.next, null);
    const page2 = await client.list({ app: 'examples', type: 'SyncGeneratorTask', limit: 2, before: page1.next! });
    assert.deepEqual(page2.tasks.map((t) => t.id), [made[0]!.id]);
    const all = await client.list();
    assert.ok(all.tasks.length >= 3);
  });

  void test('cancel answers {cancelled:true} while running and {cancelled:false} once ended (409 is not an error)', async () => {
    const task = await client.create('examples/ContinueTask', { timeout_ms: 60_000 });
    const first = await client.cancel(task, 'client test');
    assert.equal(first.cancelled, true);
    const events = await collect(client.stream(task));
    const last = events.at(-1)!;
    assert.equal(last.type, 'cancelled');
    assert.equal(last.data.reason, 'client test');
    const again = await client.cancel(`examples/ContinueTask/${task.id}`);
    assert.deepEqual(again, { cancelled: false, status: 'cancelled' });
  });

  void test('signal is delivered to a waiting task; after the end it answers {delivered:false}', async () => {
    const task = await client.create('examples/ContinueTask', { timeout_ms: 60_000 });
    const events = [];
    for await (const event of client.stream(task)) {
      events.push(event);
      if (event.type === 'started') assert.deepEqual(await client.signal(task, 'continue', { from: 'client' }), { delivered: true });
    }
    assert.deepEqual(events.map((e) => e.type), ['started', 'final', 'complete']);
    assert.deepEqual(events[1]!.data, { message: 'Continue signal received', payload: { from: 'client' } });
    assert.deepEqual(await client.signal(task, 'continue'), { delivered: false, status: 'completed' });
  });

  void test('errors are typed with the status and the server code', async () => {
    const unknownType = await client.create('examples/NoSuchTask' as 'examples/ExampleTask', {}).catch((e: unknown) => e);
    assert.ok(unknownType instanceof TaskstreamClientError);
    assert.equal(unknownType.status, 404);
    assert.equal(unknownType.code, 'unknown_type');
    assert.match(unknownType.message, /registered: .*examples\/ExampleTask/);

    const invalid = await client.create('examples/ExampleTask', { steps: -1 }).catch((e: unknown) => e);
    assert.ok(invalid instanceof TaskstreamClientError);
    assert.equal(invalid.status, 400);
    assert.equal(invalid.code, 'invalid_input');
    assert.ok(Array.isArray((invalid.body as { issues?: unknown }).issues));

    const missing = await client.get('examples/ExampleTask/999999').catch((e: unknown) => e);
    assert.ok(missing instanceof TaskstreamClientError);
    assert.deepEqual([missing.status, missing.code], [404, 'not_found']);

    // An existing id under another type is "not found", never another task.
    const real = await client.create('examples/ExampleTask', { steps: 0 });
    const wrongType = await client.get({ app: 'examples', type: 'ContinueTask', id: real.id }).catch((e: unknown) => e);
    assert.ok(wrongType instanceof TaskstreamClientError);
    assert.equal(wrongType.status, 404);

    const badFilter = await client.list({ limit: 5000 }).catch((e: unknown) => e);
    assert.ok(badFilter instanceof TaskstreamClientError);
    assert.deepEqual([badFilter.status, badFilter.code], [400, 'bad_filter']);
  });

  void test('bad refs and kinds throw TypeError before any request', async () => {
    assert.throws(() => client.stream('examples/ExampleTask'), TypeError);
    await assert.rejects(client.get('examples/ExampleTask/0'), TypeError);
    await assert.rejects(client.get({ app: 'examples', type: '', id: 1 }), TypeError);
    await assert.rejects(client.create('ExampleTask' as 'examples/ExampleTask', {}), TypeError);
  });

  void test('headers (static or per request) and a custom fetch are used', async () => {
    const seen: Array<string | null> = [];
    let n = 0;
    const custom = createClient({
      baseUrl: srv.baseUrl,
      headers: () => ({ 'x-request': String(++n) }),
      fetch: (input, init) => {
        seen.push(new Headers(init?.headers).get('x-request'));
        return fetch(input, init);
      },
    });
    await custom.list({ limit: 1 });
    await custom.list({ limit: 1 });
    assert.deepEqual(seen, ['1', '2']);
  });
});
