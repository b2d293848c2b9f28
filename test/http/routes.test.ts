import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { getJson, post, startServer, type TestServer, until } from './helpers.js';

describe('REST routes and every error of the protocol table', { timeout: 60_000 }, () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ http: { maxBodyBytes: 4096 }, runtime: { concurrency: 1 } });
  });
  after(() => s.close());

  const finishedTask = async (): Promise<number> => {
    const { json } = await post(`${s.url}/tasks/examples/SyncGeneratorTask`, { items: ['a'] });
    await until(s.runtime, async () => (await s.runtime.get(json.id))?.status === 'completed', 5000, 'completion');
    return json.id;
  };

  test('GET /health answers OK as text; other methods 405', async () => {
    const res = await fetch(`${s.url}/health`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(await res.text(), 'OK');
    const wrong = await fetch(`${s.url}/health`, { method: 'DELETE' });
    assert.equal(wrong.status, 405);
    assert.match(wrong.headers.get('allow') ?? '', /GET/);
  });

  test('GET /ready reports its checks', async () => {
    const { status, json } = await getJson(`${s.url}/ready`);
    assert.equal(status, 200);
    assert.deepEqual(json.checks, { store: 'ok', bus: 'ok' });
    assert.equal(json.status, 'ready');
    assert.equal(typeof json.running, 'number');
    assert.equal(typeof json.subscribers, 'number');
  });

  test('POST /tasks/{app}/{type}: 201 with Location; defaults from an empty body; Idempotency-Key returns the first task (200)', async () => {
    const created = await post(`${s.url}/tasks/examples/SyncGeneratorTask`);
    assert.equal(created.status, 201);
    assert.equal(created.headers.get('location'), `/tasks/examples/SyncGeneratorTask/${created.json.id}`);
    assert.deepEqual(created.json.input, { items: [] });
    for (const key of ['id', 'app', 'type', 'status', 'input', 'attempt', 'created_at', 'started_at', 'finished_at', 'completed_at', 'final_value', 'error', 'cancel_reason', 'last_seq', 'stream_url']) {
      assert.ok(key in created.json, `task JSON has ${key}`);
    }
    const first = await post(`${s.url}/tasks/examples/SyncGeneratorTask`, { items: [1] }, { 'idempotency-key': 'k-1' });
    const again = await post(`${s.url}/tasks/examples/SyncGeneratorTask`, { items: [2] }, { 'idempotency-key': 'k-1' });
    assert.equal(first.status, 201);
    assert.equal(again.status, 200);
    assert.equal(again.json.id, first.json.id);
    assert.deepEqual(again.json.input, { items: [1] });
  });

  test('POST create errors: 400 bad JSON, 400 schema with problems, 404 unknown type, 413 too large, 415 not JSON', async () => {
    const url = `${s.url}/tasks/examples/ExampleTask`;
    const badJson = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"message":' });
    assert.equal(badJson.status, 400);
    assert.equal(((await badJson.json()) as { error: string }).error, 'invalid_json');
    const schema = await post(url, { message: 5, steps: -1 });
    assert.equal(schema.status, 400);
    assert.equal(schema.json.error, 'invalid_input');
    assert.deepEqual(schema.json.issues.map((i: { path: string }) => i.path).sort(), ['message', 'steps']);
    const unknown = await post(`${s.url}/tasks/examples/NoSuchTask`, {});
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error, 'unknown_type');
    assert.match(unknown.json.message, /registered: .*examples\/ExampleTask/);
    const large = await post(url, { message: 'x'.repeat(5000) });
    assert.equal(large.status, 413);
    const text = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
    assert.equal(text.status, 415);
    const list = await s.runtime.list({ type: 'ExampleTask' });
    assert.equal(list.tasks.length, 0, 'nothing stored by a refused create');
  });

  test('GET /tasks/{app}/{type}/{id}: 200, trailing slash, 404 unknown or wrong app/type, 400 for odd ids', async () => {
    const id = await finishedTask();
    const ok = await getJson(`${s.url}/tasks/examples/SyncGeneratorTask/${id}`);
    assert.equal(ok.status, 200);
    assert.equal(ok.json.status, 'completed');
    assert.equal(ok.json.final_value.item, 'a');
    assert.equal(ok.json.error, null);
    assert.equal((await getJson(`${s.url}/tasks/examples/SyncGeneratorTask/${id}/`)).status, 200);
    const wrong = await getJson(`${s.url}/tasks/examples/ExampleTask/${id}`);
    assert.equal(wrong.status, 404, 'a wrong type for an id is 404, never another task');
    assert.equal((await getJson(`${s.url}/tasks/other/SyncGeneratorTask/${id}`)).status, 404);
    assert.equal((await getJson(`${s.url}/tasks/examples/SyncGeneratorTask/999999`)).status, 404);
    for (const odd of ['abc', '+1', '01', '1e3', '-1', '0', '1.5', '99999999999999999999', '%20']) {
      const res = await getJson(`${s.url}/tasks/examples/SyncGeneratorTask/${odd}`);
      assert.equal(res.status, 400, `id ${odd}`);
      assert.equal(res.json.error, 'invalid_id');
    }
  });

  test('GET /tasks lists newest first with filters and paging; bad filters are 400', async () => {
    for (let i = 0; i < 3; i++) await finishedTask();
    const page1 = await getJson(`${s.url}/tasks?type=SyncGeneratorTask&status=completed&limit=2`);
    assert.equal(page1.status, 200);
    assert.equal(page1.json.tasks.length, 2);
    assert.ok(page1.json.tasks[0].id > page1.json.tasks[1].id);
    assert.equal(page1.json.next, page1.json.tasks[1].id);
    const page2 = await getJson(`${s.url}/tasks?type=SyncGeneratorTask&status=completed&limit=2&before=${page1.json.next}`);
    assert.ok(page2.json.tasks.every((t: { id: number }) => t.id < page1.json.next));
    for (const bad of ['status=done', 'limit=0', 'limit=1001', 'limit=x', 'before=-3', 'colour=red', 'app=a%20b']) {
      const res = await getJson(`${s.url}/tasks?${bad}`);
      assert.equal(res.status, 400, bad);
      assert.equal(res.json.error, 'bad_filter');
    }
  });

  test('POST cancel: 202 for pending, 409 once finished, 404 unknown, 400 bad body', async () => {
    // concurrency 1: a long task holds the slot, so the second one stays pending
    const blocker = await post(`${s.url}/tasks/examples/ContinueTask`, { timeout_ms: 60_000 });
    const pending = await post(`${s.url}/tasks/examples/ExampleTask`, { message: 'p' });
    const url = (id: number, type = 'ExampleTask'): string => `${s.url}/tasks/examples/${type}/${id}/cancel`;
    const bad = await post(url(pending.json.id), { reason: 7 });
    assert.equal(bad.status, 400);
    const res = await post(url(pending.json.id), { reason: 'no longer needed' });
    assert.equal(res.status, 202);
    assert.deepEqual(res.json, { cancelled: true, status: 'cancelled' });
    const again = await post(url(pending.json.id));
    assert.equal(again.status, 409);
    assert.equal(again.json.cancelled, false);
    assert.equal(again.json.status, 'cancelled');
    assert.equal(again.json.message, `task examples/ExampleTask/${pending.json.id} is already cancelled`, 'the full ref, as in a 404');
    assert.equal((await post(url(999999))).status, 404);
    assert.equal((await post(url(blocker.json.id, 'ExampleTask'))).status, 404, 'wrong type');
    const running = await post(url(blocker.json.id, 'ContinueTask'));
    assert.equal(running.status, 202);
    const task = await getJson(`${s.url}/tasks/examples/ExampleTask/${pending.json.id}`);
    assert.equal(task.json.cancel_reason, 'no longer needed');
  });

  test('POST signals/{name}: 202 delivered, 409 when finished, 404 unknown, 400 bad name', async () => {
    const t = await post(`${s.url}/tasks/examples/ContinueTask`, { timeout_ms: 60_000 });
    const url = (name: string, id = t.json.id): string => `${s.url}/tasks/examples/ContinueTask/${id}/signals/${name}`;
    assert.equal((await post(url('bad%20name'), {})).status, 400);
    assert.equal((await post(url('continue', 999999), {})).status, 404);
    const ok = await post(url('continue'), { note: 1 });
    assert.equal(ok.status, 202);
    assert.deepEqual(ok.json, { delivered: true });
    await until(s.runtime, async () => (await s.runtime.get(t.json.id))?.status === 'completed', 5000, 'completion');
    const late = await post(url('continue'), {});
    assert.equal(late.status, 409);
    assert.equal(late.json.message, `task examples/ContinueTask/${t.json.id} is already completed`);
  });

  test('GET /stream errors: plain text 400/404 by default, JSON when asked', async () => {
    const bad = await fetch(`${s.url}/stream/examples/ExampleTask/abc`);
    assert.equal(bad.status, 400);
    assert.equal(await bad.text(), 'Invalid task ID');
    const missing = await fetch(`${s.url}/stream/examples/ExampleTask/999999`);
    assert.equal(missing.status, 404);
    assert.equal(await missing.text(), 'Task not found');
    const asJson = await getJson(`${s.url}/stream/examples/ExampleTask/999999`, { accept: 'application/json' });
    assert.deepEqual(asJson, { status: 404, json: { error: 'not_found', message: 'Task not found' }, headers: asJson.headers });
    const id = await finishedTask();
    assert.equal((await fetch(`${s.url}/stream/examples/ExampleTask/${id}`)).status, 404, 'wrong type for the id');
    assert.equal((await fetch(`${s.url}/stream/examples/SyncGeneratorTask/${id}/`, { headers: { accept: 'application/json' } })).status, 200);
  });

  test('unknown routes are 404 JSON; a wrong method is 405; bad percent-encoding is 400', async () => {
    const res = await getJson(`${s.url}/nothing/here`);
    assert.equal(res.status, 404);
    assert.equal(res.json.error, 'not_found');
    assert.equal((await getJson(`${s.url}/stream/examples/ExampleTask`)).status, 404);
    assert.equal((await fetch(`${s.url}/tasks/examples/ExampleTask`)).status, 405);
    assert.equal((await fetch(`${s.url}/tasks/examples/%E0%A4%A/1`)).status, 400);
  });
});

describe('draining', { timeout: 30_000 }, () => {
  test('/ready answers 503 while the runtime shuts down, and create is refused', async () => {
    const s = await startServer();
    try {
      await s.runtime.close({ timeoutMs: 100 });
      const ready = await getJson(`${s.url}/ready`);
      assert.equal(ready.status, 503);
      assert.equal(ready.json.status, 'draining');
      const create = await post(`${s.url}/tasks/examples/ExampleTask`, {});
      assert.equal(create.status, 503);
      assert.equal(create.json.error, 'draining');
    } finally {
      await s.close();
    }
  });
});
