/**
 * taskstream's whole HTTP API (tasks, SSE streams, the dashboard) under /taskstream, as a Next.js
 * route handler. One runtime per server process, kept on globalThis so that dev-mode reloads of
 * this module do not open a second one on the same file.
 */
import type { FetchHandler } from 'taskstream';

export const runtime = 'nodejs'; // SQLite and long-lived streams: not the Edge runtime
export const dynamic = 'force-dynamic'; // never cache or prerender: every response is live

const shared = globalThis as { taskstreamHandler?: Promise<FetchHandler> };
shared.taskstreamHandler ??= start();

async function start(): Promise<FetchHandler> {
  // Loaded by Node at run time, not bundled: taskstream reads its SQL migrations and dashboard
  // files from its own directory, and better-sqlite3 is a native module.
  const { createFetchHandler, createTaskstream, sqliteStore } = await import(/* webpackIgnore: true */ /* turbopackIgnore: true */ 'taskstream');
  const { exampleTasks } = await import(/* webpackIgnore: true */ /* turbopackIgnore: true */ 'taskstream/examples');
  const ts = await createTaskstream({ store: sqliteStore(process.env.TASKSTREAM_DB || './example-app.db'), tasks: exampleTasks });
  return createFetchHandler(ts, { basePath: '/taskstream' });
}

async function handle(request: Request): Promise<Response> {
  return (await shared.taskstreamHandler!)(request);
}

export { handle as GET, handle as HEAD, handle as POST };
