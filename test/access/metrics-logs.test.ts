/**
 * `/metrics` after known work (values, route templates, a registry per handler), and the log:
 * a request id per request, credentials never written, a routine cancel without a warning, and
 * an error's cause chain kept.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import type { Logger } from '../../src/index.js';
import { getJson, post, startServer, until, within } from '../http/helpers.js';
import { recordingLogger } from './helpers.js';

const KEY = 'metrics-key-0123456789abcdef';
const WAIT = 10_000;

/** The value of one sample in Prometheus text, or undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[^"}]|"[^"]*")*\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

void test('/metrics after known work: tasks created and finished, events appended and sent, streams, requests by route template', async () => {
  const s = await startServer({ http: { access: { apiKeys: [KEY] } } });
  try {
    const auth = { authorization: `Bearer ${KEY}` };
    const ids: number[] = [];
    for (let i = 0; i < 2; i++) {
      const { json } = await post(`${s.url}/tasks/examples/SyncGeneratorTask`, { items: ['a', 'b', 'c'] }, auth);
      ids.push(json.id);
    }
    await until(s.runtime, async () => (await Promise.all(ids.map((id) => s.runtime.get(id)))).every((t) => t?.status === 'completed'), WAIT, 'both tasks to complete');
    const third = (await post(`${s.url}/tasks/examples/SyncGeneratorTask`, { items: [] }, auth)).json;
    const forbidden = await fetch(`${s.url}/stream/examples/SyncGeneratorTask/${ids[0]}?token=${third.stream_token}`, { headers: { accept: 'text/event-stream' } });
    assert.equal(forbidden.status, 403, 'a token for the third task does not open the first task\'s stream');
    const streamed = await within(WAIT, (async () => {
      const res = await fetch(`${s.url}/stream/examples/SyncGeneratorTask/${ids[0]}`, { headers: { ...auth, accept: 'text/event-stream' } });
      return res.text();
    })(), 'the first task\'s stream');
    assert.equal((streamed.match(/^id: /gm) ?? []).length, 4);
    await until(s.runtime, async () => (await s.runtime.get(third.id))?.status === 'completed', WAIT, 'the third task');

    assert.equal((await fetch(`${s.url}/metrics`)).status, 401, '/metrics needs the key');
    const res = await fetch(`${s.url}/metrics`, { headers: auth });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const kind = { app: 'examples', type: 'SyncGeneratorTask' };
    assert.equal(sample(text, 'taskstream_tasks_created_total', kind), 3);
    assert.equal(sample(text, 'taskstream_tasks_finished_total', { ...kind, status: 'completed' }), 3);
    assert.equal(sample(text, 'taskstream_events_appended_total'), 2 * 4 + 1, 'three progress and a complete per task, a complete for the empty one');
    assert.equal(sample(text, 'taskstream_sse_events_sent_total'), 4);
    assert.equal(sample(text, 'taskstream_sse_streams'), 0);
    assert.equal(sample(text, 'taskstream_tasks_running'), 0);
    assert.equal(sample(text, 'taskstream_tasks_pending'), 0);
    assert.equal(sample(text, 'taskstream_sse_slow_client_pauses_total'), 0);
    assert.equal(sample(text, 'taskstream_lease_takeovers_total'), 0);
    assert.equal(sample(text, 'taskstream_http_requests_total', { route: '/tasks/{app}/{type}', method: 'POST', status: '201' }), 3);
    assert.equal(sample(text, 'taskstream_http_requests_total', { route: '/stream/{app}/{type}/{id}', method: 'GET', status: '200' }), 1);
    assert.equal(sample(text, 'taskstream_http_requests_total', { route: '/stream/{app}/{type}/{id}', method: 'GET', status: '403' }), 1);
    assert.equal(sample(text, 'taskstream_http_requests_total', { route: '/metrics', method: 'GET', status: '401' }), 1);
    assert.ok((sample(text, 'taskstream_http_request_duration_seconds_count', { route: '/tasks/{app}/{type}', method: 'POST' }) ?? 0) >= 3);
    assert.ok(sample(text, 'process_cpu_user_seconds_total') !== undefined);
    assert.ok(sample(text, 'nodejs_eventloop_lag_seconds') !== undefined);
    for (const id of ids) assert.doesNotMatch(text, new RegExp(`route="[^"]*/${id}[/"]`), 'no concrete id in a route label');

    // Another handler on the same runtime has a registry of its own.
    const other = await startServer({ http: { metrics: false } });
    try {
      assert.equal((await fetch(`${other.url}/metrics`)).status, 404);
    } finally {
      await other.close();
    }
  } finally {
    await s.close();
  }
});

