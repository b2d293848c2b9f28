/**
 * Every code block of README.md, examples/README.md and docs/ runs as written on this Node, against
 * the built package as a user's project sees it: a temp project (`"type": "module"`, as the README
 * tells a user to set up) whose node_modules links `taskstream` to this checkout and the rest to
 * its dependencies. The conventions are in ./blocks.ts. TypeScript blocks are also type-checked,
 * strictly, in one `tsc` run. Relative links in the same files must point at files in the repo.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { watchProcess } from '../cli/helpers.js';
import { type Block, blocksOf, docFiles } from './blocks.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WAIT = 30_000;
const files = docFiles(ROOT);
const blocks = files.flatMap((f) => blocksOf(ROOT, f));

let project = '';

/** A project like the README's `npm init -y && npm pkg set type=module && npm install taskstream`. */
function makeProject(): string {
  assert.ok(existsSync(join(ROOT, 'dist/src/index.js')), 'the package is not built: npm run build');
  const dir = mkdtempSync(join(tmpdir(), 'taskstream-docs-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'my-app', private: true, type: 'module' }));
  const modules = join(dir, 'node_modules');
  mkdirSync(join(modules, '.bin'), { recursive: true });
  for (const name of readdirSync(join(ROOT, 'node_modules'))) {
    if (name !== '.bin' && name !== 'taskstream') symlinkSync(join(ROOT, 'node_modules', name), join(modules, name));
  }
  for (const name of readdirSync(join(ROOT, 'node_modules/.bin'))) symlinkSync(join(ROOT, 'node_modules/.bin', name), join(modules, '.bin', name));
  symlinkSync(ROOT, join(modules, 'taskstream'));
  symlinkSync(join(ROOT, 'bin/taskstream.js'), join(modules, '.bin/taskstream'));
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true,
      skipLibCheck: true, lib: ['ES2023', 'DOM'], types: ['node'],
    },
    include: ['blocks/**/*.ts'],
  }));
  return dir;
}

const fileName = (b: Block): string => `${b.file.replace(/[/.]/g, '_')}_${b.line}.${b.lang === 'sh' ? 'sh' : b.lang}`;

function command(b: Block, path: string): [string, string[]] {
  if (b.lang === 'sh') return ['bash', ['-euo', 'pipefail', path]];
  return [process.execPath, b.lang === 'ts' ? ['--import', 'tsx', path] : [path]];
}

/** Each block runs in its own directory of the project (so files it writes do not meet). */
function prepare(b: Block, code: string): { cwd: string; path: string } {
  const cwd = join(project, 'blocks', fileName(b).replace(/\.\w+$/, ''));
  mkdirSync(cwd, { recursive: true });
  const path = join(cwd, fileName(b));
  writeFileSync(path, code);
  return { cwd, path };
}

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, PATH: `${join(project, 'node_modules/.bin')}:${process.env.PATH ?? ''}` };
  delete e.TASKSTREAM_URL;
  delete e.TASKSTREAM_TOKEN;
  delete e.NODE_OPTIONS;
  return { ...e, ...extra };
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = net.createServer().once('error', fail).listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => ok(port));
    });
  });
}

