/**
 * Two `serve` processes on one SQLite file (a rolling restart): each has its own in-process bus,
 * so neither hears the other's events; the position check makes a stream opened on either one
 * deliver every event and end. With `--concurrency 0` one of them is a front end that runs nothing.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { within } from '../support/within.js';
import { startServer, tempDir } from './helpers.js';

async function frames(url: string): Promise<Array<[number, string]>> {
  const res = await fetch(url, { headers: { accept: 'text/event-stream' } });
  const text = await res.text();
  return [...text.matchAll(/^id: (\d+)\nevent: (\S+)$/gm)].map((m) => [Number(m[1]), m[2]!]);
}

/** Creates an examples/ExampleTask over HTTP on the server at `url`. */
async function createExample(url: string, input: object): Promise<{ stream_url: string }> {
  const res = await fetch(`${url}/tasks/examples/ExampleTask`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(input),
  });
  assert.equal(res.status, 201);
  return (await res.json()) as { stream_url: string };
}

describe('two serve processes on one SQLite file', { timeout: 120_000 }, () => {
  test('a stream opened on either process gets all 12 events and ends, whichever runs the task', async () => {
    using dir = tempDir();
    const db = join(dir.path, 'shared.db');
    const a = await startServer(db);
    const b = await startServer(db);
    try {
      const task = await createExample(a.url, { message: 'two', steps: 10, delay_ms: 30 });
      const [onA, onB] = await within(60_000, Promise.all([frames(a.url + task.stream_url), frames(b.url + task.stream_url)]), 'both streams to end');
      const expected = [[1, 'start'], ...Array.from({ length: 10 }, (_, i) => [i + 2, 'progress']), [12, 'complete']];
      assert.deepEqual(onA, expected, 'stream on the first process');
      assert.deepEqual(onB, expected, 'stream on the second process');
    } finally {
      a.kill();
      b.kill();
      await Promise.all([a.exit(), b.exit()]);
    }
  });

  test('serve --concurrency 0 runs nothing: a task created on it runs on the other process, and its stream there ends', async () => {
    using dir = tempDir();
    const db = join(dir.path, 'shared.db');
    const front = await startServer(db, ['--concurrency', '0']);
    await front.line(/--concurrency 0: this process runs no task; another process on the same store must run them/);
    const worker = await startServer(db);
    try {
      const task = await createExample(front.url, { message: 'front', steps: 3, delay_ms: 10 });
      const onFront = await within(60_000, frames(front.url + task.stream_url), 'the stream on the front to end');
      assert.deepEqual(onFront.at(-1), [5, 'complete']);
      const finished = async (url: string): Promise<string> => /^taskstream_tasks_finished_total\{[^}]*status="completed"[^}]*\} (\d+)$/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? '0';
      assert.equal(await finished(worker.url), '1', 'the worker ran it');
      assert.equal(await finished(front.url), '0', 'the front ran nothing');
    } finally {
      front.kill();
      worker.kill();
      await Promise.all([front.exit(), worker.exit()]);
    }
  });
});
