/**
 * The browser's own `EventSource` against `/stream/{app}/{type}/{id}`, as the Django Streaming Coordinator's pages use it
 * (`es.addEventListener('progress', …)`): the whole log arrives, and after the server drops the
 * connection mid-stream the browser reconnects by itself with `Last-Event-ID` and gets every
 * event exactly once, in order.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { type BrowserServer, collectPageErrors, html, launchBrowser, SKIP, startServer, WAIT_MS } from './harness.js';

interface Received {
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

interface Watcher {
  got: Received[];
  opens: number;
  errors: number;
  /** The last seq received when each `error` (a drop) fired. */
  seqAtErrors: number[];
  done: boolean;
}

declare global {
  interface Window {
    watcher: Watcher;
  }
}

/** Runs in the page: subscribes the Django Streaming Coordinator's way and records everything. */
function subscribe(url: string): void {
  const w: Watcher = { got: [], opens: 0, errors: 0, seqAtErrors: [], done: false };
  window.watcher = w;
  const es = new EventSource(url);
  for (const type of ['start', 'progress', 'complete']) {
    es.addEventListener(type, (e) => {
      const event = e as MessageEvent<string>;
      w.got.push({ seq: Number(event.lastEventId), type, data: JSON.parse(event.data) as Record<string, unknown> });
      if (type === 'complete') {
        es.close();
        w.done = true;
      }
    });
  }
  es.addEventListener('open', () => w.opens++);
  es.addEventListener('error', () => {
    w.errors++;
    w.seqAtErrors.push(w.got.at(-1)?.seq ?? 0);
  });
}

void describe('native EventSource in Chromium', () => {
  let app: BrowserServer;
  let browser: Browser;

  before(async () => {
    if (SKIP) return;
    // A short `retry:` so the reconnect test does not wait the default 2 s.
    app = await startServer({ http: { retryMs: 100 }, pages: { '/__test/blank.html': html('<p>EventSource test page</p>') } });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await app?.close();
  });

  void test('receives start, every progress and complete, with the protocol envelope', { skip: SKIP }, async () => {
    const task = await app.runtime.create('examples/ExampleTask', { message: 'es', steps: 3, delay_ms: 30 });
    const page = await browser.newPage();
    const errors = collectPageErrors(page);
    await page.goto(`${app.url}/__test/blank.html`);
    await page.evaluate(subscribe, `/stream/examples/ExampleTask/${task.id}`);
    await page.waitForFunction(() => window.watcher.done, undefined, { timeout: WAIT_MS });
    const w = await page.evaluate(() => window.watcher);
    assert.deepEqual(w.got.map((e) => [e.seq, e.type]), [[1, 'start'], [2, 'progress'], [3, 'progress'], [4, 'progress'], [5, 'complete']]);
    assert.deepEqual(w.got[0]!.data.total_steps, 3);
    assert.deepEqual(w.got.map((e) => e.data.step ?? null), [null, 1, 2, 3, null]);
    assert.equal(w.got[4]!.data.final_value, 'Completed processing: es');
    for (const e of w.got) {
      assert.equal(e.data._task_id, task.id);
      assert.equal(e.data._app, 'examples');
      assert.equal(e.data._model, 'ExampleTask');
      assert.equal(e.data._seq, e.seq);
      assert.equal(typeof e.data._timestamp, 'string');
    }
    assert.equal(w.errors, 0, 'no error event on a clean stream');
    assert.deepEqual(errors, []);
    await page.close();
  });

  void test('reconnects after the server drops the connection, with Last-Event-ID, losing and repeating nothing', { skip: SKIP }, async () => {
    const steps = 10;
    const task = await app.runtime.create('examples/ExampleTask', { message: 'drop', steps, delay_ms: 200 });
    const path = `/stream/examples/ExampleTask/${task.id}`;
    const page = await browser.newPage();
    const errors = collectPageErrors(page);
    await page.goto(`${app.url}/__test/blank.html`);
    await page.evaluate(subscribe, path);

    // After the 2nd event reaches the page, the server cuts the stream's socket.
    await page.waitForFunction(() => window.watcher.got.length >= 2, undefined, { timeout: WAIT_MS });
    assert.equal(app.dropStreams(path), 1, 'one open SSE connection to drop');
    await page.waitForFunction(() => window.watcher.done, undefined, { timeout: WAIT_MS });

    const w = await page.evaluate(() => window.watcher);
    const seqs = w.got.map((e) => e.seq);
    assert.deepEqual(seqs, Array.from({ length: steps + 2 }, (_, i) => i + 1), 'every seq exactly once, in order');
    assert.deepEqual(w.got.map((e) => e.type), ['start', ...Array<string>(steps).fill('progress'), 'complete']);
    assert.ok(w.errors >= 1 && w.opens >= 2, `the browser saw the drop and reopened (errors ${w.errors}, opens ${w.opens})`);

    const requests = app.streams.filter((s) => s.path === path);
    assert.ok(requests.length >= 2, 'the browser connected again');
    assert.equal(requests[0]!.lastEventId, undefined, 'the first connection starts from the beginning');
    assert.equal(requests[1]!.lastEventId, String(w.seqAtErrors[0]), 'the reconnect resumes after the last event the browser had');
    assert.ok(w.seqAtErrors[0]! >= 2 && w.seqAtErrors[0]! < steps + 2, 'the drop happened mid-stream');
    assert.deepEqual(errors, []);
    await page.close();
  });
});
