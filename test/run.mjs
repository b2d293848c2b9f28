// Runs the test files under test/ (or the ones named) with node's test runner, TypeScript through tsx.
//
//   node test/run.mjs                                   every test/**/*.test.ts
//   node test/run.mjs test/http/stream.test.ts          one file
//   node test/run.mjs --test-name-pattern=curl test/http/stream.test.ts
//
// - Node 20's `--test` does not expand globs, so the file list is built here.
// - `--enable-source-maps`: without it node reports a test's location in tsx's generated code
//   (`stream.test.ts:1:6436`); with it, the line and column in the .ts file.
// - Files run in parallel, at most TEST_CONCURRENCY at once (default: the core count, at least 2).
//   Most files wait on I/O (subprocesses, sockets, timers), so two on two cores roughly halves the time.
// - Every test process gets a fresh TMPDIR under the system's; anything a test leaves there is
//   listed and fails the run, and the directory is removed either way, so nothing is left behind
//   (tsx's compile cache lives there too, so each run transpiles afresh: about a second in all).
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'fixtures' ? [] : find(path);
    return /\.test\.tsx?$/.test(name) ? [path] : [];
  });
}

const args = process.argv.slice(2);
const flags = args.filter((a) => a.startsWith('--'));
const named = args.filter((a) => !a.startsWith('--'));
const files = named.length > 0 ? named : find('test').sort();
const concurrency = Number(process.env.TEST_CONCURRENCY) || Math.max(2, availableParallelism());

const systemTmp = tmpdir();
const runTmp = mkdtempSync(join(systemTmp, 'taskstream-test-'));
const child = spawn(process.execPath, [
  '--enable-source-maps', '--import', 'tsx',
  '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...flags, ...files,
], { stdio: 'inherit', env: { ...process.env, TMPDIR: runTmp, TEMP: runTmp, TMP: runTmp } });

// Ctrl-C reaches the whole foreground process group by itself; a SIGTERM sent to this process alone
// is passed on, so the tests' own cleanup runs before the temp directory goes.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));

child.on('exit', (code, signal) => {
  // tsx keeps its compile cache in the temp directory (tsx-<uid>): not something a test left.
  const left = readdirSync(runTmp).filter((name) => !/^tsx-\d+$/.test(name));
  rmSync(runTmp, { recursive: true, force: true });
  if (left.length > 0) {
    console.error(`\n✖ the tests left ${left.length} entr${left.length === 1 ? 'y' : 'ies'} in the temp directory (removed now):`);
    for (const name of left.slice(0, 20)) console.error(`  ${name}`);
  }
  process.exit(signal ? 1 : code !== 0 ? (code ?? 1) : left.length > 0 ? 1 : 0);
});
