import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { post, startServer, type TestServer, watch, within } from './helpers.js';

/** A local upstream for HttpFetchTask: `/json` answers at once, `/slow` holds the request open and reports when it closes. */
async function upstream(): Promise<{ url: string; arrived: Promise<void>; closed: Promise<void>; close(): Promise<void> }> {
  let arrived!: () => void;
  let closed!: () => void;
  const arrivedP = new Promise<void>((r) => (arrived = r));
  const closedP = new Promise<void>((r) => (closed = r));
  const server = http.createServer((req, res) => {
    if (req.url === '/json') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ slideshow: { title: 'Sample' } }));
    } else if (req.url === '/fail') {
      res.writeHead(500);
      res.end('nope');
    } else {
      res.on('close', () => closed());
      arrived(); // never answers: only a cancel ends this request
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    arrived: arrivedP,
    closed: closedP,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

describe('the example task types of the protocol (docs/http-api.md)', { timeout: 30_000 }, () => {
  let s: TestServer;
  let up: Awaited<ReturnType<typeof upstream>>;
  before(async () => {
    s = await startServer();
    up = await upstream();
  });
  after(async () => {
    await up.close();
    await s.close();
  });

  const run = async (kind: string, input: unknown): Promise<Array<{ type: string; data: Record<string, unknown> }>> => {
    const { status, json } = await post(`${s.url}/tasks/${kind}`, input);
    assert.equal(status, 201, JSON.stringify(json));
    return within(10_000, watch(`${s.url}${json.stream_url}`).done, kind);
  };

  test('ExampleTask: start, a progress per step, complete with "Completed processing: <message>"', async () => {
    const events = await run('examples/ExampleTask', { message: 'hello', steps: 2, delay_ms: 1 });
    assert.deepEqual(events.map((e) => e.type), ['start', 'progress', 'progress', 'complete']);
    assert.deepEqual([events[0]!.data.message, events[0]!.data.total_steps], ['hello', 2]);
    assert.deepEqual([events[2]!.data.step, events[2]!.data.total_steps], [2, 2]);
    assert.equal(events[3]!.data.final_value, 'Completed processing: hello');
  });

  test('AsyncGeneratorTask and SyncGeneratorTask: a progress per item, returning the last item', async () => {
    const asyncEvents = await run('examples/AsyncGeneratorTask', { count: 3, delay_ms: 1 });
    assert.deepEqual(asyncEvents.map((e) => e.type), ['progress', 'progress', 'progress', 'complete']);
    assert.equal((asyncEvents[3]!.data.final_value as { step: number }).step, 3);
    const syncEvents = await run('examples/SyncGeneratorTask', { items: ['a', 'b'] });
    assert.deepEqual(syncEvents.map((e) => e.type), ['progress', 'progress', 'complete']);
    assert.deepEqual(syncEvents[2]!.data.final_value, { index: 1, item: 'b', processed: 'Processed: b' });
    const empty = await run('examples/SyncGeneratorTask', { items: [] });
    assert.deepEqual(empty.map((e) => [e.type, e.data.final_value]), [['complete', null]]);
  });

  test('HttpFetchTask: start, fetching, fetched with the status code; returns the parsed JSON', async () => {
    const events = await run('examples/HttpFetchTask', { url: `${up.url}/json` });
    assert.deepEqual(events.map((e) => e.type), ['start', 'progress', 'progress', 'complete']);
    assert.equal(events[1]!.data.status, 'fetching');
    assert.deepEqual([events[2]!.data.status, events[2]!.data.status_code], ['fetched', 200]);
    assert.deepEqual(events[3]!.data.final_value, { slideshow: { title: 'Sample' } });
    const failed = await run('examples/HttpFetchTask', { url: `${up.url}/fail` });
    assert.equal(failed.at(-1)!.type, 'error');
    assert.match(String(failed.at(-1)!.data.message), /HTTP error: 500/);
  });

  test('HttpFetchTask: a cancel stops the request in flight', async () => {
    const { json } = await post(`${s.url}/tasks/examples/HttpFetchTask`, { url: `${up.url}/slow` });
    const client = watch(`${s.url}${json.stream_url}`);
    await within(5000, up.arrived, 'the request to reach the slow upstream');
    const res = await post(`${s.url}/tasks/examples/HttpFetchTask/${json.id}/cancel`);
    assert.equal(res.status, 202);
    await within(5000, up.closed, 'the in-flight request to be closed by the cancel');
    const events = await within(5000, client.done, 'the stream to end');
    assert.deepEqual(events.map((e) => e.type), ['start', 'progress', 'cancelled']);
    assert.equal(events[2]!.data.reason, 'external_cancellation');
  });
});
