/**
 * Two `serve` processes on one SQLite file (a rolling restart): each has its own in-process bus,
 * so neither hears the other's events; the position check makes a stream opened on either one
 * deliver every event and end.
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

describe('two serve processes on one SQLite file', { timeout: 120_000 }, () => {
  test('a stream opened on either process gets all 12 events and ends, whichever runs the task', async () => {
    using dir = tempDir();
    const db = join(dir.path, 'shared.db');
    const a = await startServer(db);
    const b = await startServer(db);
    try {
      const res = await fetch(`${a.url}/tasks/examples/ExampleTask`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ message: 'two', steps: 10, delay_ms: 30 }),
      });
      assert.equal(res.status, 201);
      const task = (await res.json()) as { stream_url: string };
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
});
