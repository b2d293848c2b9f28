/**
 * Runs the real CLI as a subprocess (from source, through tsx) and synchronises on its output.
 * Every wait is bounded and fails the test with what the process printed so far.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RUN = join(ROOT, 'src/cli/run.ts');

export interface Cli {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the first line of `stream` (default stdout) matching `pattern` (its match), waiting up to `timeoutMs`. */
  line(pattern: RegExp, timeoutMs?: number, stream?: 'stdout' | 'stderr'): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or 128 + signal number style name) within `timeoutMs`. */
  exit(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(): void;
}

export function cli(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}): Cli {
  const child = spawn(process.execPath, ['--import', 'tsx', RUN, ...args], {
    cwd: options.cwd ?? ROOT,
    env: cleanEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return watchProcess(child);
}

/** Synchronises on the output and exit of any child spawned with stdout and stderr piped. */
export function watchProcess(child: ChildProcess): Cli {
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  const poke = (): void => waiters.forEach((w) => w());
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { out += chunk; poke(); });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { err += chunk; poke(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { resolve({ code, signal }); });
  });
  exited.then(poke, poke);
  const describe = (): string => `\n--- stdout ---\n${out}\n--- stderr ---\n${err}`;

  return {
    child,
    stdout: () => out,
    stderr: () => err,
    line(pattern, timeoutMs = 15_000, stream = 'stdout') {
      return new Promise((resolve, reject) => {
        let done = false;
        const check = (): void => {
          if (done) return;
          for (const line of (stream === 'stdout' ? out : err).split('\n')) {
            const m = line.match(pattern);
            if (m) return finish(() => resolve(m));
          }
          if (child.exitCode !== null || child.signalCode !== null) {
            finish(() => reject(new Error(`process exited before printing ${pattern}${describe()}`)));
          }
        };
        const timer = setTimeout(() => finish(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${pattern}${describe()}`))), timeoutMs);
        const finish = (fn: () => void): void => {
          done = true;
          clearTimeout(timer);
          waiters.delete(check);
          fn();
        };
        waiters.add(check);
        check();
      });
    },
    async exit(timeoutMs = 15_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`process did not exit within ${timeoutMs} ms${describe()}`)), timeoutMs);
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** The parent's environment without the CLI's own variables, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.TASKSTREAM_URL;
  delete env.TASKSTREAM_TOKEN;
  return { ...env, ...extra };
}

/** Runs a command to completion. */
export async function runCli(args: string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = cli(args, options);
  try {
    const { code } = await proc.exit(options.timeoutMs ?? 30_000);
    return { code, stdout: proc.stdout(), stderr: proc.stderr() };
  } finally {
    proc.kill();
  }
}

export function tempDir(): { path: string; [Symbol.dispose](): void } {
  const path = mkdtempSync(join(tmpdir(), 'taskstream-cli-'));
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

/** Starts `serve` on a random port with a temp db; resolves once it prints its address. */
export async function startServer(db: string, extra: string[] = []): Promise<Cli & { url: string }> {
  const proc = cli(['serve', '--port', '0', '--db', db, '--shutdown-timeout', '5000', ...extra]);
  try {
    const [, url = ''] = await proc.line(/listening on (http:\/\/\S+)/);
    return Object.assign(proc, { url });
  } catch (err) {
    proc.kill();
    throw err;
  }
}
