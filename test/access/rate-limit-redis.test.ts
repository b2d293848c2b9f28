/**
 * The rate limit on a Redis store holds across processes: two servers (two runtimes, two
 * handlers) sharing one Redis count one budget per client address. Skipped when no Redis answers
 * on REDIS_URL (default redis://127.0.0.1:6379); keys live under a prefix unique to this run and
 * are deleted afterwards.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { createClient } from 'redis';
import { startServer } from '../http/helpers.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A connected client, or undefined when no Redis answers. */
async function connect() {
  const client = createClient({ url: REDIS_URL, socket: { reconnectStrategy: false, connectTimeout: 2000 } });
  client.on('error', () => {});
  try {
    await client.connect();
    return client;
  } catch {
    return undefined;
  }
}

const redis = await connect();

void test('with a Redis store, the rate limit is shared by every server on it', { skip: redis === undefined ? `no Redis at ${REDIS_URL}` : false }, async () => {
  const keyPrefix = `ts-access-rl-${randomUUID()}`;
  // A minute's window, so a slow machine cannot see it roll over mid-test.
  const rateLimit = { points: 4, durationSec: 60, store: redis!, keyPrefix };
  const a = await startServer({ http: { limits: { rateLimit } } });
  const b = await startServer({ http: { limits: { rateLimit } } });
  try {
    const statuses: number[] = [];
    for (const url of [a.url, b.url, a.url, b.url, a.url, b.url]) statuses.push((await fetch(`${url}/tasks`)).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429]);
  } finally {
    await a.close();
    await b.close();
    const keys = await redis!.keys(`${keyPrefix}*`);
    if (keys.length > 0) await redis!.del(keys);
    await redis!.quit();
  }
});

if (redis !== undefined && !redis.isOpen) await redis.quit().catch(() => {});
