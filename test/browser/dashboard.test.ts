/**
 * The dashboard at `/` in Chromium, served by the real handler: start a task from the form, watch
 * its progress bar move, cancel it, reload and see the same event log replayed; the connection
 * indicator through a dropped stream; input validation before sending. With UPDATE_SCREENSHOT=1
 * it rewrites docs/dashboard.png.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { z } from 'zod';
import { defineTask } from '../../src/index.js';
import {
  type BrowserServer, buildDashboard, collectPageErrors, launchBrowser, ROOT, SKIP, startServer, WAIT_MS,
} from './harness.js';

declare global {
  interface Window {
    /** Every value the watched attribute took, recorded by a MutationObserver the test installs. */
    seenStates: string[];
  }
}

/**
 * Sends 3 steps, waits for `more`, sends 5, waits for `finish`, sends 2 and completes: the test
 * says when each part runs, so the stream is dropped while the task is running on any machine.
 */
const Stepped = defineTask({
  app: 'browser',
  type: 'Stepped',
  input: z.object({}),
  async run(ctx) {
    let step = 0;
    for (const [count, wait] of [[3, 'more'], [5, 'finish'], [2, undefined]] as const) {
      for (let i = 0; i < count; i++) await ctx.progress({ step: ++step });
      if (wait !== undefined) await ctx.waitForSignal(wait);
    }
    return step;
  },
});

const TASK_HASH = /^#\/tasks\/examples\/ExampleTask\/(\d+)$/;

async function progressValue(page: Page): Promise<number> {
  return Number(await page.getAttribute('#tv-progress [role=progressbar]', 'aria-valuenow'));
}

/** The event log as the page shows it: [seq, type] per row. */
async function logRows(page: Page): Promise<Array<[number, string]>> {
  return page.$$eval('#tv-log tr', (rows) => rows.map((r): [number, string] => [Number(r.getAttribute('data-seq')), r.querySelector('.ev')?.textContent ?? '']));
}

async function startFromForm(page: Page, input: Record<string, unknown>): Promise<number> {
  await page.selectOption('#create-type', 'examples/ExampleTask');
  await page.fill('#create-input', JSON.stringify(input, null, 2));
  await page.click('#create-submit');
  await page.waitForFunction((re) => new RegExp(re).test(location.hash), TASK_HASH.source, { timeout: WAIT_MS });
  return Number(TASK_HASH.exec(await page.evaluate(() => location.hash))![1]);
}

