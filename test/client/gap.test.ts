/**
 * A retention gap (protocol v2's `event: gap` frame, `id: first_seq - 1`, data `{from_seq, to_seq}`)
 * as the client, the React reducer and the CLI's tail see it: named for what it is, never an event.
 * The server here is a fake that sends exactly the frames a server with `--retain-events` sends.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { createClient, type StreamItem } from '../../src/client/index.js';
import { initialTaskStreamState, taskStreamReducer } from '../../src/react/index.js';

const envelope = (seq: number): string => `"_task_id":9,"_app":"examples","_model":"ExampleTask","_timestamp":"2026-11-24T10:00:00.000Z","_seq":${seq}`;
const FRAMES = [
  'retry: 50\n\n',
  `id: 3\nevent: gap\ndata: {"from_seq":1,"to_seq":3,${envelope(3)}}\n\n`,
  `id: 4\nevent: progress\ndata: {"step":4,"total_steps":5,${envelope(4)}}\n\n`,
  `id: 5\nevent: complete\ndata: {"final_value":"done",${envelope(5)}}\n\n`,
];

let server: http.Server;
let baseUrl = '';
const lastEventIds: Array<string | undefined> = [];

before(async () => {
  server = http.createServer((req, res) => {
    lastEventIds.push(req.headers['last-event-id'] as string | undefined);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.end(FRAMES.join(''));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function collect(): Promise<StreamItem[]> {
  const items: StreamItem[] = [];
  for await (const item of createClient({ baseUrl }).stream('examples/ExampleTask/9', { signal: AbortSignal.timeout(10_000) })) items.push(item);
  return items;
}

test('client.stream yields the gap as a typed StreamGap, then the retained events', async () => {
  const items = await collect();
  assert.deepEqual(items.map((i) => [i.kind, i.seq, i.type]), [['gap', 3, 'gap'], ['event', 4, 'progress'], ['event', 5, 'complete']]);
  const gap = items[0]!;
  assert.ok(gap.kind === 'gap');
  assert.deepEqual({ fromSeq: gap.fromSeq, toSeq: gap.toSeq, data: gap.data }, { fromSeq: 1, toSeq: 3, data: { from_seq: 1, to_seq: 3 } });
});

test('useTaskStream\'s reducer: the gap is state, not an event; the events and progress are the retained ones', async () => {
  let state = taskStreamReducer(initialTaskStreamState('examples/ExampleTask/9'), { type: 'start', key: 'examples/ExampleTask/9' });
  for (const event of await collect()) state = taskStreamReducer(state, { type: 'event', key: 'examples/ExampleTask/9', event });
  assert.deepEqual(state.gap, { fromSeq: 1, toSeq: 3 });
  assert.deepEqual(state.events.map((e) => e.seq), [4, 5]);
  assert.equal(state.status, 'completed');
  assert.equal(state.progress, 0.8);
});

test('a gap alone moves a connecting stream to running, and a repeated gap changes nothing', () => {
  const gap = { kind: 'gap', id: 3, seq: 3, type: 'gap', fromSeq: 1, toSeq: 3, data: { from_seq: 1, to_seq: 3 }, timestamp: '2026-11-24T10:00:00.000Z' } as const;
  const key = 'examples/ExampleTask/9';
  const once = taskStreamReducer(initialTaskStreamState(key), { type: 'event', key, event: gap });
  assert.equal(once.status, 'running');
  assert.deepEqual(once.events, []);
  assert.deepEqual(taskStreamReducer(once, { type: 'event', key, event: gap }), once);
});
