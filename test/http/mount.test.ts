/**
 * taskstream mounted under a path prefix: the example apps for Express, Fastify and Hono (run through
 * their exported `start()`), plain `basePath` on the Node and Fetch handlers, and the Fetch handler
 * called directly. Every wait is bounded by `within`; every server is closed in `finally`/`after`.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createParser } from 'eventsource-parser';
import Fastify from 'fastify';
import { start as startExpress } from '../../examples/express.js';
import { start as startFastify } from '../../examples/fastify.js';
import { start as startHono } from '../../examples/hono.js';
import { exampleTasks } from '../../examples/tasks.js';
import { createFetchHandler, createHandler, createTaskstream, sqliteStore, type Taskstream } from '../../src/index.js';
import { getJson, post, startServer, tempDb, within } from './helpers.js';

const WAIT = 5000;
const INPUT = { message: 'm', steps: 2, delay_ms: 5 };

interface Frame {
  readonly seq: number;
  readonly type: string;
  readonly data: Record<string, unknown>;
}

function parseSse(text: string): Frame[] {
  const frames: Frame[] = [];
  const parser = createParser({
    onEvent: (e) => frames.push({ seq: Number(e.id), type: e.event ?? 'message', data: JSON.parse(e.data) as Record<string, unknown> }),
  });
  parser.feed(text);
  return frames;
}

/** Reads an SSE response until the server ends it (after the terminal event); fails after WAIT. */
async function readStream(url: string): Promise<{ res: Response; frames: Frame[] }> {
  const ac = new AbortController();
  try {
    const res = await within(WAIT, fetch(url, { headers: { accept: 'text/event-stream' }, signal: ac.signal }), `stream headers from ${url}`);
    const text = await within(WAIT, res.text(), `the end of the stream ${url}`);
    return { res, frames: parseSse(text) };
  } finally {
    ac.abort();
  }
}

/** fetch bounded by WAIT, never following redirects. */
async function get(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; text: string }> {
  return within(WAIT, (async () => {
    const res = await fetch(url, { redirect: 'manual', ...init });
    return { status: res.status, headers: res.headers, text: await res.text() };
  })(), `${init.method ?? 'GET'} ${url}`);
}

function assertExampleRun(frames: readonly Frame[], id: number): void {
  assert.deepEqual(frames.map((f) => f.seq), [1, 2, 3, 4]);
  assert.deepEqual(frames.map((f) => f.type), ['start', 'progress', 'progress', 'complete']);
  for (const f of frames) assert.equal(f.data._task_id, id);
  assert.equal(frames[3]!.data.final_value, 'Completed processing: m');
}

const apps = [
  ['Express', startExpress],
  ['Fastify', startFastify],
  ['Hono', startHono],
] as const;

