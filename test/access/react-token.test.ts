/**
 * `useTaskStream` against a server with Access on: given the create response (with its
 * stream_token) and only a baseUrl, it streams the task to its end; without a token it reports
 * the 401 as an error.
 */
import '../client/fixtures/fake-dom.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import type { TaskRefInput } from '../../src/client/index.js';
import { useTaskStream, type UseTaskStreamResult } from '../../src/react/index.js';
import { createContainer } from '../client/fixtures/fake-dom.js';
import { post, startServer, within } from '../http/helpers.js';

const KEY = 'react-key-0123456789abcdef';

function watchWithHook(ref: TaskRefInput, baseUrl: string, done: (r: UseTaskStreamResult) => boolean): { result: Promise<UseTaskStreamResult>; unmount(): void } {
  let resolve!: (r: UseTaskStreamResult) => void;
  const result = new Promise<UseTaskStreamResult>((r) => (resolve = r));
  function View(): null {
    const state = useTaskStream(ref, { baseUrl });
    queueMicrotask(() => {
      if (done(state)) resolve(state);
    });
    return null;
  }
  const root = createRoot(createContainer());
  root.render(createElement(View));
  return { result, unmount: () => root.unmount() };
}

void test('useTaskStream with a task JSON carrying stream_token streams it with no key; without the token: error 401', async () => {
  const s = await startServer({ http: { access: { apiKeys: [KEY] } } });
  try {
    const { json: task } = await post(`${s.url}/tasks/examples/SyncGeneratorTask`, { items: ['a', 'b'] }, { authorization: `Bearer ${KEY}` });
    const withToken = watchWithHook(task, s.url, (r) => r.status === 'completed' || r.status === 'error');
    const done = await within(10_000, withToken.result, 'the hook to finish');
    withToken.unmount();
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.events.map((e) => e.type), ['progress', 'progress', 'complete']);

    const bare = watchWithHook(`examples/SyncGeneratorTask/${task.id}`, s.url, (r) => r.status === 'error' || r.status === 'completed');
    const refused = await within(10_000, bare.result, 'the hook to fail');
    bare.unmount();
    assert.equal(refused.status, 'error');
    assert.equal((refused.error as { status?: number }).status, 401);
  } finally {
    await s.close();
  }
});
