/**
 * taskstream mounted under `/taskstream` in an Express 5 app, next to the app's own routes.
 *
 *   PORT=3000 TASKSTREAM_DB=./example-app.db node --import tsx examples/express.ts
 *   curl -X POST -H 'content-type: application/json' -d '{"message":"hi","delay_ms":500}' \
 *     http://127.0.0.1:3000/taskstream/tasks/examples/ExampleTask
 *   curl -N http://127.0.0.1:3000/taskstream/stream/examples/ExampleTask/1
 *
 * `app.use(prefix, handler)` strips the prefix itself (into req.baseUrl); the handler puts it back in
 * front of the URLs it generates (`Location`, `stream_url`). No body parser is needed for taskstream's
 * routes: the handler reads the raw body (or takes req.body when express.json() ran first).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import express from 'express';
import { createHandler, createTaskstream, sqliteStore } from '../src/index.js';
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
  const app = express();
  app.get('/hello', (_req, res) => {
    res.type('text/plain').send('Hello from the Express app');
  });
  app.use('/taskstream', createHandler(runtime));

  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const { port: bound } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${bound}`,
    // The runtime first: it ends open streams after their last stored event, then the server stops.
    close: () => (closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await runtime.close({ timeoutMs: 5000 });
      server.closeAllConnections();
      await closed;
    })()),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { url, close } = await start(settingsFromEnv());
  console.log(`Express app on ${url}/hello, taskstream under ${url}/taskstream/ (dashboard) and ${url}/taskstream/tasks/...`);
  const stop = (): void => {
    void close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
