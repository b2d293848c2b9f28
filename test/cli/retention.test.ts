/**
 * `serve --retain-events N` over HTTP: the task JSON's first_seq, and the `gap` frame a stream
 * positioned before the retained window gets first (protocol.md, Retention).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { within } from '../support/within.js';
import { startServer, tempDir } from './helpers.js';

interface Frame { id: number; event: string; data: Record<string, unknown> }

async function frames(url: string, lastEventId?: number): Promise<Frame[]> {
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId);
  const text = await (await fetch(url, { headers })).text();
  return [...text.matchAll(/^id: (\d+)\nevent: (\S+)\ndata: (.*)$/gm)].map((m) => ({ id: Number(m[1]), event: m[2]!, data: JSON.parse(m[3]!) as Record<string, unknown> }));
}

describe('serve --retain-events', { timeout: 120_000 }, () => {
  test('a finished task keeps its N newest events; first_seq says so; a stream from before gets a gap frame first', async () => {
    using dir = tempDir();
    const server = await startServer(join(dir.path, 'r.db'), ['--retain-events', '5']);
    try {
      const created = await fetch(`${server.url}/tasks/examples/SyncGeneratorTask`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ items: Array.from({ length: 20 }, (_, i) => ({ n: i + 1 })) }),
      });
      assert.equal(created.status, 201);
      const task = (await created.json()) as { id: number; stream_url: string };
      const stream = server.url + task.stream_url;
      await within(30_000, frames(stream), 'the first stream to end');
      const json = (await (await fetch(`${server.url}/tasks/examples/SyncGeneratorTask/${task.id}`)).json()) as { first_seq: number; last_seq: number };
      assert.deepEqual([json.first_seq, json.last_seq], [17, 21]);

      const replay = await within(30_000, frames(stream), 'the replay');
      assert.deepEqual(replay.map((f) => [f.id, f.event]), [[16, 'gap'], [17, 'progress'], [18, 'progress'], [19, 'progress'], [20, 'progress'], [21, 'complete']]);
      const gap = replay[0]!.data;
      assert.deepEqual([gap.from_seq, gap.to_seq, gap._seq, gap._task_id, gap._app, gap._model], [1, 16, 16, task.id, 'examples', 'SyncGeneratorTask']);
      assert.deepEqual((await frames(stream, 3)).map((f) => [f.id, f.event]).slice(0, 2), [[16, 'gap'], [17, 'progress']]);
      assert.deepEqual((await frames(stream, 3))[0]!.data.from_seq, 4);
      assert.deepEqual((await frames(stream, 18)).map((f) => f.id), [19, 20, 21], 'inside the window: no gap');
    } finally {
      server.kill();
      await server.exit();
    }
  });
});
