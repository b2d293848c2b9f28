/**
 * Browser attacks on a loopback server, in headless Chromium, each with a control that shows the
 * attack would have worked without the guard:
 * - CSRF: a page on another origin POSTs to create and cancel without a preflight (no body, a
 *   text/plain body, an HTML form). JSON-only POSTs refuse them; the page cannot read the API either.
 * - DNS rebinding: a page whose origin resolves to 127.0.0.1 (Chromium's host resolver rules play
 *   the attacker's DNS) talks to the server same-origin; the Host check refuses it.
 * - With Access on, the dashboard asks for a key, keeps it for the tab, and works with it.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import {
  type BrowserServer, buildDashboard, CHROMIUM, collectPageErrors, html, SKIP, startServer, WAIT_MS, within,
} from './harness.js';
import { recordingLogger } from '../access/helpers.js';

const KEY = 'browser-key-0123456789abcdef';

/** Chromium where `rebind.test` resolves to 127.0.0.1, as an attacker's DNS would answer after the page loaded. */
function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--host-resolver-rules=MAP rebind.test 127.0.0.1'],
  });
}

/** A server on another origin (another port) that serves one attacker page. */
async function attackerSite(page: () => string): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(page());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** The attacker page's script: every request a page may send cross-origin without a preflight, then a read and a preflighted POST. */
function csrfPage(target: string, taskPath: string): string {
  return `<!doctype html><meta charset="utf-8"><title>evil</title>
<form id="f" method="POST" action="${target}/tasks/examples/ExampleTask" enctype="text/plain" target="sink"><input name='{"message":"form","x":"' value='"}'></form>
<iframe name="sink"></iframe>
<script>
window.results = (async () => {
  const out = {};
  const attempt = async (name, fn) => { try { out[name] = await fn(); } catch (e) { out[name] = 'blocked: ' + e.name; } };
  await attempt('emptyCreate', () => fetch('${target}/tasks/examples/ExampleTask', { method: 'POST', mode: 'no-cors' }).then((r) => r.type));
  await attempt('textCreate', () => fetch('${target}/tasks/examples/ExampleTask', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: '{}' }).then((r) => r.type));
  await attempt('emptyCancel', () => fetch('${target}${taskPath}/cancel', { method: 'POST', mode: 'no-cors' }).then((r) => r.type));
  await attempt('formCancel', () => fetch('${target}${taskPath}/cancel', { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'reason=evil' }).then((r) => r.type));
  await attempt('jsonCreate', () => fetch('${target}/tasks/examples/ExampleTask', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).then((r) => r.status));
  await attempt('read', () => fetch('${target}/tasks').then((r) => r.status));
  await new Promise((resolve) => { document.querySelector('iframe').onload = resolve; document.getElementById('f').submit(); });
  out.form = 'submitted';
  return out;
})();
</script>`;
}

