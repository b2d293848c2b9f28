/**
 * `taskstream/client` and `taskstream/react` bundle for the browser with esbuild as they are:
 * no Node built-ins, no server code, and the client bundle runs with only web globals.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runInNewContext } from 'node:vm';
import { build } from 'esbuild';

async function bundle(entry: string, format: 'esm' | 'iife'): Promise<string> {
  const result = await build({
    entryPoints: [entry], bundle: true, platform: 'browser', format, write: false, logLevel: 'silent',
    external: ['react'], globalName: format === 'iife' ? 'taskstream' : undefined, target: 'es2022',
  });
  assert.deepEqual(result.errors, []);
  return result.outputFiles[0]!.text;
}

void test('the client and the hook bundle for the browser without Node built-ins or server code', async () => {
  for (const entry of ['src/client/index.ts', 'src/react/index.ts']) {
    const code = await bundle(entry, 'esm');
    assert.doesNotMatch(code, /\bnode:|require\(|process\.|Buffer\b|better-sqlite3|zod/, entry);
  }
  const react = await bundle('src/react/index.ts', 'esm');
  assert.match(react, /from "react"/);
  assert.match(react, /useTaskStream/);
});

void test('the client bundle runs in a context with only web globals', async () => {
  const code = await bundle('src/client/index.ts', 'iife');
  const web = { fetch, Headers, Response, AbortController, AbortSignal, TextDecoder, URLSearchParams, setTimeout, clearTimeout };
  const sandbox: Record<string, unknown> = { ...web };
  sandbox.globalThis = sandbox;
  runInNewContext(code, sandbox);
  const api = sandbox.taskstream as { createClient: (o: { baseUrl: string }) => { stream: unknown; result: unknown } };
  const client = api.createClient({ baseUrl: 'http://127.0.0.1:1' });
  assert.equal(typeof client.stream, 'function');
  assert.equal(typeof client.result, 'function');
});
