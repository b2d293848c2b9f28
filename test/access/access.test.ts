import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SignJWT, UnsecuredJWT } from 'jose';
import { createClient } from '../../src/client/index.js';
import { createHandler, createStreamToken, createTaskstream, sqliteStore } from '../../src/index.js';
import { exampleTasks } from '../../examples/tasks.js';
import { getJson, post, startServer, tempDb, type TestServer, until, watch, within } from '../http/helpers.js';

const KEY = 'test-key-0123456789abcdef';
const OLD_KEY = 'old-key-0123456789abcdef';
const SECRET = 'a-secret-of-at-least-32-bytes-0123456789';
const WAIT = 10_000;

const bearer = (value: string): Record<string, string> => ({ authorization: `Bearer ${value}` });

describe('Access: API keys and stream tokens', { timeout: 60_000 }, () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ http: { access: { apiKeys: [KEY, OLD_KEY], tokenSecret: SECRET } } });
  });
  after(() => s.close());

  const createWithKey = async (kind = 'examples/ContinueTask', input: unknown = { timeout_ms: 30_000 }): Promise<any> => {
    const res = await post(`${s.url}/tasks/${kind}`, input, bearer(KEY));
    assert.equal(res.status, 201, JSON.stringify(res.json));
    return res.json;
  };

  test('without credentials every route but /health, /ready and the dashboard is 401 with WWW-Authenticate: Bearer', async () => {
    const task = await createWithKey();
    const refused = [
      await getJson(`${s.url}/tasks`),
      await getJson(`${s.url}/tasks/types`),
      await getJson(`${s.url}/tasks/examples/ContinueTask/${task.id}`),
      await getJson(`${s.url}/stream/examples/ContinueTask/${task.id}`, { accept: 'application/json' }),
      await getJson(`${s.url}/metrics`),
      await post(`${s.url}/tasks/examples/ExampleTask`, {}),
      await post(`${s.url}/tasks/examples/ContinueTask/${task.id}/cancel`),
      await getJson(`${s.url}/no/such/route`),
    ];
    for (const res of refused) {
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.equal(res.json.error, 'unauthorized');
    }
    assert.equal((await fetch(`${s.url}/health`)).status, 200);
    assert.equal((await fetch(`${s.url}/ready`)).status, 200);
    assert.equal((await fetch(`${s.url}/`)).status, 200);
    assert.equal((await s.runtime.get(task.id))?.status, 'running', 'the refused cancel did nothing');
  });

  test('a wrong key, a malformed header, an API key in ?token=: 401; either of two keys (rotation) opens every route', async () => {
    for (const headers of [bearer('wrong-key-0123456789abcdef'), { authorization: `Basic ${KEY}` }, { authorization: 'Bearer' }, { authorization: `Bearer ${KEY} extra` }]) {
      const res = await getJson(`${s.url}/tasks`, headers);
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
    const task = await createWithKey();
    assert.equal((await getJson(`${s.url}/tasks/examples/ContinueTask/${task.id}?token=${KEY}`)).status, 401);
    for (const key of [KEY, OLD_KEY]) {
      assert.equal((await getJson(`${s.url}/tasks`, bearer(key))).status, 200);
      assert.equal((await fetch(`${s.url}/metrics`, { headers: bearer(key) })).status, 200);
    }
  });

  test('create returns a read token for the task, in stream_token and in stream_url; it streams that task (EventSource) and reads its JSON', async () => {
    const task = await createWithKey('examples/SyncGeneratorTask', { items: ['a', 'b'] });
    assert.equal(typeof task.stream_token, 'string');
    assert.equal(task.stream_url, `/stream/examples/SyncGeneratorTask/${task.id}?token=${task.stream_token}`);
    const events = await within(WAIT, watch(`${s.url}${task.stream_url}`).done, 'the stream through ?token=');
    assert.deepEqual(events.map((e) => e.type), ['progress', 'progress', 'complete']);
    const got = await getJson(`${s.url}/tasks/examples/SyncGeneratorTask/${task.id}`, bearer(task.stream_token));
    assert.equal(got.status, 200);
    assert.equal(got.json.status, 'completed');
    assert.equal((await fetch(`${s.url}/tasks/examples/SyncGeneratorTask/${task.id}?token=${task.stream_token}`, { method: 'HEAD' })).status, 200);
  });

  test('a valid token on another task, on another route or without the scope: 403', async () => {
    const a = await createWithKey();
    const b = await createWithKey();
    const other = await getJson(`${s.url}/stream/examples/ContinueTask/${b.id}?token=${a.stream_token}`, { accept: 'application/json' });
    assert.equal(other.status, 403);
    assert.equal(other.json.error, 'forbidden');
    const sameIdOtherType = await getJson(`${s.url}/tasks/examples/ExampleTask/${a.id}`, bearer(a.stream_token));
    assert.equal(sameIdOtherType.status, 403);
    assert.equal((await getJson(`${s.url}/tasks`, bearer(a.stream_token))).status, 403);
    assert.equal((await getJson(`${s.url}/tasks?token=${a.stream_token}`)).status, 403);
    assert.equal((await post(`${s.url}/tasks/examples/ExampleTask`, {}, bearer(a.stream_token))).status, 403);
    assert.equal((await post(`${s.url}/tasks/examples/ContinueTask/${a.id}/cancel`, undefined, bearer(a.stream_token))).status, 403);
    assert.equal((await post(`${s.url}/tasks/examples/ContinueTask/${a.id}/signals/continue`, {}, bearer(a.stream_token))).status, 403);
    assert.equal((await s.runtime.get(a.id))?.status, 'running', 'the read token neither cancelled nor signalled');
  });

  test('a token minted with createStreamToken, or by any JWT library, with scope cancel/signal opens those routes for its task', async () => {
    const a = await createWithKey();
    const signalToken = await createStreamToken({ secret: SECRET, task: a, scope: ['signal'] });
    const signalled = await post(`${s.url}/tasks/examples/ContinueTask/${a.id}/signals/continue`, {}, bearer(signalToken));
    assert.equal(signalled.status, 202, JSON.stringify(signalled.json));
    await until(s.runtime, async () => (await s.runtime.get(a.id))?.status === 'completed', WAIT, 'the signalled task to complete');

    const b = await createWithKey();
    // What a backend in any language does: HS256 over aud, sub, scope, exp.
    const foreign = await new SignJWT({ scope: 'read cancel' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setAudience('taskstream').setSubject(`examples/ContinueTask/${b.id}`).setExpirationTime('5m')
      .sign(new TextEncoder().encode(SECRET));
    const cancelled = await post(`${s.url}/tasks/examples/ContinueTask/${b.id}/cancel?token=${foreign}`);
    assert.equal(cancelled.status, 202, JSON.stringify(cancelled.json));
  });

  test('expired, badly signed, alg none, wrong audience, no read scope, no exp: 401', async () => {
    const task = await createWithKey();
    const sub = `examples/ContinueTask/${task.id}`;
    const secret = new TextEncoder().encode(SECRET);
    const jwt = (claims: Record<string, unknown>): SignJWT => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' });
    const bad = [
      await jwt({ scope: 'read' }).setAudience('taskstream').setSubject(sub).setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(secret),
      await jwt({ scope: 'read' }).setAudience('taskstream').setSubject(sub).setExpirationTime('5m').sign(new TextEncoder().encode('another-secret-of-at-least-32-bytes-000')),
      new UnsecuredJWT({ scope: 'read' }).setAudience('taskstream').setSubject(sub).setExpirationTime('5m').encode(),
      await jwt({ scope: 'read' }).setAudience('someone-else').setSubject(sub).setExpirationTime('5m').sign(secret),
      await jwt({ scope: 'cancel' }).setAudience('taskstream').setSubject(sub).setExpirationTime('5m').sign(secret),
      await jwt({ scope: 'read' }).setAudience('taskstream').setSubject(sub).sign(secret),
      `${task.stream_token as string}x`,
      'not-a-token',
    ];
    for (const [i, token] of bad.entries()) {
      const viaQuery = await getJson(`${s.url}/stream/examples/ContinueTask/${task.id}?token=${token}`, { accept: 'application/json' });
      assert.equal(viaQuery.status, 401, `token ${i} in ?token=`);
      const viaHeader = await getJson(`${s.url}/tasks/examples/ContinueTask/${task.id}`, bearer(token));
      assert.equal(viaHeader.status, 401, `token ${i} in Authorization`);
      assert.match(viaHeader.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
    const expired = await getJson(`${s.url}/tasks/examples/ContinueTask/${task.id}`, bearer(bad[0]!));
    assert.match(expired.json.message, /expired/);
  });

  test('the client: with a key it does everything; without one it uses the stream_token of the task JSON it is given', async () => {
    const withKey = createClient({ baseUrl: s.url, headers: { authorization: `Bearer ${KEY}` } });
    const task = await withKey.create('examples/SyncGeneratorTask', { items: [1, 2, 3] });
    assert.equal(typeof task.stream_token, 'string');
    assert.equal((await withKey.list({ limit: 5 })).tasks.some((t) => t.id === task.id), true);

    const browser = createClient({ baseUrl: s.url });
    const types: string[] = [];
    for await (const event of browser.stream(task)) types.push(event.type);
    assert.deepEqual(types, ['progress', 'progress', 'progress', 'complete']);
    assert.deepEqual(await browser.result(task), { index: 2, item: 3, processed: 'Processed: 3' });
    await assert.rejects(browser.list(), (err: { status?: number }) => err.status === 401);
    // The token is remembered for that task, so a plain ref works too; another task has none.
    assert.equal((await browser.get(`examples/SyncGeneratorTask/${task.id}`)).status, 'completed');
    await assert.rejects(browser.get(`examples/SyncGeneratorTask/${task.id + 1000}`), (err: { status?: number }) => err.status === 401);
    await assert.rejects(browser.cancel(task), (err: { status?: number }) => err.status === 403);
  });
});

describe('Access options are checked', () => {
  test('short secrets and keys, a secret without keys, a bad TTL: clear errors at createHandler', async () => {
    const db = tempDb();
    const runtime = await createTaskstream({ store: sqliteStore(db.path), tasks: exampleTasks });
    try {
      assert.throws(() => createHandler(runtime, { access: { apiKeys: [KEY], tokenSecret: 'short' } }), /at least 32 bytes/);
      assert.throws(() => createHandler(runtime, { access: { apiKeys: ['short'] } }), /at least 16 characters/);
      assert.throws(() => createHandler(runtime, { access: { tokenSecret: SECRET } }), /needs access.apiKeys/);
      assert.throws(() => createHandler(runtime, { access: { apiKeys: [KEY], tokenTtlMs: 5 } }), /tokenTtlMs/);
      await assert.rejects(createStreamToken({ secret: 'short', task: { app: 'a', type: 'b', id: 1 } }), /at least 32 bytes/);
      await assert.rejects(createStreamToken({ secret: SECRET, task: { app: 'a', type: 'b', id: 1 }, scope: ['admin' as 'read'] }), /unknown scope/);
    } finally {
      await runtime.close({ timeoutMs: 0 });
      db.cleanup();
    }
  });
});
