/**
 * The dashboard at phone width (390 × 844, an iPhone 12–15): nothing is cut off, the event log's
 * data gets the width, Cancel asks for confirmation and takes a reason, and after a reload the
 * task reads exactly as it did live (outcome wording, the list row's progress).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { type BrowserServer, buildDashboard, collectPageErrors, launchBrowser, SKIP, startServer, WAIT_MS } from './harness.js';

const PHONE = { width: 390, height: 844 };

async function snapshot(page: Page, id: number): Promise<{ outcome: string; pct: string }> {
  await page.waitForSelector('#tv-outcome:not([hidden])', { timeout: WAIT_MS });
  // The list row's percentage: live it comes from the watch; after a reload from the replayed log.
  await page.waitForFunction((taskId) => /%$/.test(document.querySelector(`#task-rows tr[data-id="${taskId}"] .pct`)?.textContent ?? ''), id, { timeout: WAIT_MS });
  return {
    outcome: (await page.textContent('#tv-result')) ?? '',
    pct: (await page.textContent(`#task-rows tr[data-id="${id}"] .pct`)) ?? '',
  };
}

void describe('dashboard at phone width', () => {
  let app: BrowserServer;
  let browser: Browser;
  before(async () => {
    if (SKIP) return;
    buildDashboard();
    app = await startServer();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await app?.close();
  });

  void test('fits 390 px; cancel asks and takes a reason; a reload reads the same as live', { skip: SKIP }, async () => {
    const page = await browser.newPage({ viewport: PHONE });
    const errors = collectPageErrors(page);
    // Far longer than the test (10,000 × 50 ms): it is still running when Cancel is clicked, however slow the machine.
    const task = await app.runtime.create('examples/ExampleTask', { message: 'a message long enough to wrap on a phone', steps: 10_000, delay_ms: 50 });
    await page.goto(`${app.url}/#/tasks/examples/ExampleTask/${task.id}`);
    await page.waitForFunction(() => Number(document.querySelector('#tv-progress [role=progressbar]')?.getAttribute('aria-valuenow')) > 0, undefined, { timeout: WAIT_MS });

    // Nothing wider than the screen; the list's status and progress are on screen, not scrolled away.
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), PHONE.width);
    for (const cell of ['[data-status]', '.progress-cell']) {
      const box = await page.locator(`#task-rows tr[data-id="${task.id}"] ${cell}`).first().boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE.width, `${cell} is within the screen: ${JSON.stringify(box)}`);
    }
    // The event data gets most of the width (it wrapped a few characters per line before).
    const data = await page.locator('#tv-log td.data').first().boundingBox();
    assert.ok(data && data.width >= 250, `event data is ${data?.width} px wide`);

    await page.click('#tv-cancel');
    await page.waitForSelector('#cancel-dialog[open]', { timeout: WAIT_MS });
    await page.click('#cancel-keep');
    await page.waitForSelector('#cancel-dialog', { state: 'hidden', timeout: WAIT_MS });
    assert.equal((await app.runtime.get(task.id))?.status, 'running', '"Keep running" keeps it running');

    await page.click('#tv-cancel');
    await page.fill('#cancel-reason', 'started with the wrong input');
    await page.click('#cancel-confirm');
    await page.waitForSelector('#tv-status [data-status="cancelled"]', { timeout: WAIT_MS });
    const live = await snapshot(page, task.id);
    assert.equal(live.outcome, 'Task was cancelled — reason: “started with the wrong input”');
    assert.equal((await app.runtime.get(task.id))?.cancelReason, 'started with the wrong input');
    assert.match(live.pct, /^\d+%$/);

    await page.reload();
    await page.waitForSelector('#tv-status [data-status="cancelled"]', { timeout: WAIT_MS });
    assert.deepEqual(await snapshot(page, task.id), live, 'after a reload the task reads as it did live');
    assert.deepEqual(errors, []);
    await page.close();
  });
});
