/**
 * The dashboard in Chromium on a task whose early events retention pruned: the server's `gap`
 * frame is shown as one line naming the pruned range, in the log where those events were, followed
 * by the retained events in order.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { z } from 'zod';
import { defineTask } from '../../src/index.js';
import { type BrowserServer, buildDashboard, collectPageErrors, launchBrowser, SKIP, startServer, WAIT_MS, within } from './harness.js';

const KEEP = 5;
const TICKS = 30;

/** Sends TICKS ticks and completes; the store keeps only its KEEP newest events. */
const Pruned = defineTask({
  app: 'browser',
  type: 'Pruned',
  input: z.object({}),
  retention: { events: KEEP },
  async run(ctx) {
    for (let i = 1; i <= TICKS; i++) await ctx.send('tick', { i });
    return TICKS;
  },
});

void describe('dashboard in Chromium: events pruned by retention', () => {
  let app: BrowserServer;
  let browser: Browser;

  before(async () => {
    if (SKIP) return;
    buildDashboard();
    app = await startServer({ tasks: [Pruned] });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await app?.close();
  });

  void test('a finished task\'s pruned events show as one gap line naming their range, then the kept events', { skip: SKIP }, async () => {
    const { runtime } = app;
    const created = await runtime.create(Pruned, {});
    // Drain a subscription to the end: the terminal event is stored, so pruning is done.
    await within(WAIT_MS, (async () => {
      for await (const event of await runtime.subscribe(created.id)) void event;
    })(), 'the task to finish');
    const task = (await runtime.get(created.id))!;
    const last = TICKS + 1; // the ticks, then `complete`
    assert.equal(task.status, 'completed');
    assert.deepEqual([task.firstSeq, task.lastSeq], [last - KEEP + 1, last], 'the store kept only the newest events');
    const pruned = task.firstSeq - 1;

    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const errors = collectPageErrors(page);
    await page.goto(`${app.url}/#/tasks/browser/Pruned/${task.id}`);
    await page.waitForSelector('#tv-status [data-status="completed"]', { timeout: WAIT_MS });
    // The gap line plus the KEEP kept events.
    await page.waitForFunction((n) => document.querySelectorAll('#tv-log tr').length === n, KEEP + 1, { timeout: WAIT_MS });

    const rows = await page.$$eval('#tv-log tr', (trs) => trs.map((tr) => ({ seq: Number(tr.getAttribute('data-seq')), gap: tr.classList.contains('ev-gap'), text: tr.textContent ?? '' })));
    assert.deepEqual(rows[0], {
      seq: pruned,
      gap: true,
      text: `Events 1–${pruned} were pruned by the server's retention (it keeps only the newest events).`,
    }, 'the first line is the gap, naming the pruned range');
    assert.deepEqual(rows.slice(1).map((r) => [r.seq, r.gap]), Array.from({ length: KEEP }, (_, i) => [task.firstSeq + i, false]), 'then every kept event once, in order');
    assert.match(rows.at(-1)!.text, /complete/);
    // A gap line stands for its events: no "earlier events are not shown" note.
    assert.equal(await page.isHidden('#tv-lognote'), true);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
