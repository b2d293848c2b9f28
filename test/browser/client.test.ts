/**
 * The isomorphic client and the React hook, bundled by esbuild and run in Chromium against a real
 * server: `taskstream/client` streams an ExampleTask to its end and `result()` resolves; the
 * `useTaskStream` hook receives a task's events, switches when its ref changes (closing the old
 * connection) and closes its connection on unmount (checked on the server's side).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import {
  type BrowserServer, bundle, collectPageErrors, html, js, launchBrowser, SKIP, startServer, WAIT_MS, within,
} from './harness.js';
import type { ReactControls } from './fixtures/react-app.js';
import { nextEvent } from '../core/helpers.js';

interface ClientRun {
  events: Array<{ seq: number; type: string; data: Record<string, unknown> }>;
  result: unknown;
}

declare global {
  interface Window {
    taskstreamClient: typeof import('../../src/client/index.js');
  }
}

void describe('client library and React hook in Chromium', () => {
  let app: BrowserServer;
  let browser: Browser;

  before(async () => {
    if (SKIP) return;
    const [client, react] = await Promise.all([
      bundle('src/client/index.ts', { globalName: 'taskstreamClient' }),
      bundle('test/browser/fixtures/react-app.tsx'),
    ]);
    app = await startServer({
      pages: {
        '/__test/client.html': html('<script src="/__test/client.js"></script><p>client test page</p>'),
        '/__test/client.js': js(client),
        '/__test/react.html': html('<div id="root"></div><script src="/__test/react.js"></script>'),
        '/__test/react.js': js(react),
      },
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await app?.close();
  });

  void test('the bundled client creates an ExampleTask, streams it to the end, and result() resolves', { skip: SKIP }, async () => {
    const page = await browser.newPage();
    const errors = collectPageErrors(page);
    await page.goto(`${app.url}/__test/client.html`);
    const run = await page.evaluate(async (): Promise<ClientRun> => {
      const client = window.taskstreamClient.createClient({ baseUrl: location.origin });
      const task = await client.create('examples/ExampleTask', { message: 'browser client', steps: 4, delay_ms: 20 });
      const events: ClientRun['events'] = [];
      for await (const e of client.stream(task)) events.push({ seq: e.seq, type: e.type, data: e.data });
      return { events, result: await client.result(task) };
    });
    assert.deepEqual(run.events.map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(run.events.map((e) => e.type), ['start', 'progress', 'progress', 'progress', 'progress', 'complete']);
    assert.equal(run.events[5]!.data.final_value, 'Completed processing: browser client');
    assert.equal(run.events[1]!.data._seq, undefined, 'the envelope keys are removed');
    assert.equal(run.result, 'Completed processing: browser client');
    assert.deepEqual(errors, []);
    await page.close();
  });

  void test('useTaskStream: mount receives, a ref change switches (closing the old stream), unmount closes', { skip: SKIP }, async () => {
    const { runtime } = app;
    const page = await browser.newPage();
    const errors = collectPageErrors(page);
    await page.goto(`${app.url}/__test/react.html`);
    await page.waitForFunction(() => window.reactControls !== undefined, undefined, { timeout: WAIT_MS });
    const setRef = (ref: string | null): Promise<void> => page.evaluate((r) => (window.reactControls as ReactControls).setRef(r), ref);
    const streamOf = async (id: number): Promise<BrowserServer['streams'][number]> => {
      const path = `/stream/examples/ExampleTask/${id}`;
      // The page has events of this task, so the request that carried them is on record.
      const found = app.streams.find((s) => s.path === path);
      assert.ok(found, `the hook opened ${path}`);
      return found;
    };

    // Mount with a long task: events arrive, one connection on the server.
    const slow = await runtime.create('examples/ExampleTask', { message: 'slow', steps: 50, delay_ms: 100 });
    await setRef(`examples/ExampleTask/${slow.id}`);
    await page.waitForFunction(() => (document.getElementById('watch')?.dataset.seqs ?? '').split(',').length >= 3, undefined, { timeout: WAIT_MS });
    assert.equal(await page.getAttribute('#watch', 'data-status'), 'running');
    assert.ok(Number(await page.getAttribute('#watch', 'data-progress')) > 0);
    const slowStream = await streamOf(slow.id);
    assert.equal(runtime.stats.subscribers, 1);

    // Switch to a short task: the old connection closes, the new task's events (only) arrive.
    const quick = await runtime.create('examples/ExampleTask', { message: 'quick', steps: 3, delay_ms: 20 });
    await setRef(`examples/ExampleTask/${quick.id}`);
    await within(WAIT_MS, slowStream.closed, 'the server to see the old stream close');
    await page.waitForSelector('#watch[data-status="completed"]', { timeout: WAIT_MS });
    assert.equal(await page.getAttribute('#watch', 'data-ref'), `examples/ExampleTask/${quick.id}`);
    assert.equal(await page.getAttribute('#watch', 'data-seqs'), '1,2,3,4,5');
    assert.equal(await page.textContent('#final'), 'Completed processing: quick');

    // Watch another long task, then unmount: its connection closes and the server has no subscriber left.
    const third = await runtime.create('examples/ExampleTask', { message: 'third', steps: 50, delay_ms: 100 });
    await setRef(`examples/ExampleTask/${third.id}`);
    await page.waitForFunction(() => (document.getElementById('watch')?.dataset.seqs ?? '').split(',').length >= 2, undefined, { timeout: WAIT_MS });
    const thirdStream = await streamOf(third.id);
    // The handler reports `stream:closed` once the hub has detached the stream's subscriber.
    const thirdDetached = nextEvent(runtime, 'stream:closed', ({ taskId }) => taskId === third.id, WAIT_MS, 'stream:closed of the unmounted stream');
    await page.evaluate(() => (window.reactControls as ReactControls).setMounted(false));
    await page.waitForSelector('#unmounted', { timeout: WAIT_MS });
    await within(WAIT_MS, thirdStream.closed, 'the server to see the stream close on unmount');
    await thirdDetached;
    assert.equal(runtime.stats.subscribers, 0, 'no subscriber left once the last stream closed');
    assert.equal((await runtime.get(third.id))?.status, 'running', 'unmounting stops watching, not the task');
    assert.deepEqual(errors, []);
    await page.close();
  });
});
