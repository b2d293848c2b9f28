/**
 * Bad input as an attacker sends it, and the limits that answer it: each answered with a defined
 * status, nothing stored, and nothing at error level in the log.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { defineTask } from '../../src/index.js';
import { getJson, post, startServer, type TestServer, until, within } from '../http/helpers.js';
import { recordingLogger } from './helpers.js';

const WAIT = 10_000;

/** A schema whose validation has a bug (it throws a TypeError): a server fault, not the client's. */
const buggySchema: StandardSchemaV1<unknown, unknown> = {
  '~standard': { version: 1, vendor: 'test', validate: () => { throw new TypeError('bug in the schema'); } },
};
const Buggy = defineTask({ app: 'test', type: 'Buggy', input: buggySchema, run: () => 'never' });

function nested(depth: number): string {
  return `{"message":"x","deep":${'['.repeat(depth)}${']'.repeat(depth)}}`;
}

describe('bad input', { timeout: 60_000 }, () => {
  let s: TestServer;
  const logger = recordingLogger();
  before(async () => {
    s = await startServer({ tasks: [Buggy], runtime: { logger }, http: { limits: { bodyTimeoutMs: 300 } } });
  });
  after(() => s.close());

  test('JSON nested 65 or 4,109 levels deep: 400 too_deep, nothing stored, and the task list still answers', async () => {
    const before = (await s.runtime.list({ limit: 1000 })).tasks.length;
    for (const depth of [65, 4109, 100_000]) {
      const res = await fetch(`${s.url}/tasks/examples/ExampleTask`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: nested(depth) });
      assert.equal(res.status, 400, `depth ${depth}`);
      assert.equal(((await res.json()) as { error: string }).error, 'too_deep');
    }
    assert.equal((await s.runtime.list({ limit: 1000 })).tasks.length, before);
    // 64 levels (the object itself is one) are fine for the parser; the schema then has its say.
    const ok = await fetch(`${s.url}/tasks/examples/SyncGeneratorTask`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"items":${'['.repeat(62)}${']'.repeat(62)}}` });
    assert.equal(ok.status, 201);
    assert.equal((await getJson(`${s.url}/tasks`)).status, 200);
  });

  test('a cancel whose body is a JSON array (or a number, or null) is a 400 and cancels nothing', async () => {
    const { json: task } = await post(`${s.url}/tasks/examples/ContinueTask`, { timeout_ms: 30_000 });
    for (const body of ['[1]', '[]', '5', 'null', '"x"']) {
      const res = await fetch(`${s.url}/tasks/examples/ContinueTask/${task.id}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      assert.equal(res.status, 400, body);
    }
    assert.notEqual((await s.runtime.get(task.id))?.status, 'cancelled');
    assert.equal((await post(`${s.url}/tasks/examples/ContinueTask/${task.id}/cancel`)).status, 202);
  });

  test('a POST without Content-Type: application/json is 415, empty or not (no task created, none cancelled)', async () => {
    const before = (await s.runtime.list({ limit: 1000 })).tasks.length;
    const empty = await fetch(`${s.url}/tasks/examples/ExampleTask`, { method: 'POST' });
    assert.equal(empty.status, 415);
    const form = await fetch(`${s.url}/tasks/examples/ExampleTask`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
    assert.equal(form.status, 415);
    assert.equal((await s.runtime.list({ limit: 1000 })).tasks.length, before);
    const { json: task } = await post(`${s.url}/tasks/examples/ContinueTask`, { timeout_ms: 30_000 });
    assert.equal((await fetch(`${s.url}/tasks/examples/ContinueTask/${task.id}/cancel`, { method: 'POST' })).status, 415);
    assert.equal((await s.runtime.get(task.id))?.status === 'cancelled', false);
    await post(`${s.url}/tasks/examples/ContinueTask/${task.id}/cancel`);
  });

  test('a client dropping mid-body, or sending it too slowly, gets its socket closed: no 500 written, nothing at error level', async () => {
    const { port } = new URL(s.url);
    logger.lines.length = 0;
    for (const mode of ['drop', 'stall'] as const) {
      const socket = net.connect(Number(port), '127.0.0.1');
      let answer = '';
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.write('POST /tasks/examples/ExampleTask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"mess');
      if (mode === 'drop') {
        await new Promise((resolve) => socket.write('sage', resolve));
        socket.destroy();
      }
      await within(WAIT, closed, `the socket to close (${mode})`);
      await logger.waitFor((l) => l.msg === 'taskstream http: client went away mid-request' && l.level === 'debug', `the debug line (${mode})`);
      assert.equal(answer, '', `nothing written back (${mode})`);
      logger.lines.length = 0;
    }
    assert.deepEqual(logger.lines.filter((l) => l.level === 'error'), []);
  });

  test('a TypeError inside the server is a 500 (a server fault), not a 400', async () => {
    const res = await post(`${s.url}/tasks/test/Buggy`, {});
    assert.equal(res.status, 500);
    assert.equal(res.json.error, 'internal');
    const line = await logger.waitFor((l) => l.level === 'error', 'the error line');
    assert.match(String((line.obj.err as Error).message), /bug in the schema/);
  });

  test('an Idempotency-Key over 255 characters is a 400, not a 500', async () => {
    const res = await post(`${s.url}/tasks/examples/ExampleTask`, {}, { 'idempotency-key': 'k'.repeat(256) });
    assert.equal(res.status, 400);
  });

  test('HEAD on a running task\'s stream answers its headers at once', async () => {
    const { json: task } = await post(`${s.url}/tasks/examples/ContinueTask`, { timeout_ms: 30_000 });
    await until(s.runtime, async () => (await s.runtime.get(task.id))?.status === 'running', WAIT, 'running');
    const res = await within(WAIT, fetch(`${s.url}/stream/examples/ContinueTask/${task.id}`, { method: 'HEAD', headers: { accept: 'text/event-stream' } }), 'HEAD headers');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    assert.equal(await res.text(), '');
    await post(`${s.url}/tasks/examples/ContinueTask/${task.id}/cancel`);
  });
});