describe('browser attacks on a loopback server', { skip: SKIP, timeout: 120_000 }, () => {
  let browser: Browser;
  let s: BrowserServer;
  before(async () => {
    buildDashboard();
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
  });

  test('CSRF: a page on another origin creates and cancels nothing, and reads nothing', async () => {
    const logger = recordingLogger();
    s = await startServer({ http: { logger } });
    let target = s.url;
    let taskPath = '';
    const evil = await attackerSite(() => csrfPage(target, taskPath));
    const allowed = await startServer({ http: { corsOrigins: [evil.url] } });
    const page = await browser.newPage();
    try {
      const running = await s.runtime.create('examples/ContinueTask', { timeout_ms: 60_000 });
      taskPath = `/tasks/examples/ContinueTask/${running.id}`;
      await page.goto(`${evil.url}/`);
      const results = await within(WAIT_MS, page.evaluate(() => (window as unknown as { results: Promise<Record<string, unknown>> }).results), 'the attack page');
      // The no-cors requests were sent (opaque answers); the preflighted and the reading ones were blocked.
      assert.deepEqual(results, {
        emptyCreate: 'opaque', textCreate: 'opaque', emptyCancel: 'opaque', formCancel: 'opaque',
        jsonCreate: 'blocked: TypeError', read: 'blocked: TypeError', form: 'submitted',
      });
      const tasks = (await s.runtime.list({ limit: 100 })).tasks;
      assert.deepEqual(tasks.map((t) => t.id), [running.id], 'no task was created');
      assert.equal((await s.runtime.get(running.id))?.status, 'running', 'the task was not cancelled');
      // They did reach the server, and were refused there: 415 for each simple POST, 403 for the preflight.
      const statuses = logger.lines.filter((l) => l.msg === 'request').map((l) => `${String(l.obj.method)} ${String(l.obj.status)}`);
      assert.equal(statuses.filter((x) => x === 'POST 415').length, 5, statuses.join(', '));
      assert.ok(statuses.includes('OPTIONS 403'), statuses.join(', '));

      // Control: with the page's origin allowed (--cors-origin) the preflighted create and the read go through.
      target = allowed.url;
      taskPath = '/tasks/examples/ContinueTask/1';
      await page.goto(`${evil.url}/`);
      const control = await within(WAIT_MS, page.evaluate(() => (window as unknown as { results: Promise<Record<string, unknown>> }).results), 'the control page');
      assert.equal(control.jsonCreate, 201);
      assert.equal(control.read, 200);
      await s.runtime.cancel(running.id);
    } finally {
      await page.close();
      await evil.close();
      await allowed.close();
      await s.close();
    }
  });

  test('DNS rebinding: a page on rebind.test (resolving to 127.0.0.1) is refused; the same page on 127.0.0.1 works', async () => {
    const probe = `<script>
window.results = (async () => {
  const list = await fetch('/tasks').then((r) => r.status);
  const create = await fetch('/tasks/examples/HttpFetchTask', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: 'http://127.0.0.1:9/' }) }).then((r) => r.status);
  return { list, create };
})();
</script>`;
    s = await startServer({ pages: { '/evil.html': html(probe) } });
    const page = await browser.newPage();
    try {
      const port = new URL(s.url).port;
      await page.goto(`http://rebind.test:${port}/evil.html`).catch(() => undefined);
      // The page itself is one of the test pages (served before the handler); its API calls reach the handler.
      const rebound = await within(WAIT_MS, page.evaluate(() => (window as unknown as { results: Promise<{ list: number; create: number }> }).results), 'the rebound page');
      assert.deepEqual(rebound, { list: 403, create: 403 });
      assert.equal((await s.runtime.list({ limit: 10 })).tasks.length, 0, 'nothing was created');

      await page.goto(`${s.url}/evil.html`);
      const local = await within(WAIT_MS, page.evaluate(() => (window as unknown as { results: Promise<{ list: number; create: number }> }).results), 'the local page');
      assert.deepEqual(local, { list: 200, create: 201 }, 'control: the same calls from a loopback origin work');
    } finally {
      await page.close();
      await s.close();
    }
  });

  test('with Access on, the dashboard asks for a key, keeps it for the tab, and lists and starts tasks with it', async () => {
    s = await startServer({ http: { access: { apiKeys: [KEY] } } });
    const page = await browser.newPage();
    const errors = collectPageErrors(page);
    try {
      await s.runtime.create('examples/SyncGeneratorTask', { items: [1] });
      await page.goto(`${s.url}/`);
      await page.waitForSelector('#key-form:not([hidden])', { timeout: WAIT_MS });
      await page.fill('#key-input', 'wrong-key-0123456789abcdef');
      await page.press('#key-input', 'Enter');
      await page.waitForFunction(() => /refused/.test(document.querySelector('#key-form')?.textContent ?? '') && !(document.querySelector('#key-form') as HTMLElement).hidden, undefined, { timeout: WAIT_MS });
      await page.fill('#key-input', KEY);
      await page.press('#key-input', 'Enter');
      await page.waitForSelector('#task-rows tr', { timeout: WAIT_MS });
      assert.equal(await page.evaluate(() => sessionStorage.getItem('taskstream.apiKey')), KEY);
      await page.reload();
      await page.waitForSelector('#task-rows tr', { timeout: WAIT_MS });
      assert.equal(await page.isHidden('#key-form'), true, 'the key survives a reload of the tab');
      await page.selectOption('#create-type', 'examples/SyncGeneratorTask');
      await page.fill('#create-input', '{"items":[1,2]}');
      await page.click('#create-submit');
      await page.waitForFunction(() => /^#\/tasks\/examples\/SyncGeneratorTask\/\d+$/.test(location.hash), undefined, { timeout: WAIT_MS });
      await page.waitForFunction(() => document.querySelectorAll('#tv-log tr').length === 3, undefined, { timeout: WAIT_MS });
      assert.deepEqual(errors.filter((e) => !/401/.test(e)), []);
    } finally {
      await page.close();
      await s.close();
    }
  });
});
