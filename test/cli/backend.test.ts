/**
 * The cluster flags of the CLI: `--db postgres://…` (or TASKSTREAM_DB) for migrate and cleanup,
 * `--redis`/`--redis-prefix` checked before anything starts, and `/ready` reporting the bus.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ExampleTask } from '../../examples/tasks.js';
import { createTaskstream } from '../../src/index.js';
import { postgresStore } from '../../src/store/postgres/index.js';
import { pgAdmin } from '../support/pg.js';
import { POSTGRES_URL, REDIS_URL, skipUnlessPostgres, skipUnlessRedis } from '../support/services.js';
import { runCli, startServer, tempDir } from './helpers.js';

const pgSkip = await skipUnlessPostgres();
const redisSkip = await skipUnlessRedis();

void test('--redis-prefix without --redis, or a --redis that is not a redis:// URL, is bad usage (exit 2) and starts nothing', async () => {
  using dir = tempDir();
  const db = join(dir.path, 'x.db');
  const noRedis = await runCli(['serve', '--port', '0', '--db', db, '--redis-prefix', 'p']);
  assert.equal(noRedis.code, 2);
  assert.match(noRedis.stderr, /--redis-prefix needs --redis/);
  const badUrl = await runCli(['serve', '--port', '0', '--db', db, '--redis', 'http://127.0.0.1:6379']);
  assert.equal(badUrl.code, 2);
  assert.match(badUrl.stderr, /expected a redis:\/\/ or rediss:\/\/ URL/);
});

describe('on PostgreSQL', { skip: pgSkip }, () => {
  const name = `ts_bus_cli_${process.pid}`;
  const url = POSTGRES_URL.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
  let created = false;
  after(async () => {
    if (created) await pgAdmin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  });

  void test('migrate --db postgres://… applies the migrations, then has nothing to apply; cleanup takes TASKSTREAM_DB', async () => {
    await pgAdmin(`CREATE DATABASE "${name}"`);
    created = true;
    const first = await runCli(['migrate', '--db', url]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /applied migration 001/);
    const second = await runCli(['migrate'], { env: { TASKSTREAM_DB: url } });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /is up to date; nothing to apply/);
    const cleanup = await runCli(['cleanup', '--older-than', '1h', '--dry-run'], { env: { TASKSTREAM_DB: url } });
    assert.equal(cleanup.code, 0, cleanup.stderr);
    assert.match(cleanup.stdout, /would delete 0 finished tasks/);
  });

  void test('list --db postgres://… reads the tasks straight from the database, newest first', async () => {
    const runtime = await createTaskstream({ store: postgresStore({ connectionString: url }), tasks: [ExampleTask], concurrency: 1 });
    try {
      await runtime.create(ExampleTask, { message: 'one', steps: 0, delay_ms: 0 }, { runAt: new Date(Date.now() + 3_600_000) });
      await runtime.create(ExampleTask, { message: 'two', steps: 0, delay_ms: 0 }, { runAt: new Date(Date.now() + 3_600_000) });
    } finally {
      await runtime.close();
    }
    const listed = await runCli(['list', '--db', url, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const page = JSON.parse(listed.stdout) as { tasks: Array<{ id: number; status: string; input: { message: string } }>; next: number | null };
    assert.deepEqual(page.tasks.map((t) => [t.input.message, t.status]), [['two', 'pending'], ['one', 'pending']]);
    const table = await runCli(['list', '--db', url, '--limit', '1']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /\(more: --before \d+\)/);
  });
});

void test('serve --redis: /ready reports the bus; TASKSTREAM_REDIS is read like the flag', { skip: redisSkip }, async () => {
  using dir = tempDir();
  const prefix = `ts-bus-cli-${randomBytes(4).toString('hex')}`;
  const server = await startServer(join(dir.path, 'r.db'), ['--redis', REDIS_URL, '--redis-prefix', prefix]);
  try {
    assert.match(server.stdout(), new RegExp(`bus redis://127\\.0\\.0\\.1:6379/? \\(prefix ${prefix}\\)`));
    const ready = await fetch(`${server.url}/ready`);
    assert.equal(ready.status, 200);
    assert.deepEqual(((await ready.json()) as { checks: unknown }).checks, { store: 'ok', bus: 'ok' });
  } finally {
    server.kill();
  }
  const viaEnv = await runCli(['serve', '--port', '0', '--db', join(dir.path, 'e.db'), '--redis-prefix', 'p'], { env: { TASKSTREAM_REDIS: 'http://x' } });
  assert.equal(viaEnv.code, 2, 'TASKSTREAM_REDIS is read (and checked) like --redis');
});
