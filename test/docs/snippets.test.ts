/**
 * The JavaScript blocks of docs/replay.md and docs/retention.md run as written (Node ESM, importing
 * the built package by its name), and print what the text around them says.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
// Inside the package directory, so `import … from 'taskstream'` resolves to this package (dist/).
const dir = mkdtempSync(join(ROOT, '.docs-check-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function blocks(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

function run(code: string, name: string): string {
  const path = join(dir, name);
  writeFileSync(path, code);
  const result = spawnSync(process.execPath, [path], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.status, 0, `${name} exited with ${result.status}\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

describe('docs code blocks', { timeout: 180_000 }, () => {
  test('docs/replay.md', () => {
    const [late, two] = blocks('docs/replay.md');
    assert.ok(late !== undefined && two !== undefined, 'two js blocks');
    assert.match(run(late, 'replay-0.mjs'), /^all 1 progress\n[\s\S]*all 6 complete\nafter 3 4 progress\nafter 3 5 progress\nafter 3 6 complete\n$/);
    assert.match(run(two, 'replay-1.mjs'), /^1 progress\n[\s\S]*10 progress\n11 complete\n$/);
  });

  test('docs/retention.md', () => {
    const [first] = blocks('docs/retention.md');
    assert.ok(first !== undefined, 'a js block');
    assert.match(run(first, 'retention-0.mjs'), /^events 1\.\.91 were pruned\n92 progress\n[\s\S]*101 complete\nkept seq 92\.\.101\n$/);
  });
});
