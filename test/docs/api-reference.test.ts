/**
 * docs/api/ is generated from the TSDoc comments by TypeDoc (`npm run docs`) and committed, so it
 * can be read in the repository. This regenerates it into a temp directory and fails, naming the
 * files, when the committed copy is stale.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.set(relative(dir, path), readFileSync(path, 'utf8'));
    }
  };
  walk(dir);
  return out;
}

test('docs/api is what `npm run docs` generates from the current source', { timeout: 180_000 }, () => {
  const out = mkdtempSync(join(tmpdir(), 'taskstream-typedoc-'));
  try {
    const run = spawnSync(process.execPath, [join(ROOT, 'node_modules/typedoc/bin/typedoc'), '--out', out, '--logLevel', 'Warn'], { cwd: ROOT, encoding: 'utf8', timeout: 170_000 });
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    assert.equal(run.stdout.trim(), '', 'TypeDoc has no warnings');
    const fresh = files(out);
    const committed = files(join(ROOT, 'docs/api'));
    const stale = [...new Set([...fresh.keys(), ...committed.keys()])].filter((f) => fresh.get(f) !== committed.get(f)).sort();
    assert.deepEqual(stale, [], 'docs/api is stale: run `npm run docs` and commit it');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
