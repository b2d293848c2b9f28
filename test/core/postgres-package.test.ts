/**
 * The PostgreSQL store as users get it: behind the `taskstream/postgres` subpath of the built
 * package, with its migrations shipped, while the root export never loads `pg`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, test } from 'node:test';
import { z } from 'zod';
import { pgAdmin, pgReachable, pgSettings, withDatabase } from '../support/pg.js';
import { collect } from './helpers.js';

void test('the root export does not load pg (an optional peer dependency)', () => {
  const script = `
    import { createRequire } from 'node:module';
    await import('taskstream');
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => /[\\\\/]node_modules[\\\\/]pg[\\\\/]/.test(k));
    process.stdout.write(JSON.stringify(loaded));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), []);
});

const unreachable = await pgReachable();

void test('taskstream/postgres from the built package migrates a fresh schema and runs a task', { skip: unreachable ?? false }, async () => {
  const settings = pgSettings();
  const db = `${settings.prefix}pkg_${process.pid}`;
  await pgAdmin(`CREATE DATABASE "${db}"`);
  after(() => pgAdmin(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`));
  const url = withDatabase(settings.url, db);
  const root = 'taskstream';
  const sub = 'taskstream/postgres';
  const pkg = (await import(root)) as typeof import('../../src/index.js');
  const { postgresStore } = (await import(sub)) as typeof import('../../src/store/postgres/index.js');
  const store = postgresStore({ connectionString: url, schema: 'pkg' });
  const Hello = pkg.defineTask({ app: 'pkg', type: 'Hello', input: z.object({ who: z.string() }), run: (_ctx, { who }) => `hello ${who}` });
  await using rt = await pkg.createTaskstream({ store, tasks: [Hello] });
  const task = await rt.create(Hello, { who: 'postgres' });
  const events = await collect(await rt.subscribe(task.id), 5000);
  assert.deepEqual(events.map((e) => [e.type, e.data]), [['complete', { final_value: 'hello postgres' }]]);
  assert.deepEqual((await store.migrate()).applied, [], 'already migrated at start');
});