void describe('dashboard in Chromium', () => {
  let app: BrowserServer;
  let browser: Browser;

  before(async () => {
    if (SKIP) return;
    buildDashboard();
    // A short `retry:` so a dropped stream resumes quickly.
    app = await startServer({ http: { retryMs: 300 }, tasks: [Stepped] });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await app?.close();
  });

  void test('start from the form, progress moves, cancel, reload replays the same log', { skip: SKIP }, async () => {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const errors = collectPageErrors(page);
    await page.goto(`${app.url}/`);
    await page.waitForSelector('#create-type option[value="examples/ExampleTask"]', { state: 'attached', timeout: WAIT_MS });
    await page.waitForSelector('#conn[data-state="live"]', { timeout: WAIT_MS });

    // Far longer than the test (400 × 150 ms): it is still running when Cancel is clicked, however slow the machine.
    const id = await startFromForm(page, { message: 'from the browser', steps: 400, delay_ms: 150 });
    await page.waitForSelector(`#task-rows tr[data-id="${id}"]`, { timeout: WAIT_MS });

    // The bar moves: a first value above 0, then a larger one.
    await page.waitForFunction(() => Number(document.querySelector('#tv-progress [role=progressbar]')?.getAttribute('aria-valuenow')) > 0, undefined, { timeout: WAIT_MS });
    const first = await progressValue(page);
    await page.waitForFunction((v) => Number(document.querySelector('#tv-progress [role=progressbar]')?.getAttribute('aria-valuenow')) > v, first, { timeout: WAIT_MS });
    const second = await progressValue(page);
    assert.ok(second > first && second < 100, `progress went from ${first} to ${second}`);
    // The list's bar for the same task moves too.
    await page.waitForFunction((taskId) => Number(document.querySelector(`#task-rows tr[data-id="${taskId}"] [role=progressbar]`)?.getAttribute('aria-valuenow')) > 0, id, { timeout: WAIT_MS });

    await page.click('#tv-cancel');
    // Cancel asks first; without a reason typed, the server records none.
    await page.waitForSelector('#cancel-dialog[open]', { timeout: WAIT_MS });
    await page.click('#cancel-confirm');
    await page.waitForSelector('#tv-status [data-status="cancelled"]', { timeout: WAIT_MS });
    await page.waitForSelector('#tv-outcome:not([hidden])', { timeout: WAIT_MS });
    assert.equal(await page.textContent('#tv-result'), 'Task was cancelled — cancelled on request, no reason given');
    assert.equal(await page.isHidden('#tv-cancel'), true, 'no Cancel button on a finished task');
    await page.waitForSelector(`#task-rows tr[data-id="${id}"] [data-status="cancelled"]`, { timeout: WAIT_MS });
    assert.equal((await app.runtime.get(id))?.status, 'cancelled');

    const before = await logRows(page);
    const stored = await app.runtime.events(id);
    assert.deepEqual(before, stored.map((e) => [e.seq, e.type]), 'the log shows every stored event once, in order');
    assert.equal(before.at(-1)?.[1], 'cancelled');
    assert.ok(before.filter(([, type]) => type === 'progress').length >= 2);

    await page.reload();
    await page.waitForSelector('#tv-status [data-status="cancelled"]', { timeout: WAIT_MS });
    await page.waitForFunction((n) => document.querySelectorAll('#tv-log tr').length === n, before.length, { timeout: WAIT_MS });
    assert.deepEqual(await logRows(page), before, 'reload replays the same event log');
    assert.deepEqual(errors, []);
    await page.close();
  });

  void test('shows the connection dropping and resuming, without losing or repeating events', { skip: SKIP }, async () => {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const errors = collectPageErrors(page);
    const task = await app.runtime.create(Stepped, {});
    await page.goto(`${app.url}/#/tasks/browser/Stepped/${task.id}`);
    await page.waitForSelector('#tv-link[data-link="live"]', { timeout: WAIT_MS });
    await page.waitForFunction(() => document.querySelectorAll('#tv-log tr').length === 3, undefined, { timeout: WAIT_MS });
    await page.evaluate(() => {
      window.seenStates = [];
      const link = document.getElementById('tv-link')!;
      const conn = document.getElementById('conn')!;
      new MutationObserver(() => window.seenStates.push(`link:${link.dataset.link}`, `conn:${conn.dataset.state}`)).observe(link, { attributes: true });
      new MutationObserver(() => window.seenStates.push(`conn:${conn.dataset.state}`)).observe(conn, { attributes: true });
    });

    // Dropped while the task waits; it sends 5 more while the page is reconnecting.
    assert.ok(app.dropStreams(`/stream/browser/Stepped/${task.id}`) >= 1, 'an open stream to drop');
    assert.equal(await app.runtime.signal(task.id, 'more'), true);
    await page.waitForFunction(() => window.seenStates.includes('link:reconnecting') && window.seenStates.includes('conn:reconnecting'), undefined, { timeout: WAIT_MS });
    assert.match(await page.textContent('#conn') ?? '', /Reconnecting/);
    await page.waitForFunction(() => window.seenStates.lastIndexOf('link:live') > window.seenStates.indexOf('link:reconnecting'), undefined, { timeout: WAIT_MS });
    // Live again: the rest arrives on the resumed stream.
    assert.equal(await app.runtime.signal(task.id, 'finish'), true);
    await page.waitForSelector('#tv-status [data-status="completed"]', { timeout: WAIT_MS });
    await page.waitForSelector('#conn[data-state="live"]', { timeout: WAIT_MS });

    const rows = await logRows(page);
    assert.deepEqual(rows.map(([seq]) => seq), Array.from({ length: 11 }, (_, i) => i + 1), 'every event once, in order');
    assert.equal(await page.textContent('#tv-result'), '10');
    assert.deepEqual(errors, []);
    await page.close();
  });

  void test('says when the server is unreachable, and recovers by itself', { skip: SKIP }, async () => {
    const page = await browser.newPage();
    const errors = collectPageErrors(page);
    await page.goto(`${app.url}/`);
    await page.waitForSelector('#conn[data-state="live"]', { timeout: WAIT_MS });
    app.unreachable = true;
    try {
      // 'online' makes the page refresh at once instead of at its next poll.
      await page.evaluate(() => window.dispatchEvent(new Event('online')));
      await page.waitForSelector('#conn[data-state="offline"]', { timeout: WAIT_MS });
      assert.match(await page.textContent('#conn') ?? '', /Offline/);
    } finally {
      app.unreachable = false;
    }
    await page.evaluate(() => window.dispatchEvent(new Event('online')));
    await page.waitForSelector('#conn[data-state="live"]', { timeout: WAIT_MS });
    assert.deepEqual(errors.filter((e) => !/Failed to fetch/.test(e)), []);
    await page.close();
  });

  void test('checks the JSON input before sending, and shows the server\'s problems', { skip: SKIP }, async () => {
    const page = await browser.newPage();
    const errors = collectPageErrors(page);
    await page.goto(`${app.url}/`);
    await page.waitForSelector('#create-type option[value="examples/ExampleTask"]', { state: 'attached', timeout: WAIT_MS });
    const created = app.runtime.list({ limit: 1000 });
    const countBefore = (await created).tasks.length;

    await page.fill('#create-input', '{"steps": ');
    await page.waitForSelector('#create-problems:not([hidden])', { timeout: WAIT_MS });
    assert.match(await page.textContent('#create-problems') ?? '', /Not valid JSON/);
    assert.equal(await page.isDisabled('#create-submit'), true);

    await page.fill('#create-input', '[1, 2]');
    assert.match(await page.textContent('#create-problems') ?? '', /must be a JSON object/);
    assert.equal(await page.isDisabled('#create-submit'), true);

    await page.fill('#create-input', '{"steps": "many"}');
    assert.match(await page.textContent('#create-problems') ?? '', /steps must be integer/);

    // Passes the page's cheap checks, fails the server's schema: the server's problems are shown.
    await page.fill('#create-input', '{"steps": -1}');
    assert.equal(await page.isDisabled('#create-submit'), false);
    await page.click('#create-submit');
    await page.waitForFunction(() => /steps/.test(document.getElementById('create-problems')?.textContent ?? '') && !document.getElementById('create-problems')!.hidden, undefined, { timeout: WAIT_MS });
    assert.equal((await app.runtime.list({ limit: 1000 })).tasks.length, countBefore, 'nothing was created');
    assert.deepEqual(errors, []);
    await page.close();
  });

  /** `UPDATE_SCREENSHOT=1 node test/run.mjs test/browser/dashboard.test.ts` rewrites docs/dashboard.png. */
  void test('screenshot for docs/dashboard.png', { skip: SKIP }, async () => {
    const { runtime } = app;
    const done = await runtime.create('examples/ExampleTask', { message: 'nightly report', steps: 3, delay_ms: 10 });
    await runtime.create('examples/AsyncGeneratorTask', { count: 5, delay_ms: 10 });
    await runtime.create('examples/HttpFetchTask', { url: 'http://127.0.0.1:9/unreachable.json' });
    await runtime.create('examples/ContinueTask', { message: 'waiting for approval', timeout_ms: 60_000 });
    await runtime.create('examples/ExampleTask', { message: 'reindex', steps: 400, delay_ms: 1000 });
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const errors = collectPageErrors(page);
    await page.goto(`${app.url}/`);
    await page.waitForSelector(`#task-rows tr[data-id="${done.id}"] [data-status="completed"]`, { timeout: WAIT_MS });
    const id = await startFromForm(page, { message: 'import customers.csv', steps: 40, delay_ms: 100 });
    await page.waitForFunction(() => Number(document.querySelector('#tv-progress [role=progressbar]')?.getAttribute('aria-valuenow')) >= 40, undefined, { timeout: WAIT_MS });
    await page.waitForSelector(`#task-rows tr[data-id="${id}"] [data-status="running"]`, { timeout: WAIT_MS });
    await page.waitForSelector('#task-rows [data-status="failed"]', { timeout: WAIT_MS });
    // Regenerating the committed picture is opt-in, so a test run leaves the work tree clean.
    const path = process.env.UPDATE_SCREENSHOT === '1' ? join(ROOT, 'docs/dashboard.png') : join(tmpdir(), `taskstream-dashboard-${process.pid}.png`);
    mkdirSync(dirname(path), { recursive: true });
    await page.screenshot({ path });
    if (path.startsWith(tmpdir())) rmSync(path, { force: true });
    assert.deepEqual(errors, []);
    await page.close();
  });
});