for (const [name, start] of apps) {
  describe(`${name} example: taskstream under /taskstream`, { timeout: 30_000 }, () => {
    let app: { url: string; close(): Promise<void> };
    let ts: string;
    const db = tempDb();
    before(async () => {
      app = await within(WAIT, start({ port: 0, dbPath: db.path }), `${name} app to start`);
      ts = `${app.url}/taskstream`;
    });
    after(async () => {
      try {
        await within(WAIT, app?.close() ?? Promise.resolve(), `${name} app to close`);
      } finally {
        db.cleanup();
      }
    });

    test('create → stream to the end → get → cancel a finished task', async () => {
      const created = await within(WAIT, post(`${ts}/tasks/examples/ExampleTask`, INPUT), 'create');
      assert.equal(created.status, 201, JSON.stringify(created.json));
      const id = created.json.id as number;
      assert.equal(created.headers.get('location'), `/taskstream/tasks/examples/ExampleTask/${id}`);
      assert.equal(created.json.stream_url, `/taskstream/stream/examples/ExampleTask/${id}`);

      const { res, frames } = await readStream(`${app.url}${created.json.stream_url}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/event-stream');
      assertExampleRun(frames, id);

      const task = await within(WAIT, getJson(`${app.url}${created.headers.get('location')}`), 'task JSON');
      assert.equal(task.status, 200);
      assert.equal(task.json.id, id);
      assert.equal(task.json.status, 'completed');
      assert.equal(task.json.last_seq, 4);
      assert.equal(task.json.stream_url, created.json.stream_url);

      const cancel = await within(WAIT, post(`${ts}/tasks/examples/ExampleTask/${id}/cancel`), 'cancel');
      assert.equal(cancel.status, 409);
      assert.equal(cancel.json.cancelled, false);
      assert.equal(cancel.json.status, 'completed');
    });

    test('health under the prefix; the host app keeps its own routes', async () => {
      const health = await get(`${ts}/health`);
      assert.equal(health.status, 200);
      assert.equal(health.text, 'OK');
      const hello = await get(`${app.url}/hello`);
      assert.equal(hello.status, 200);
      assert.match(hello.text, new RegExp(`Hello from the ${name} app`));
      // The prefix matches whole segments only.
      assert.equal((await get(`${app.url}/taskstreamx/health`)).status, 404);
    });

    test('bodies reach the handler unparsed: 415 for non-JSON, 400 for bad JSON, 404 for an unknown type', async () => {
      const url = `${ts}/tasks/examples/ExampleTask`;
      const plain = await get(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
      assert.equal(plain.status, 415, plain.text);
      assert.equal(JSON.parse(plain.text).error, 'unsupported_media_type');
      const bad = await get(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"message":' });
      assert.equal(bad.status, 400, bad.text);
      assert.equal(JSON.parse(bad.text).error, 'invalid_json');
      const invalid = await within(WAIT, post(url, { steps: -1 }), 'invalid input');
      assert.equal(invalid.status, 400);
      assert.ok(Array.isArray(invalid.json.issues));
      const unknown = await within(WAIT, post(`${ts}/tasks/examples/NoSuchTask`, {}), 'unknown type');
      assert.equal(unknown.status, 404);
    });

    test('the bare prefix redirects (308) to the prefix with a slash, where the dashboard is', async () => {
      const bare = await get(ts);
      assert.equal(bare.status, 308);
      assert.equal(bare.headers.get('location'), '/taskstream/');
      const withQuery = await get(`${ts}?a=1`);
      assert.equal(withQuery.status, 308);
      assert.equal(withQuery.headers.get('location'), '/taskstream/?a=1');
      const page = await get(`${ts}/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    });
  });
}

describe('plain basePath on the Node handler (no framework)', { timeout: 30_000 }, () => {
  test('generated URLs carry the prefix; the bare prefix redirects; paths outside it are not stripped', async () => {
    const s = await startServer({ http: { basePath: '/ts' } });
    try {
      const bare = await get(`${s.url}/ts`);
      assert.equal(bare.status, 308);
      assert.equal(bare.headers.get('location'), '/ts/');
      assert.equal((await get(`${s.url}/ts/?x=1`)).status, 200);
      assert.equal((await get(`${s.url}/ts/health`)).text, 'OK');
      assert.equal((await get(`${s.url}/tsx/health`)).status, 404);

      const created = await within(WAIT, post(`${s.url}/ts/tasks/examples/ExampleTask`, INPUT), 'create');
      assert.equal(created.status, 201);
      assert.equal(created.headers.get('location'), `/ts/tasks/examples/ExampleTask/${created.json.id}`);
      assert.equal(created.json.stream_url, `/ts/stream/examples/ExampleTask/${created.json.id}`);
      assertExampleRun((await readStream(`${s.url}${created.json.stream_url}`)).frames, created.json.id);
    } finally {
      await s.close();
    }
  });

  test('without a prefix, / is the dashboard (no redirect)', async () => {
    const s = await startServer();
    try {
      assert.equal((await get(`${s.url}/`)).status, 200);
    } finally {
      await s.close();
    }
  });

  test('a body another parser already consumed: a 500 at once, not a hang (an empty one is just empty)', async () => {
    const db = tempDb();
    const runtime = await createTaskstream({ store: sqliteStore(db.path), tasks: exampleTasks });
    const handler = createHandler(runtime, { basePath: '/ts' });
    // Fastify's own JSON parser reads the raw stream and keeps the result on its request, not on req.
    const fastify = Fastify();
    fastify.all('/ts/*', (request, reply) => {
      reply.hijack();
      handler(request.raw, reply.raw);
    });
    // A middleware that drains every body before handing over.
    const drained = http.createServer((req, res) => {
      req.once('end', () => handler(req, res)).resume();
    });
    try {
      await fastify.listen({ port: 0, host: '127.0.0.1' });
      const url = `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`;
      const res = await within(WAIT, post(`${url}/ts/tasks/examples/ExampleTask`, INPUT), 'an answer to a consumed body');
      assert.equal(res.status, 500);

      await new Promise<void>((resolve) => drained.listen(0, '127.0.0.1', resolve));
      const plain = `http://127.0.0.1:${(drained.address() as AddressInfo).port}`;
      assert.equal((await within(WAIT, post(`${plain}/ts/tasks/examples/ExampleTask`, INPUT), 'consumed body')).status, 500);
      const created = await within(WAIT, post(`${plain}/ts/tasks/examples/ExampleTask`), 'empty body');
      assert.equal(created.status, 201, JSON.stringify(created.json));
      const cancelled = await within(WAIT, post(`${plain}/ts/tasks/examples/ExampleTask/${created.json.id}/cancel`), 'cancel, empty body');
      assert.equal(cancelled.status, 202);
    } finally {
      await runtime.close({ timeoutMs: 1000 });
      await fastify.close();
      drained.closeAllConnections();
      await new Promise<void>((resolve) => drained.close(() => resolve()));
      db.cleanup();
    }
  });
});

describe('Fetch handler called directly (no framework, no server)', { timeout: 30_000 }, () => {
  let runtime: Taskstream;
  const db = tempDb();
  before(async () => {
    runtime = await createTaskstream({ store: sqliteStore(db.path), tasks: exampleTasks });
  });
  after(async () => {
    try {
      await runtime?.close({ timeoutMs: 1000 });
    } finally {
      db.cleanup();
    }
  });

  const createJson = (url: string): Request => new Request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(INPUT),
  });

  test('create, then read the streamed Response body to its end', async () => {
    const handler = createFetchHandler(runtime);
    const created = await within(WAIT, handler(createJson('http://x/tasks/examples/ExampleTask')), 'create');
    assert.equal(created.status, 201);
    const task = (await created.json()) as { id: number; stream_url: string };
    assert.equal(created.headers.get('location'), `/tasks/examples/ExampleTask/${task.id}`);
    assert.equal(task.stream_url, `/stream/examples/ExampleTask/${task.id}`);

    const ac = new AbortController();
    try {
      const res = await within(WAIT, handler(new Request(`http://x${task.stream_url}`, { headers: { accept: 'text/event-stream' }, signal: ac.signal })), 'stream');
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/event-stream');
      const text = await within(WAIT, res.text(), 'the end of the stream');
      assert.match(text, /^retry: \d+\n\n/);
      assertExampleRun(parseSse(text), task.id);
    } finally {
      ac.abort();
    }

    const finished = await within(WAIT, handler(new Request(`http://x/tasks/examples/ExampleTask/${task.id}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' } })), 'cancel');
    assert.equal(finished.status, 409);
  });

  test('with basePath: prefixed URLs, 308 for the bare prefix, 415 and 400 bodies', async () => {
    const handler = createFetchHandler(runtime, { basePath: '/ts' });
    const bare = await within(WAIT, handler(new Request('http://x/ts?a=b')), 'bare prefix');
    assert.equal(bare.status, 308);
    assert.equal(bare.headers.get('location'), '/ts/?a=b');
    assert.equal((await within(WAIT, handler(new Request('http://x/ts/health')), 'health').then((r) => r.text())), 'OK');

    const created = await within(WAIT, handler(createJson('http://x/ts/tasks/examples/ExampleTask')), 'create');
    assert.equal(created.status, 201);
    const task = (await created.json()) as { id: number; stream_url: string };
    assert.equal(created.headers.get('location'), `/ts/tasks/examples/ExampleTask/${task.id}`);
    assert.equal(task.stream_url, `/ts/stream/examples/ExampleTask/${task.id}`);
    const res = await within(WAIT, handler(new Request(`http://x${task.stream_url}`, { headers: { accept: 'text/event-stream' } })), 'stream');
    assertExampleRun(parseSse(await within(WAIT, res.text(), 'the end of the stream')), task.id);

    const plain = await within(WAIT, handler(new Request('http://x/ts/tasks/examples/ExampleTask', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' })), '415');
    assert.equal(plain.status, 415);
    const bad = await within(WAIT, handler(new Request('http://x/ts/tasks/examples/ExampleTask', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' })), '400');
    assert.equal(bad.status, 400);
  });
});

