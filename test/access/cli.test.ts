/**
 * The CLI against a server with Access on (serve --api-key / TASKSTREAM_API_KEYS, create/list/tail
 * with --key / TASKSTREAM_KEY or a stream token), and the 503 a draining server answers while it
 * still listens.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { cli, runCli, startServer, tempDir, type Cli } from '../cli/helpers.js';

const KEY = 'cli-key-0123456789abcdef';
const SECRET = 'cli-secret-of-at-least-32-bytes-0123456';

void test('serve with TASKSTREAM_API_KEYS: the CLI needs --key (or TASKSTREAM_KEY); tail works with the task\'s stream token', async () => {
  using dir = tempDir();
  const procs: Cli[] = [];
  try {
    const server = cli(['serve', '--port', '0', '--db', join(dir.path, 'a.db'), '--token-secret', SECRET], { env: { TASKSTREAM_API_KEYS: `other-key-0123456789abcdef,${KEY}` } });
    procs.push(server);
    const [, url = ''] = await server.line(/listening on (http:\/\/\S+)/);

    const refused = await runCli(['list', '--url', url]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /401/);

    const created = await runCli(['create', 'examples/SyncGeneratorTask', '--input', '{"items":["x","y"]}', '--json', '--url', url, '--key', KEY]);
    assert.equal(created.code, 0, created.stderr);
    const task = JSON.parse(created.stdout) as { app: string; type: string; id: number; stream_token: string };
    assert.equal(typeof task.stream_token, 'string');

    const listed = await runCli(['list', '--url', url], { env: { TASKSTREAM_KEY: KEY } });
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /SyncGeneratorTask/);

    const tail = await runCli(['tail', `${task.app}/${task.type}/${task.id}`, '--url', url, '--token', task.stream_token]);
    assert.equal(tail.code, 0, tail.stderr);
    assert.match(tail.stdout, /complete/);
    const forbidden = await runCli(['cancel', `${task.app}/${task.type}/${task.id}`, '--url', url, '--token', task.stream_token]);
    assert.equal(forbidden.code, 1);
    assert.match(forbidden.stderr, /403/);
  } finally {
    procs.forEach((p) => p.kill());
  }
});

void test('serve refuses a non-loopback --host without an API key, and a short --token-secret', async () => {
  using dir = tempDir();
  const open = await runCli(['serve', '--host', '0.0.0.0', '--port', '0', '--db', join(dir.path, 'b.db')]);
  assert.equal(open.code, 2);
  assert.match(open.stderr, /--api-key/);
  const short = await runCli(['serve', '--port', '0', '--db', join(dir.path, 'b.db'), '--api-key', KEY, '--token-secret', 'short']);
  assert.equal(short.code, 2);
  assert.match(short.stderr, /32 bytes/);
});

void test('while draining, serve keeps listening: /ready is 503 draining, a create is 503 with Retry-After', async () => {
  using dir = tempDir();
  const server = await startServer(join(dir.path, 'c.db'), ['--tasks', 'test/cli/fixtures/tasks.ts']);
  try {
    const created = await fetch(`${server.url}/tasks/fixture/Stubborn`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(created.status, 201);
    // Running (it ignores its abort signal), so the drain waits for it up to --shutdown-timeout.
    const { id } = (await created.json()) as { id: number };
    for (let i = 0; i < 200; i++) {
      const t = (await (await fetch(`${server.url}/tasks/fixture/Stubborn/${id}`)).json()) as { status: string };
      if (t.status === 'running') break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    server.child.kill('SIGTERM');
    await server.line(/shutdown started/);
    const ready = await fetch(`${server.url}/ready`);
    assert.equal(ready.status, 503);
    assert.equal(((await ready.json()) as { status: string }).status, 'draining');
    const refused = await fetch(`${server.url}/tasks/fixture/Greet`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"x"}' });
    assert.equal(refused.status, 503);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    // A different signal is a second one however soon it comes (the same one within 300 ms is
    // taken as the echo npm forwards), so this forces the exit.
    server.child.kill('SIGINT');
    assert.equal((await server.exit()).code, 130);
  } finally {
    server.kill();
  }
});
