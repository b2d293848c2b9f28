/**
 * taskstream mounted under `/taskstream` in a Hono 4 app on Node (@hono/node-server), next to the
 * app's own routes.
 *
 *   PORT=3000 TASKSTREAM_DB=./example-app.db node --import tsx examples/hono.ts
 *
 * The Fetch handler (`Request → Response`) is mounted with `hono/mount`'s `mount()` (the successor of
 * the deprecated `app.mount()`). `replaceRequest: false` passes the request unchanged: by default
 * Hono strips the prefix, which works too, but then `/taskstream` and `/taskstream/` look the same and
 * the bare prefix cannot be redirected to `/taskstream/`. `basePath` strips the prefix instead and
 * puts it in front of generated URLs (`Location`, `stream_url`).
 */
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { mount } from 'hono/mount';
import { createFetchHandler, createTaskstream, sqliteStore } from '../src/index.js';
import { settingsFromEnv } from './settings.js';
import { exampleTasks } from './tasks.js';

export interface StartOptions {
  /** Default 3000; 0 picks a free port. */
  readonly port?: number;
  /** SQLite file. Default ./example-app.db. */
  readonly dbPath?: string;
}

export interface Started {
  /** e.g. http://127.0.0.1:3000 (taskstream is at `${url}/taskstream`). */
  readonly url: string;
  close(): Promise<void>;
}

export async function start({ port = 3000, dbPath = './example-app.db' }: StartOptions = {}): Promise<Started> {
  const runtime = await createTaskstream({ store: sqliteStore(dbPath), tasks: exampleTasks });
  const app = new Hono();
  app.get('/hello', (c) => c.text('Hello from the Hono app'));
  // `/taskstream/*` also matches `/taskstream` itself.
  app.all('/taskstream/*', mount(createFetchHandler(runtime, { basePath: '/taskstream' }), { replaceRequest: false }));

  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, () => resolve(s));
  });
  const { port: bound } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${bound}`,
    // The runtime first: it ends open streams after their last stored event, then the server stops.
    close: () => (closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await runtime.close({ timeoutMs: 5000 });
      if ('closeAllConnections' in server) server.closeAllConnections();
      await closed;
    })()),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { url, close } = await start(settingsFromEnv());
  console.log(`Hono app on ${url}/hello, taskstream under ${url}/taskstream/ (dashboard) and ${url}/taskstream/tasks/...`);
  const stop = (): void => {
    void close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
