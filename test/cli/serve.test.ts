/**
 * `serve` end to end, all through real subprocesses: it prints a parseable address, answers
 * /health, streams to curl and to `create --follow`, `tail` exits non-zero on a cancel, it loads
 * a user's TypeScript task module, and it binds a Unix socket.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { cli, runCli, startServer, tempDir, type Cli } from './helpers.js';

const exec = promisify(execFile);

void describe('serve with the example tasks', () => {
  const dir = tempDir();
  let server: Cli & { url: string };

  before(async () => {
    server = await startServer(join(dir.path, 'serve.db'));
  });
  after(async () => {
    server.child.kill('SIGTERM');
    await server.exit().finally(() => server.kill());
    dir[Symbol.dispose]();
  });

  void test('prints one line per lifecycle step and a machine-readable address; /health answers', async () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(server.stdout(), /^taskstream: store .*serve\.db opened and migrated$/m);
    const health = await fetch(`${server.url}/health`);
    assert.equal(health.status, 200);
    assert.equal(await health.text(), 'OK');
    const ready = await fetch(`${server.url}/ready`);
    assert.equal(ready.status, 200);
  });

  void test('create --follow prints each event and exits 0 on complete', async () => {
    const result = await runCli(['create', 'examples/ExampleTask', '--input', '{"message":"x","steps":2,"delay_ms":10}', '--follow', '--url', server.url]);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^created examples\/ExampleTask\/(\d+) status=pending stream_url=http:\/\/127\.0\.0\.1:\d+\/stream\/examples\/ExampleTask\/\d+$/);
    assert.deepEqual(lines.slice(1).map((l) => l.split(' ').slice(0, 2).join(' ')), ['1 start', '2 progress', '3 progress', '4 complete']);
    assert.equal(lines[2], '2 progress {"step":1,"total_steps":2,"message":"Step 1 of 2","data":"Processing step 1..."}');
    assert.equal(lines[4], '4 complete {"final_value":"Completed processing: x"}');
    // The server printed nothing per event.
    assert.doesNotMatch(server.stdout(), /progress|complete/);
  });

  void test('TASKSTREAM_URL is the default server; list prints a table; tail --last-event-id resumes', async () => {
    const env = { TASKSTREAM_URL: server.url };
    const created = await runCli(['create', 'examples/SyncGeneratorTask', '--input', '{"items":["a","b","c"]}', '--json'], { env });
    assert.equal(created.code, 0, created.stderr);
    const task = JSON.parse(created.stdout) as { id: number; status: string };
    const tail = await runCli(['tail', `examples/SyncGeneratorTask/${task.id}`, '--last-event-id', '2'], { env });
    assert.equal(tail.code, 0, tail.stderr);
    assert.deepEqual(tail.stdout.trimEnd().split('\n').map((l) => l.split(' ')[0]), ['3', '4']);
    const list = await runCli(['list', '--type', 'SyncGeneratorTask', '--status', 'completed'], { env });
    assert.equal(list.code, 0, list.stderr);
    const [header, row, ...rest] = list.stdout.trimEnd().split('\n');
    assert.match(header ?? '', /^ID\s+TASK\s+STATUS\s+ATTEMPT/);
    assert.match(row ?? '', new RegExp(`^${task.id}\\s+examples/SyncGeneratorTask\\s+completed\\s+1\\s+4\\s`));
    assert.deepEqual(rest, []);
  });

  void test('curl -N receives the SSE frames of a task', async () => {
    const created = await runCli(['create', 'examples/AsyncGeneratorTask', '--input', '{"count":2,"delay_ms":5}', '--url', server.url]);
    const [, id] = created.stdout.match(/AsyncGeneratorTask\/(\d+)/) ?? [];
    const { stdout } = await exec('curl', ['-N', '-s', '--max-time', '15', '-H', 'Accept: text/event-stream', `${server.url}/stream/examples/AsyncGeneratorTask/${id}`]);
    assert.match(stdout, /^retry: \d+/);
    assert.deepEqual([...stdout.matchAll(/^event: (\S+)$/gm)].map((m) => m[1]), ['progress', 'progress', 'complete']);
  });

  void test('tail of a task that gets cancelled exits 1; cancel and signal report what happened', async () => {
    const created = await runCli(['create', 'examples/ContinueTask', '--input', '{"timeout_ms":60000}', '--url', server.url]);
    const [, ref] = created.stdout.match(/created (\S+)/) ?? [];
    assert.ok(ref, created.stdout + created.stderr);
    const tail = cli(['tail', ref, '--url', server.url]);
    try {
      await tail.line(/^1 started /);
      const cancel = await runCli(['cancel', ref, '--reason', 'changed my mind', '--url', server.url]);
      assert.equal(cancel.code, 0, cancel.stderr);
      assert.match(cancel.stdout, /cancel requested for .* \(it was running\)/);
      const { code } = await tail.exit();
      assert.equal(code, 1);
      assert.match(tail.stdout(), /^2 cancelled \{.*"reason":"changed my mind"/m);
      const again = await runCli(['cancel', ref, '--url', server.url]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /not cancelled: it already ended \(cancelled\)/);
      const signal = await runCli(['signal', ref, 'continue', '--url', server.url]);
      assert.equal(signal.code, 1);
      assert.match(signal.stderr, /not delivered/);
    } finally {
      tail.kill();
    }
  });

  void test('Ctrl-C stops tail with exit 130; the task goes on', async () => {
    const created = await runCli(['create', 'examples/ContinueTask', '--input', '{"timeout_ms":60000}', '--url', server.url]);
    const [, ref] = created.stdout.match(/created (\S+)/) ?? [];
    assert.ok(ref, created.stdout + created.stderr);
    const tail = cli(['tail', ref, '--url', server.url]);
    try {
      await tail.line(/^1 started /);
      tail.child.kill('SIGINT');
      assert.deepEqual(await tail.exit(), { code: 130, signal: null });
      assert.match(tail.stderr(), /^taskstream: stopped watching .* \(the task goes on\)$/m);
      const task = (await (await fetch(`${server.url}/tasks/${ref}`)).json()) as { status: string };
      assert.equal(task.status, 'running');
    } finally {
      tail.kill();
      await runCli(['cancel', ref, '--url', server.url]);
    }
  });

  void test('server errors are one line with exit 1', async () => {
    const unknown = await runCli(['create', 'examples/NoSuchTask', '--url', server.url]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^taskstream: create examples\/NoSuchTask: 404 /);
    assert.equal(unknown.stderr.trimEnd().split('\n').length, 1);
    const invalid = await runCli(['create', 'examples/ExampleTask', '--input', '{"steps":"many"}', '--url', server.url]);
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /400/);
    const missing = await runCli(['tail', 'examples/ExampleTask/999999', '--url', server.url]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /404/);
  });
});

void test('a remote command with no server says how to fix it', async () => {
  // A port that was free a moment ago: nothing listens there.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  const result = await runCli(['list', '--url', `http://127.0.0.1:${port}`]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, new RegExp(`^taskstream: cannot reach the server at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
});

void test('--tasks loads a user TypeScript module next to (or instead of) the examples', async () => {
  using dir = tempDir();
  const server = await startServer(join(dir.path, 'tasks.db'), ['--tasks', 'test/cli/fixtures/tasks.ts', '--no-examples']);
  try {
    assert.match(server.stdout(), /2 task types: fixture\/Greet, fixture\/Stubborn$/m);
    const result = await runCli(['create', 'fixture/Greet', '--input', '{"name":"Ada"}', '--follow', '--url', server.url]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^1 progress \{"percentage":50,"message":"greeting Ada"\}$/m);
    assert.match(result.stdout, /^2 complete \{"final_value":"Hello, Ada!"\}$/m);
    const examples = await runCli(['create', 'examples/ExampleTask', '--url', server.url]);
    assert.equal(examples.code, 1, 'examples are off with --no-examples');
  } finally {
    server.child.kill('SIGTERM');
    await server.exit().finally(() => server.kill());
  }
});

void test('--socket binds a Unix socket, replacing a stale socket file, and removes it on shutdown', async () => {
  using dir = tempDir();
  const socket = join(dir.path, 'ts.sock');
  for (let round = 0; round < 2; round++) {
    const server = cli(['serve', '--socket', socket, '--db', join(dir.path, 'sock.db')]);
    try {
      const [, path] = await server.line(/listening on unix:(\S+)$/);
      assert.equal(path, socket);
      const { stdout } = await exec('curl', ['-s', '--max-time', '10', '--unix-socket', socket, 'http://localhost/health']);
      assert.equal(stdout, 'OK');
      // Round 0 dies without cleaning up, leaving a stale socket file; round 1 must replace it.
      if (round === 0) {
        server.child.kill('SIGKILL');
        await server.exit();
        assert.ok(existsSync(socket), 'a killed server leaves its socket file');
      } else {
        server.child.kill('SIGTERM');
        assert.equal((await server.exit()).code, 0);
        assert.ok(!existsSync(socket), 'a clean shutdown removes the socket file');
      }
    } finally {
      server.kill();
    }
  }
});
