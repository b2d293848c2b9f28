/**
 * examples/nextjs as a user runs it: copied into a project of its own whose node_modules holds
 * taskstream as installed (dist/, bin/, package.json), `next build`, `next start` on a free port;
 * then the route handler serves the API, the SSE stream and the dashboard, and (with Chromium) the
 * page's useTaskStream shows a task to its end.
 *
 * Cost: the build is the slow part (about 30–60 s on 2 cores); it runs once for the file.
 * `--webpack`: the other packages are links into this checkout's node_modules, which Turbopack
 * refuses to read outside the project root; a real install works with either bundler.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CHROMIUM, launchBrowser, SKIP } from '../browser/harness.js';
import { type Cli, cleanEnv, ROOT, watchProcess } from '../cli/helpers.js';

const BUILD_MS = 300_000;
const WAIT = 30_000;

function project(): string {
  const dir = mkdtempSync(join(tmpdir(), 'taskstream-nextjs-'));
  for (const name of ['app', 'next.config.ts', 'tsconfig.json']) cpSync(join(ROOT, 'examples/nextjs', name), join(dir, name), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'nextjs-example', private: true, type: 'module' }));
  const modules = join(dir, 'node_modules');
  mkdirSync(join(modules, 'taskstream'), { recursive: true });
  for (const name of ['dist', 'bin', 'package.json']) cpSync(join(ROOT, name), join(modules, 'taskstream', name), { recursive: true });
  for (const name of readdirSync(join(ROOT, 'node_modules'))) {
    if (name !== '.bin' && name !== 'taskstream') symlinkSync(join(ROOT, 'node_modules', name), join(modules, name));
  }
  return dir;
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = net.createServer().once('error', fail).listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => ok(port));
    });
  });
}

const NEXT = (dir: string): string => join(dir, 'node_modules/next/dist/bin/next');

describe('examples/nextjs: a route handler mounting createFetchHandler, a page using useTaskStream', { timeout: BUILD_MS + 4 * WAIT }, () => {
  let dir = '';
  let server: Cli | undefined;
  let url = '';

  before(async () => {
    dir = project();
    const env = cleanEnv({ NEXT_TELEMETRY_DISABLED: '1', TASKSTREAM_DB: join(dir, 'tasks.db') });
    const build = watchProcess(spawn(process.execPath, [NEXT(dir), 'build', '--webpack'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] }));
    try {
      const { code } = await build.exit(BUILD_MS);
      assert.equal(code, 0, `next build failed\n${build.stdout()}\n${build.stderr()}`);
    } finally {
      build.kill();
    }
    const port = await freePort();
    server = watchProcess(spawn(process.execPath, [NEXT(dir), 'start', '-p', String(port), '-H', '127.0.0.1'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] }));
    await server.line(/Ready in/, WAIT);
    url = `http://127.0.0.1:${port}`;
  });

  after(async () => {
    if (server) {
      server.child.kill('SIGTERM');
      await server.exit(WAIT).catch(() => server?.kill());
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the API under /taskstream: create, the raw SSE stream to its end, the dashboard', async () => {
    const created = await fetch(`${url}/taskstream/tasks/examples/ExampleTask`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: 'next', steps: 2, delay_ms: 10 }),
    });
    assert.equal(created.status, 201);
    const task = await created.json() as { stream_url: string };
    assert.match(task.stream_url, /^\/taskstream\/stream\/examples\/ExampleTask\/\d+$/);
    const stream = await fetch(`${url}${task.stream_url}`, { headers: { accept: 'text/event-stream' }, signal: AbortSignal.timeout(WAIT) });
    assert.equal(stream.headers.get('content-type'), 'text/event-stream');
    const body = await stream.text();
    assert.deepEqual([...body.matchAll(/^event: (\S+)$/gm)].map((m) => m[1]), ['start', 'progress', 'progress', 'complete']);
    const dashboard = await fetch(`${url}/taskstream/`);
    assert.equal(dashboard.status, 200);
    assert.match(await dashboard.text(), /<html/i);
  });

  test('the page starts a task and useTaskStream shows its events to the end', { skip: SKIP }, async () => {
    assert.ok(CHROMIUM);
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      await page.goto(url);
      await page.getByRole('button', { name: 'Start' }).click();
      await page.getByTestId('status').filter({ hasText: 'completed' }).waitFor({ timeout: WAIT });
      const events = await page.getByTestId('events').locator('li code').allTextContents();
      assert.deepEqual(events, ['start', 'progress', 'progress', 'progress', 'progress', 'progress', 'complete']);
    } finally {
      await browser.close();
    }
  });
});