void test('logs: a request id per request, keys and tokens never written, a routine cancel logs no warning', async () => {
  let out = '';
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { out += chunk.toString(); done(); } });
  const logger = pino({ level: 'debug' }, sink) as Logger;
  const s = await startServer({ runtime: { logger }, http: { access: { apiKeys: [KEY] } } });
  try {
    const auth = { authorization: `Bearer ${KEY}` };
    const { json: task } = await post(`${s.url}/tasks/examples/ExampleTask`, { steps: 5, delay_ms: 5000 }, auth);
    await until(s.runtime, async () => (await s.runtime.get(task.id))?.status === 'running', WAIT, 'running');
    const token = task.stream_token as string;
    assert.equal((await getJson(`${s.url}/tasks/examples/ExampleTask/${task.id}?token=${token}`, { 'x-request-id': 'my-request-1' })).headers.get('x-request-id'), 'my-request-1');
    await getJson(`${s.url}/tasks?limit=5&token=${token}`);
    await getJson(`${s.url}/tasks`, { authorization: 'Bearer wrong-key-but-long-enough' });
    const cancelled = await post(`${s.url}/tasks/examples/ExampleTask/${task.id}/cancel`, undefined, auth);
    assert.equal(cancelled.status, 202);
    await until(s.runtime, async () => (await s.runtime.get(task.id))?.status === 'cancelled', WAIT, 'cancelled');
    await s.runtime.close({ timeoutMs: 1000 });

    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string; reqId?: string; url?: string; status?: number });
    const requests = lines.filter((l) => l.msg === 'request');
    assert.ok(requests.length >= 5);
    for (const r of requests) assert.match(r.reqId ?? '', /^[A-Za-z0-9._:-]+$/);
    assert.equal(new Set(requests.map((r) => r.reqId)).size, requests.length, 'one id per request');
    assert.ok(requests.some((r) => r.reqId === 'my-request-1' && r.url === `/tasks/examples/ExampleTask/${task.id}?token=[redacted]`));
    assert.ok(requests.some((r) => r.url === '/tasks?limit=5&token=[redacted]' && r.status === 403));
    assert.equal(out.includes(KEY), false, 'the key is never logged');
    assert.equal(out.includes(token), false, 'the token is never logged');
    assert.equal(out.includes('wrong-key-but-long-enough'), false, 'nor a wrong key');
    assert.deepEqual(lines.filter((l) => l.level >= 40).map((l) => l.msg), [], 'no warning or error for a routine cancel');
  } finally {
    await s.close();
  }
});

void test('an error keeps its cause chain: HttpFetchTask against a closed port says why', async () => {
  const logger = recordingLogger();
  const s = await startServer({ runtime: { logger } });
  try {
    // A port nothing listens on: bind one, then close it.
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const { json: task } = await post(`${s.url}/tasks/examples/HttpFetchTask`, { url: `http://127.0.0.1:${port}/` });
    await until(s.runtime, async () => (await s.runtime.get(task.id))?.status === 'failed', WAIT, 'the fetch to fail');
    const { json } = await getJson(`${s.url}/tasks/examples/HttpFetchTask/${task.id}`);
    assert.match(json.error.message, /^fetch failed: .*ECONNREFUSED/);
  } finally {
    await s.close();
  }
});
