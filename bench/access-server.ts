/**
 * The server bench/access.ts measures: taskstream's Node handler on a temp SQLite file, with
 * Access on (`--key K [--secret S]`: an API key, and a stream token verified per stream) or off. Everything
 * else is the same. It prints `port <n>` once listening and exits when stdin closes.
 *
 * One task type, `bench/Emit {events}`: waits for the signal `go`, then sends `events` events
 * (one ctx.send per turn, so group commit batches them) and returns.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createHandler, createTaskstream, defineTask, type HttpOptions, sqliteStore } from '../src/index.js';

const { values } = parseArgs({ options: { key: { type: 'string' }, secret: { type: 'string' } } });

const Emit = defineTask({
  app: 'bench',
  type: 'Emit',
  input: z.object({ events: z.number().int().min(0), wait: z.boolean().default(true) }),
  async run(ctx, { events, wait }) {
    if (wait) await ctx.waitForSignal('go');
    for (let i = 1; i <= events; i++) void ctx.send('tick', { i });
    return events;
  },
});

const dir = mkdtempSync(join(tmpdir(), 'taskstream-bench-access-'));
const runtime = await createTaskstream({ store: sqliteStore(join(dir, 'bench.db')), tasks: [Emit], concurrency: 1000 });
const options: HttpOptions = values.key === undefined ? {} : { access: { apiKeys: [values.key], ...(values.secret === undefined ? {} : { tokenSecret: values.secret }) } };
const server = http.createServer(createHandler(runtime, { ...options, dashboard: false }));
server.maxConnections = 100_000;
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
process.stdout.write(`port ${(server.address() as AddressInfo).port}\n`);

process.stdin.resume();
process.stdin.on('end', () => {
  server.closeAllConnections();
  server.close();
  void runtime.close({ timeoutMs: 0 }).finally(() => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
});
