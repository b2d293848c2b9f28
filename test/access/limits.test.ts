/**
 * Limits that answer (429, 503 with Retry-After) and browser safety over HTTP: the Host check of
 * a loopback-bound server, CORS only for listed origins, and the headers the dashboard is sent with.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { describe, test } from 'node:test';
import { createHandler, serverTimeouts } from '../../src/index.js';
import { getJson, post, startServer, within } from '../http/helpers.js';

const WAIT = 10_000;

/** A GET with a Host header of our choosing (fetch does not let one set it). */
function rawGet(port: number, path: string, host: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return within(WAIT, new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host, ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject).end();
  }), `GET ${path} with Host ${host}`);
}

describe('limits', { timeout: 60_000 }, () => {
  test('--rate-limit: past N requests a window from one address, 429 with Retry-After; /health and /ready are exempt', async () => {
    const s = await startServer({ http: { limits: { rateLimit: { points: 3, durationSec: 60 } } } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await fetch(`${s.url}/tasks`)).status);
      assert.deepEqual(statuses, [200, 200, 200, 429]);
      const limited = await getJson(`${s.url}/tasks/types`);
      assert.equal(limited.status, 429);
      assert.equal(limited.json.error, 'rate_limited');
      assert.ok(Number(limited.headers.get('retry-after')) >= 1);
      for (let i = 0; i < 5; i++) {
        assert.equal((await fetch(`${s.url}/health`)).status, 200);
        assert.equal((await fetch(`${s.url}/ready`)).status, 200);
      }
    } finally {
      await s.close();
    }
  });

  test('--max-streams: the stream past the limit gets 503 with Retry-After; a slot frees when one closes', async () => {
    const s = await startServer({ http: { limits: { maxStreams: 1 } } });
    try {
      const { json: task } = await post(`${s.url}/tasks/examples/ContinueTask`, { timeout_ms: 30_000 });
      const first = new AbortController();
      const opened = new Promise<void>((resolve) => s.runtime.on('stream:opened', () => resolve()));
      const res = await fetch(`${s.url}/stream/examples/ContinueTask/${task.id}`, { headers: { accept: 'text/event-stream' }, signal: first.signal });
      assert.equal(res.status, 200);
      await within(WAIT, opened, 'the first stream to open');
      const second = await getJson(`${s.url}/stream/examples/ContinueTask/${task.id}`, { accept: 'text/event-stream, application/json' });
      assert.equal(second.status, 503);
      assert.equal(second.json.error, 'too_many_streams');
      assert.equal(second.headers.get('retry-after'), '1');
      const closed = new Promise<void>((resolve) => s.runtime.on('stream:closed', () => resolve()));
      first.abort();
      await within(WAIT, closed, 'the first stream to close');
      const third = new AbortController();
      assert.equal((await fetch(`${s.url}/stream/examples/ContinueTask/${task.id}`, { headers: { accept: 'text/event-stream' }, signal: third.signal })).status, 200);
      third.abort();
      await post(`${s.url}/tasks/examples/ContinueTask/${task.id}/cancel`);
    } finally {
      await s.close();
    }
  });

  test('serverTimeouts: a client that never finishes its headers is disconnected', async () => {
    const s = await startServer();
    const server = http.createServer(serverTimeouts({ headersTimeoutMs: 500, bodyTimeoutMs: 500 }), createHandler(s.runtime));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.on('error', () => {}).resume();
      socket.write('GET /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
      await within(WAIT, closed, 'the slow client to be disconnected');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await s.close();
    }
  });
});

describe('browser safety', { timeout: 60_000 }, () => {
  test('a loopback-bound server answers only loopback Host names (DNS rebinding): 403 otherwise; allowedHosts adds names', async () => {
    const s = await startServer({ http: { allowedHosts: ['tasks.internal'] } });
    try {
      const port = Number(new URL(s.url).port);
      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', `[::1]:${port}`, `tasks.internal:${port}`, 'TASKS.INTERNAL']) {
        assert.equal((await rawGet(port, '/tasks', host)).status, 200, host);
      }
      for (const host of [`evil.example:${port}`, 'evil.example', 'localhost.evil.example', '127.0.0.1.evil.example']) {
        const res = await rawGet(port, '/tasks', host);
        assert.equal(res.status, 403, host);
        assert.equal((JSON.parse(res.body) as { error: string }).error, 'forbidden_host');
      }
    } finally {
      await s.close();
    }
  });

  test('without corsOrigins no origin gets CORS headers and preflights are refused; listed origins get both', async () => {
    const closed = await startServer();
    const open = await startServer({ http: { corsOrigins: ['https://app.example.com'] } });
    try {
      const preflight = (url: string, origin: string): Promise<Response> => fetch(`${url}/tasks/examples/ExampleTask`, {
        method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' },
      });
      const refused = await preflight(closed.url, 'https://app.example.com');
      assert.equal(refused.status, 403);
      assert.equal(refused.headers.get('access-control-allow-origin'), null);
      assert.equal((await fetch(`${closed.url}/tasks`, { headers: { origin: 'https://app.example.com' } })).headers.get('access-control-allow-origin'), null);

      const allowed = await preflight(open.url, 'https://app.example.com');
      assert.equal(allowed.status, 204);
      assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://app.example.com');
      assert.match(allowed.headers.get('access-control-allow-headers') ?? '', /authorization/);
      assert.match(allowed.headers.get('access-control-allow-methods') ?? '', /POST/);
      assert.equal((await preflight(open.url, 'https://evil.example')).status, 403);
      const get = await fetch(`${open.url}/tasks`, { headers: { origin: 'https://app.example.com' } });
      assert.equal(get.headers.get('access-control-allow-origin'), 'https://app.example.com');
      assert.equal(get.headers.get('vary'), 'Origin');
      assert.equal((await fetch(`${open.url}/tasks`, { headers: { origin: 'https://evil.example' } })).headers.get('access-control-allow-origin'), null);
    } finally {
      await closed.close();
      await open.close();
    }
  });

  test('the dashboard is sent with CSP (frame-ancestors \'none\'), nosniff and no-referrer as HTTP headers', async () => {
    const s = await startServer();
    try {
      for (const path of ['/', '/app.js', '/style.css']) {
        const res = await fetch(`${s.url}${path}`);
        if (path === '/app.js' && res.status === 404) continue; // not built in this checkout
        assert.equal(res.status, 200, path);
        assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, path);
        assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
        assert.equal(res.headers.get('referrer-policy'), 'no-referrer', path);
      }
      assert.equal((await fetch(`${s.url}/tasks`)).headers.get('x-content-type-options'), 'nosniff');
    } finally {
      await s.close();
    }
  });
});
