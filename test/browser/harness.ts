/**
 * Shared setup of the browser tests: a real taskstream server on 127.0.0.1 (port 0) with the
 * example tasks, a few extra test-only pages on the same origin (so `EventSource` and `fetch` need
 * no CORS), a record of every SSE request the server got, and a headless Chromium.
 *
 * Without /usr/bin/chromium the tests are skipped (`SKIP`), never failed or silently passed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { type Browser, chromium, type Page } from 'playwright-core';
import { exampleTasks } from '../../examples/tasks.js';
import { createHandler, type HttpOptions } from '../../src/http/index.js';
import { type AnyTaskDefinition, createTaskstream, sqliteStore, type Taskstream } from '../../src/index.js';
import { within } from '../support/within.js';

/** Debian's Chromium (`apt-get install chromium`); CHROMIUM_PATH overrides it (e.g. to check the skip). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** `test(name, { skip: SKIP }, …)`: a reason to skip when no browser is installed, else false. */
export const SKIP: string | false = existsSync(CHROMIUM) ? false : 'chromium not installed: apt-get install chromium';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Bounds every wait of these tests. */
export const WAIT_MS = 15_000;

export interface TestPage {
  readonly contentType: string;
  readonly body: string;
}

/** An SSE request the server received, with its socket, so a test can cut it from the server side. */
export interface StreamRequest {
  readonly path: string;
  readonly lastEventId: string | undefined;
  readonly req: http.IncomingMessage;
  /** Resolves when the server's side of the connection closes (the client went away, or the stream ended). */
  readonly closed: Promise<void>;
}

export interface BrowserServer {
  readonly runtime: Taskstream;
  readonly server: http.Server;
  readonly url: string;
  readonly streams: StreamRequest[];
  /** Destroys the open SSE connections whose path starts with `prefix`; returns how many. */
  dropStreams(prefix: string): number;
  /** While true, every request's socket is destroyed unanswered: the server looks unreachable. */
  unreachable: boolean;
  close(): Promise<void>;
}

/** `tasks` are registered beside the example tasks. */
export async function startServer(options: { http?: HttpOptions; pages?: Record<string, TestPage>; tasks?: readonly AnyTaskDefinition[] } = {}): Promise<BrowserServer> {
  const dir = mkdtempSync(join(tmpdir(), 'taskstream-browser-'));
  const runtime = await createTaskstream({ store: sqliteStore(join(dir, 'tasks.db')), tasks: [...exampleTasks, ...(options.tasks ?? [])] });
  const handler = createHandler(runtime, options.http);
  const streams: StreamRequest[] = [];
  const pages = options.pages ?? {};
  const state = { unreachable: false };
  const server = http.createServer((req, res) => {
    if (state.unreachable) {
      req.socket.destroy();
      return;
    }
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const page = Object.hasOwn(pages, path) ? pages[path] : undefined;
    if (page) {
      res.writeHead(200, { 'content-type': page.contentType, 'cache-control': 'no-store' });
      res.end(page.body);
      return;
    }
    if (path.startsWith('/stream/')) {
      const header = req.headers['last-event-id'];
      const closed = new Promise<void>((resolve) => res.once('close', resolve));
      streams.push({ path, lastEventId: Array.isArray(header) ? header[0] : header, req, closed });
    }
    handler(req, res);
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    runtime,
    server,
    url: `http://127.0.0.1:${port}`,
    streams,
    get unreachable() {
      return state.unreachable;
    },
    set unreachable(value) {
      state.unreachable = value;
    },
    dropStreams(prefix) {
      let n = 0;
      for (const s of streams) {
        if (!s.path.startsWith(prefix) || s.req.socket.destroyed) continue;
        s.req.socket.destroy();
        n++;
      }
      return n;
    },
    close() {
      closing ??= (async () => {
        server.closeAllConnections();
        server.close();
        await runtime.close();
        rmSync(dir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * Collects the page's uncaught exceptions and console errors, for a test to assert there were none.
 * Failed resource loads are left out: the tests drop connections on purpose and check the
 * network effects themselves (and Chromium asks every page for a /favicon.ico).
 */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) errors.push(`console.error: ${msg.text()}`);
  });
  return errors;
}

/** Builds the dashboard's app.js, as `npm run build` does. */
export function buildDashboard(): void {
  execFileSync(process.execPath, [join(ROOT, 'scripts/build-dashboard.mjs')], { stdio: 'inherit' });
}

/** Bundles a browser entry point (TypeScript or TSX) into one script, in memory. */
export async function bundle(entry: string, options: { globalName?: string } = {}): Promise<string> {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [entry],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'chrome109',
    write: false,
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
    ...(options.globalName ? { globalName: options.globalName } : {}),
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error(`esbuild produced nothing for ${entry}`);
  return file.text;
}

export { within };

export function html(body: string): TestPage {
  return { contentType: 'text/html; charset=utf-8', body: `<!doctype html><meta charset="utf-8"><title>test</title>${body}` };
}

export function js(body: string): TestPage {
  return { contentType: 'text/javascript; charset=utf-8', body };
}
