/**
 * The one-file example apps as a user starts them (`node --import tsx examples/express.ts`): they
 * listen on PORT and keep their tasks in TASKSTREAM_DB, and stop cleanly on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { settingsFromEnv } from '../../examples/settings.js';
import { cleanEnv, ROOT, tempDir, watchProcess } from '../cli/helpers.js';

const WAIT = 30_000;
/** tsx by its path: the apps run in a temp directory, where `--import tsx` would not resolve. */
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

for (const app of ['express', 'fastify', 'hono']) {
  void test(`examples/${app}.ts listens on PORT, stores in TASKSTREAM_DB, exits 0 on SIGTERM`, { timeout: 3 * WAIT }, async () => {
    using dir = tempDir();
    const db = join(dir.path, 'app.db');
    const proc = watchProcess(spawn(process.execPath, ['--import', TSX, join(ROOT, `examples/${app}.ts`)], {
      cwd: dir.path, env: cleanEnv({ PORT: '0', TASKSTREAM_DB: db }), stdio: ['ignore', 'pipe', 'pipe'],
    }));
    try {
      const [, url = ''] = await proc.line(/on (http:\/\/127\.0\.0\.1:\d+)\/hello/, WAIT);
      assert.notEqual(new URL(url).port, '3000');
      assert.equal((await fetch(`${url}/hello`)).status, 200);
      const created = await fetch(`${url}/taskstream/tasks/examples/ExampleTask`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: 'm', steps: 1, delay_ms: 0 }),
      });
      assert.equal(created.status, 201);
      assert.ok(existsSync(db), 'the task went to TASKSTREAM_DB');
      assert.ok(!existsSync(join(dir.path, 'taskstream.db')) && !existsSync(join(dir.path, 'example-app.db')), 'and to no default file');
      proc.child.kill('SIGTERM');
      assert.equal((await proc.exit(WAIT)).code, 0, proc.stderr());
    } finally {
      proc.kill();
    }
  });
}

void test('settingsFromEnv: defaults apart from npm start\'s file, and a bad PORT is refused by name', () => {
  assert.deepEqual(settingsFromEnv({}), { port: 3000, dbPath: './example-app.db' });
  assert.deepEqual(settingsFromEnv({ PORT: '4000', TASKSTREAM_DB: '/x/t.db' }), { port: 4000, dbPath: '/x/t.db' });
  assert.throws(() => settingsFromEnv({ PORT: 'http' }), /PORT must be a whole number from 0 to 65535, got "http"/);
});