async function runBlock(b: Block): Promise<void> {
  let code = b.code;
  let extra: Record<string, string> = {};
  let server: ReturnType<typeof watchProcess> | undefined;
  const where = `${b.file}:${b.line}`;
  try {
    if (b.withServer) {
      const db = join(project, `serve-${fileName(b)}.db`);
      server = watchProcess(spawn(process.execPath, [join(ROOT, 'bin/taskstream.js'), 'serve', '--port', '0', '--db', db], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] }));
      const [, url = ''] = await server.line(/listening on (http:\/\/\S+)/, WAIT);
      code = code.replaceAll('http://127.0.0.1:8888', url).replaceAll('127.0.0.1:8888', url.replace('http://', ''));
      extra = { TASKSTREAM_URL: url };
    }
    const { cwd, path } = prepare(b, code);
    const [cmd, args] = command(b, path);
    if (b.asServer) {
      const port = await freePort();
      const proc = watchProcess(spawn(cmd, args, { cwd, env: env({ PORT: String(port) }), stdio: ['ignore', 'pipe', 'pipe'] }));
      try {
        await proc.line(/listening/, WAIT);
        const res = await fetch(`http://127.0.0.1:${port}/health`);
        assert.equal(res.status, 200, `${where}: GET /health`);
        proc.child.kill('SIGTERM');
        const { code: exit } = await proc.exit(WAIT);
        assert.equal(exit, 0, `${where}: exit after SIGTERM\n${proc.stderr()}`);
      } finally {
        proc.kill();
      }
      return;
    }
    // Its own process group, so that anything the block leaves running (a server started with `&`)
    // is found and ended: a leftover would hold the test's pipes open.
    const proc = watchProcess(spawn(cmd, args, { cwd, env: env(extra), stdio: ['ignore', 'pipe', 'pipe'], detached: true }));
    try {
      const { code: exit, signal } = await proc.exit(WAIT);
      assert.equal(exit, 0, `${where} exited ${exit ?? signal}\n--- stdout ---\n${proc.stdout()}\n--- stderr ---\n${proc.stderr()}`);
      for (const text of b.expect) assert.ok(proc.stdout().includes(text), `${where}: output lacks "${text}"\n${proc.stdout()}`);
    } finally {
      proc.kill();
      killGroup(proc.child.pid);
    }
  } finally {
    server?.child.kill('SIGTERM');
    if (server) await server.exit(WAIT).catch(() => server?.kill());
  }
}

describe('code blocks of the docs run as written', { timeout: 10 * WAIT }, () => {
  before(() => {
    project = makeProject();
  });
  after(() => {
    if (project) rmSync(project, { recursive: true, force: true });
  });

  test('the docs have code blocks, and every runnable one is run or says why not', () => {
    assert.ok(blocks.filter((b) => b.lang !== undefined && b.notRun === undefined).length >= 5);
    for (const b of blocks) if (b.lang === undefined) assert.equal(b.notRun, undefined, `${b.file}:${b.line}: a shown block needs no "not run"`);
  });

  for (const b of blocks.filter((x) => x.lang !== undefined)) {
    test(`${b.file}:${b.line} (${b.info})`, { skip: b.notRun === undefined ? false : `not run: ${b.notRun}` }, () => runBlock(b));
  }

  test('the TypeScript blocks type-check (strict)', () => {
    const ts = blocks.filter((b) => b.lang === 'ts' && b.notRun === undefined);
    for (const b of ts) prepare(b, b.code);
    const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(project, 'tsconfig.json')], { encoding: 'utf8', timeout: WAIT });
    const located = tsc.stdout.replace(/\S*blocks\/[^/]+\/(\S+?)_(\d+)\.ts\((\d+),(\d+)\)/g, (_m, f: string, line: string, l: string, c: string) => `${f.replace(/_md$/, '.md').replace(/_/g, '/')} block at line ${line}, (${l},${c})`);
    assert.equal(tsc.status, 0, located || tsc.stderr);
  });
});

test('relative links in the docs point at files inside the repository', () => {
  const broken: string[] = [];
  for (const file of files) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = decodeURIComponent(m[1]!.split('#')[0]!);
      if (target === '' || /^[a-z]+:/i.test(target)) continue;
      const path = resolve(ROOT, dirname(file), target);
      if (relative(ROOT, path).startsWith('..')) broken.push(`${file}: ${m[1]} leaves the repository`);
      else if (!existsSync(path)) broken.push(`${file}: ${m[1]} does not exist`);
    }
  }
  assert.deepEqual(broken, []);
});

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // the group is gone: nothing was left behind
  }
}
