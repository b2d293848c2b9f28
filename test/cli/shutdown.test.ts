/**
 * Graceful shutdown of `serve`: SIGTERM while a task runs drains (the run goes back to pending),
 * exits 0, and the next server on the same database runs it again (attempt 2) while a `tail`
 * started before the restart resumes by Last-Event-ID without a gap. A second signal forces exit.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { cli, runCli, startServer, tempDir, type Cli } from './helpers.js';

/** A serve on `db` running a ContinueTask (it waits for `continue`), with a `tail` that has seen `1 started`. */
async function watchedContinueTask(db: string, procs: Cli[], extra: string[] = []): Promise<{ first: Cli & { url: string }; ref: string; tail: Cli }> {
  const first = await startServer(db, extra);
  procs.push(first);
  const created = await runCli(['create', 'examples/ContinueTask', '--input', '{"timeout_ms":60000}', '--url', first.url]);
  const [, ref] = created.stdout.match(/^created (\S+)/) ?? [];
  assert.ok(ref, created.stdout + created.stderr);
  const tail = cli(['tail', ref, '--url', first.url]);
  procs.push(tail);
  await tail.line(/^1 started /);
  return { first, ref, tail };
}

/** A second serve on the same database and port; resolves once it listens and the task's second run has started. */
async function restartOnSamePort(url: string, db: string, procs: Cli[], tail: Cli, extra: string[] = []): Promise<Cli> {
  const second = cli(['serve', '--port', new URL(url).port, '--db', db, ...extra]);
  procs.push(second);
  await second.line(/listening on http:\/\/127\.0\.0\.1:\d+$/);
  await tail.line(/^3 started /, 30_000);
  return second;
}

/** The tail's seqs, one per printed event line. */
function tailSeqs(tail: Cli): number[] {
  return tail.stdout().trimEnd().split('\n').map((line) => Number(line.split(' ')[0]));
}

void test('SIGTERM drains a running task back to pending; the next serve runs it again and tail follows across the restart', async () => {
  using dir = tempDir();
  const db = join(dir.path, 'drain.db');
  const procs: Cli[] = [];
  try {
    const { first, ref, tail } = await watchedContinueTask(db, procs);

    first.child.kill('SIGTERM');
    assert.deepEqual(await first.exit(), { code: 0, signal: null });
    const lifecycle = first.stdout().trimEnd().split('\n').slice(-3);
    assert.match(lifecycle[0] ?? '', /^taskstream: shutdown started \(SIGTERM\); 1 running/);
    assert.match(lifecycle[1] ?? '', /^taskstream: drained \(1 runs put back to pending/);
    assert.equal(lifecycle[2], 'taskstream: closed (exit 0)');

    // Same database, same address: the interrupted task runs again.
    const second = await restartOnSamePort(first.url, db, procs, tail);
    assert.match(tail.stdout(), /^2 interrupted \{"reason":"shutdown"\}$/m);
    const task = (await (await fetch(`${first.url}/tasks/${ref}`)).json()) as { status: string; attempt: number };
    assert.equal(task.status, 'running');
    assert.equal(task.attempt, 2);

    const signal = await runCli(['signal', ref, 'continue', '--payload', '{"go":true}', '--url', first.url]);
    assert.equal(signal.code, 0, signal.stderr);
    assert.deepEqual(await tail.exit(), { code: 0, signal: null });
    const seqs = tailSeqs(tail);
    assert.deepEqual(seqs, [1, 2, 3, 4, 5], 'no gap, no duplicate across the restart');
    assert.match(tail.stdout(), /^4 final \{"message":"Continue signal received","payload":\{"go":true\}\}$/m);
    assert.match(tail.stdout(), /^5 complete /m);

    second.child.kill('SIGINT');
    assert.equal((await second.exit()).code, 0);
  } finally {
    for (const proc of procs) proc.kill();
  }
});

void test('a run that ignores its abort is abandoned after --shutdown-timeout; the server still exits 0', async () => {
  using dir = tempDir();
  const server = await startServer(join(dir.path, 'abandon.db'), ['--tasks', 'test/cli/fixtures/tasks.ts', '--shutdown-timeout', '200']);
  try {
    const created = await runCli(['create', 'fixture/Stubborn', '--url', server.url]);
    const [, ref] = created.stdout.match(/^created (\S+)/) ?? [];
    assert.ok(ref, created.stdout + created.stderr);
    const tail = cli(['tail', ref, '--url', server.url]);
    try {
      await tail.line(/^1 started /);
    } finally {
      tail.kill();
    }
    server.child.kill('SIGTERM');
    assert.equal((await server.exit()).code, 0);
    assert.match(server.stdout(), /^taskstream: drained \(1 runs put back to pending/m);
    assert.match(server.stderr(), /shutdown timeout after 200 ms/);
  } finally {
    server.kill();
  }
});

void test('a second signal during the drain forces exit 130', async () => {
  using dir = tempDir();
  const server = await startServer(join(dir.path, 'force.db'), ['--tasks', 'test/cli/fixtures/tasks.ts', '--shutdown-timeout', '60000']);
  try {
    const created = await runCli(['create', 'fixture/Stubborn', '--url', server.url]);
    const [, ref] = created.stdout.match(/^created (\S+)/) ?? [];
    assert.ok(ref, created.stdout + created.stderr);
    const tail = cli(['tail', ref, '--url', server.url]);
    try {
      await tail.line(/^1 started /);
    } finally {
      tail.kill();
    }
    server.child.kill('SIGINT');
    await server.line(/^taskstream: shutdown started \(SIGINT\)/);
    server.child.kill('SIGTERM');
    assert.deepEqual(await server.exit(), { code: 130, signal: null });
    assert.match(server.stderr(), /^taskstream: second SIGTERM; exiting now/m);
    assert.doesNotMatch(server.stdout(), /closed/);
  } finally {
    server.kill();
  }
});

void test('a server killed mid-task (SIGKILL): the next serve takes the run over once its lease expires and runs it again', async () => {
  using dir = tempDir();
  const db = join(dir.path, 'crash.db');
  const procs: Cli[] = [];
  try {
    const { first, ref, tail } = await watchedContinueTask(db, procs, ['--lease-ms', '300']);

    first.child.kill('SIGKILL'); // no drain: the task is left `running` under a lease nobody renews
    assert.equal((await first.exit()).signal, 'SIGKILL');

    const second = await restartOnSamePort(first.url, db, procs, tail, ['--lease-ms', '300']);
    assert.match(tail.stdout(), /^2 interrupted \{"reason":"lease_expired"\}$/m);
    const task = (await (await fetch(`${first.url}/tasks/${ref}`)).json()) as { status: string; attempt: number };
    assert.deepEqual([task.status, task.attempt], ['running', 2]);

    assert.equal((await runCli(['signal', ref, 'continue', '--url', first.url])).code, 0);
    assert.deepEqual(await tail.exit(), { code: 0, signal: null });
    const seqs = tailSeqs(tail);
    assert.deepEqual(seqs, [1, 2, 3, 4, 5], 'no gap, no duplicate across the crash');
    second.child.kill('SIGTERM');
    assert.equal((await second.exit()).code, 0);
  } finally {
    for (const proc of procs) proc.kill();
  }
});
