/**
 * `migrate` and `cleanup` work on the database file directly. The count cleanup prints is the
 * count it deletes: a dry run's count equals the later real run's, and the rows are gone after.
 */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ExampleTask } from '../../examples/tasks.js';
import { createTaskstream, sqliteStore } from '../../src/index.js';
import { runCli, tempDir } from './helpers.js';

void test('migrate applies the migrations once, then says there is nothing to apply', async () => {
  using dir = tempDir();
  const db = join(dir.path, 'm.db');
  const first = await runCli(['migrate', '--db', db]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /applied migration 001_init\.sql\n.*applied migration 002_retention\.sql/);
  assert.match(first.stdout, /migrated \(2 applied: 001_init\.sql, 002_retention\.sql\)/);
  const second = await runCli(['migrate', '--db', db]);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /up to date; nothing to apply/);
  assert.doesNotMatch(second.stdout, /applied migration/);
  const conn = new Database(db, { readonly: true });
  try {
    assert.deepEqual(conn.prepare('SELECT version FROM schema_migrations').pluck().all(), [1, 2]);
  } finally {
    conn.close();
  }
});

void test('cleanup: the dry run counts exactly what the real run deletes; recent and unfinished tasks stay', async () => {
  using dir = tempDir();
  const db = join(dir.path, 'c.db');
  // Five finished tasks and one pending one, made with the library.
  const runtime = await createTaskstream({ store: sqliteStore(db), tasks: [ExampleTask] });
  const ids: number[] = [];
  try {
    for (let i = 0; i < 5; i++) ids.push((await runtime.create(ExampleTask, { message: `t${i}`, steps: 1, delay_ms: 0 })).id);
    for (const id of ids) {
      for await (const event of await runtime.subscribe(id)) if (event.type === 'complete') break;
    }
  } finally {
    await runtime.close();
  }
  const conn = new Database(db);
  try {
    // Three of them finished two hours ago; a pending task never counts, however old.
    const old = Date.now() - 2 * 3_600_000;
    conn.prepare(`UPDATE tasks SET finished_at = ? WHERE id IN (${ids.slice(0, 3).join(',')})`).run(old);
    conn.prepare("INSERT INTO tasks (app, type, status, input, run_at, created_at) VALUES ('examples', 'ExampleTask', 'pending', '{}', ?, ?)").run(old, old);
  } finally {
    conn.close();
  }

  const dry = await runCli(['cleanup', '--older-than', '1h', '--dry-run', '--db', db]);
  assert.equal(dry.code, 0, dry.stderr);
  const [, wouldDelete] = dry.stdout.match(/would delete (\d+) finished tasks? older than 1h \(dry run\)/) ?? [];
  assert.equal(wouldDelete, '3');

  const real = await runCli(['cleanup', '--older-than', '60m', '--db', db]);
  assert.equal(real.code, 0, real.stderr);
  const [, deleted] = real.stdout.match(/deleted (\d+) finished tasks? older than 1h/) ?? [];
  assert.equal(deleted, wouldDelete);

  const check = new Database(db, { readonly: true });
  try {
    assert.equal(check.prepare('SELECT COUNT(*) FROM tasks').pluck().get(), 3, 'two recent finished + one pending remain');
    assert.equal(check.prepare(`SELECT COUNT(*) FROM events WHERE task_id IN (${ids.slice(0, 3).join(',')})`).pluck().get(), 0, 'their events are gone too');
  } finally {
    check.close();
  }
  const again = await runCli(['cleanup', '--older-than', '1h', '--db', db]);
  assert.match(again.stdout, /deleted 0 finished tasks/);
});

void test('cleanup of a missing database fails without creating it', async () => {
  using dir = tempDir();
  const result = await runCli(['cleanup', '--older-than', '7d', '--db', join(dir.path, 'none.db')]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^taskstream: no database at /);
});

void test('a file that is not a SQLite database is refused with its path, and left as it was', async () => {
  using dir = tempDir();
  const notDb = join(dir.path, 'README.md');
  writeFileSync(notDb, '# not a database\n');
  for (const args of [['cleanup', '--older-than', '1h', '--db', notDb], ['migrate', '--db', notDb], ['serve', '--port', '0', '--db', notDb]]) {
    const result = await runCli(args);
    assert.equal(result.code, 2, `${args[0]}: ${result.stderr}`);
    assert.equal(result.stderr.trim(), `taskstream: --db ${notDb}: not a SQLite database (give a new file name, or an existing taskstream database)`);
  }
  assert.equal(readFileSync(notDb, 'utf8'), '# not a database\n');
});
