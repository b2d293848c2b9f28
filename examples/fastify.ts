/**
 * taskstream mounted under `/taskstream` in a Fastify 5 app, next to the app's own routes.
 *
 *   PORT=3000 TASKSTREAM_DB=./example-app.db node --import tsx examples/fastify.ts
 *
 * The plain Node handler runs on Fastify's raw req/res: `reply.hijack()` tells Fastify the response
 * is ours (SSE streams stay open), and `basePath` strips the prefix and puts it back in front of
 * generated URLs. The routes live in an encapsulated plugin whose only content-type parser leaves the
 * body unread, so the handler reads it itself (its own size limit, 415 for non-JSON, 400 for bad JSON);
 * the rest of the app keeps Fastify's JSON parser.
 */
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
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
  const app = Fastify();
  app.get('/hello', async () => 'Hello from the Fastify app');

  const handler = createHandler(runtime, { basePath: '/taskstream' });
  await app.register(async (scope) => {
    // Only inside this plugin: every body stays unread for taskstream's handler.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
    const serve = (request: FastifyRequest, reply: FastifyReply): void => {
      reply.hijack();
      handler(request.raw, reply.raw);
    };
    // `/taskstream` itself (redirected to `/taskstream/`) and everything below it.
    scope.all('/taskstream', serve);
    scope.all('/taskstream/*', serve);
  });

  await app.listen({ port, host: '127.0.0.1' });
  const { port: bound } = app.server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${bound}`,
    // The runtime first: it ends open streams after their last stored event, then the server stops.
    close: () => (closing ??= (async () => {
      await runtime.close({ timeoutMs: 5000 });
      await app.close();
    })()),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { url, close } = await start(settingsFromEnv());
  console.log(`Fastify app on ${url}/hello, taskstream under ${url}/taskstream/ (dashboard) and ${url}/taskstream/tasks/...`);
  const stop = (): void => {
    void close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
