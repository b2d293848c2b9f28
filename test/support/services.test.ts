import assert from 'node:assert/strict';
import { test } from 'node:test';
import { skipUnlessPostgres, skipUnlessRedis } from './services.js';

// Port 1 on loopback: nothing listens there, so the connection is refused at once.
test('an unreachable PostgreSQL or Redis gives a reason to skip, naming the URL', async () => {
  const pgReason = await skipUnlessPostgres('postgres://postgres@127.0.0.1:1/postgres');
  assert.match(String(pgReason), /^postgres not reachable at postgres:\/\/postgres@127\.0\.0\.1:1\/postgres \(.+\)/);
  const redisReason = await skipUnlessRedis('redis://127.0.0.1:1');
  assert.match(String(redisReason), /^redis not reachable at redis:\/\/127\.0\.0\.1:1 \(.+\)/);
});

test('the default services are probed once and reported either way', async () => {
  for (const check of [skipUnlessPostgres, skipUnlessRedis]) {
    const first = check();
    assert.equal(check(), first, 'one probe per URL per process');
    await first;
  }
});
