/**
 * `npm start` as a user runs it: the npm wrapper must not stand between a signal and the server.
 * SIGTERM to the npm process (what a process manager sends) and Ctrl-C (SIGINT to the terminal's
 * whole process group: npm and the server both get it, and npm forwards it once more) drain the
 * server and exit 0, and the port is free afterwards.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { cleanEnv, ROOT, tempDir, watchProcess } from './helpers.js';

const WAIT = 30_000;

async function npmStart(db: string): Promise<{ proc: ReturnType<typeof watchProcess>; port: number }> {
  // detached: its own process group, like a shell job, so the group can be signalled as Ctrl-C does.
  const child = spawn('npm', ['start', '--', '--port', '0', '--db', db], { cwd: ROOT, env: cleanEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = watchProcess(child);
  try {
    const [, port = ''] = await proc.line(/listening on http:\/\/127\.0\.0\.1:(\d+)/, WAIT);
    return { proc, port: Number(port) };
  } catch (err) {
    killGroup(child.pid);
    throw err;
  }
}

function killGroup(pid: number | undefined): void {
  try {
    if (pid !== undefined) process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function portRefuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(true));
  });
}

for (const [name, send] of [
  ['SIGTERM to the npm process', (pid: number) => process.kill(pid, 'SIGTERM')],
  ['Ctrl-C (SIGINT to the process group)', (pid: number) => process.kill(-pid, 'SIGINT')],
] as const) {
  void test(`npm start: ${name} drains the server, npm exits 0, the port is freed`, { timeout: 2 * WAIT }, async () => {
    using dir = tempDir();
    const { proc, port } = await npmStart(join(dir.path, 'tasks.db'));
    try {
      send(proc.child.pid!);
      const { code, signal } = await proc.exit(WAIT);
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, proc.stderr());
      assert.match(proc.stdout(), /taskstream: closed \(exit 0\)/);
      assert.doesNotMatch(proc.stderr(), /second SIG/, 'one Ctrl-C is one signal, not a forced exit');
      assert.equal(await portRefuses(port), true, 'nothing listens on the port any more');
    } finally {
      killGroup(proc.child.pid);
    }
  });
}
