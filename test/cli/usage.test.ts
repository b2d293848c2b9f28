/**
 * Bad usage exits with code 2 and a one-line reason on stderr, no stack trace, and nothing runs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from './helpers.js';

const cases: Array<{ args: string[]; mentions: RegExp }> = [
  { args: [], mentions: /missing command/ },
  { args: ['frobnicate'], mentions: /unknown command 'frobnicate'/ },
  { args: ['serve', '--prot', '1'], mentions: /unknown option '--prot'/ },
  { args: ['serve', '--port', 'abc'], mentions: /--port.*'abc'.*0 to 65535/ },
  { args: ['serve', '--port', '70000'], mentions: /--port.*'70000'/ },
  { args: ['serve', '--port', '1', '--socket', '/tmp/x.sock'], mentions: /--socket.*cannot be used with.*--port/ },
  { args: ['serve', '--host', '0.0.0.0', '--port', '0', '--db', ':memory:'], mentions: /--insecure/ },
  { args: ['serve', '--no-examples', '--db', ':memory:'], mentions: /no task types/ },
  { args: ['serve', '--tasks', 'test/cli/fixtures/missing.ts', '--db', ':memory:'], mentions: /no such file/ },
  { args: ['create', 'examples/ExampleTask', '--input', '{bad'], mentions: /--input.*not valid JSON/ },
  { args: ['create', 'examples/ExampleTask', '--input', '[1]'], mentions: /--input.*JSON object/ },
  { args: ['create', 'examples'], mentions: /app\/type/ },
  { args: ['create', 'examples/ExampleTask', '--url', 'ftp://x'], mentions: /--url/ },
  { args: ['tail', 'examples/ExampleTask/abc'], mentions: /app\/type\/id/ },
  { args: ['tail', 'examples/ExampleTask/1', '--last-event-id', '-3'], mentions: /--last-event-id/ },
  { args: ['signal', 'examples/ContinueTask/1', 'continue', '--payload', 'nope'], mentions: /--payload.*not valid JSON/ },
  { args: ['list', '--status', 'done'], mentions: /--status.*pending/ },
  { args: ['list', '--limit', '0'], mentions: /--limit.*1 to 1000/ },
  { args: ['cleanup', '--older-than', '5x'], mentions: /--older-than.*'5x'.*duration/ },
  { args: ['cleanup'], mentions: /required option '--older-than/ },
  { args: ['serve', '--port', '0', '--redis-prefix', 'p'], mentions: /--redis-prefix needs --redis/ },
  { args: ['migrate', 'extra'], mentions: /too many arguments/ },
  { args: ['serve', '--concurrency', '-1'], mentions: /--concurrency.*'-1'.*whole number >= 0/ },
  { args: ['serve', '--concurrency', '1.5'], mentions: /--concurrency.*'1.5'.*whole number >= 0/ },
];

for (const { args, mentions } of cases) {
  void test(`taskstream ${args.join(' ') || '(no arguments)'} → exit 2, one line`, async () => {
    const { code, stdout, stderr } = await runCli(args);
    assert.equal(code, 2, `exit code; stderr: ${stderr}`);
    assert.equal(stdout, '');
    const lines = stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `one line on stderr, got:\n${stderr}`);
    assert.match(lines[0] ?? '', /^taskstream: /);
    assert.match(lines[0] ?? '', mentions);
    assert.doesNotMatch(stderr, /\bat .*:\d+:\d+\)?$/m, 'no stack trace');
  });
}

void test('--help exits 0 and lists the commands', async () => {
  const { code, stdout } = await runCli(['--help']);
  assert.equal(code, 0);
  for (const name of ['serve', 'create', 'tail', 'cancel', 'signal', 'list', 'cleanup', 'migrate']) assert.match(stdout, new RegExp(`\\b${name}\\b`));
});
