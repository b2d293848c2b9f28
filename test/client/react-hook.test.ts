/**
 * `useTaskStream` mounted with react-dom/client (on a minimal fake DOM, see fixtures/fake-dom.ts)
 * against a real server: one connection per mounted ref, closed on unmount and on ref change,
 * none for a null ref, none again after the terminal event, no duplicate under StrictMode.
 */
import './fixtures/fake-dom.js';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createElement, StrictMode } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import type { exampleTasks } from '../../examples/tasks.js';
import { createClient, TaskCancelledError, type TaskstreamClient } from '../../src/client/index.js';
import { useTaskStream, type UseTaskStreamResult } from '../../src/react/index.js';
import { createContainer } from './fixtures/fake-dom.js';
import { startServer, type TestServer, within } from './fixtures/server.js';

interface Harness {
  /** The hook's result at the latest render. */
  readonly current: () => UseTaskStreamResult;
  /** Resolves at the first render (past or future) whose result satisfies `check`. */
  until(check: (r: UseTaskStreamResult) => boolean, what: string, ms?: number): Promise<UseTaskStreamResult>;
  render(taskRef: string | null): void;
  unmount(): void;
}

function mount(client: TaskstreamClient, taskRef: string | null, strict = false): Harness {
  let latest: UseTaskStreamResult | undefined;
  const waiters = new Set<() => void>();
  function View(props: { taskRef: string | null }): null {
    latest = useTaskStream(props.taskRef, { client });
    queueMicrotask(() => waiters.forEach((w) => w()));
    return null;
  }
  const root: Root = createRoot(createContainer());
  const render = (r: string | null): void => {
    const view = createElement(View, { taskRef: r });
    root.render(strict ? createElement(StrictMode, null, view) : view);
  };
  render(taskRef);
  return {
    current: () => latest!,
    until: (check, what, ms = 5000) => within(ms, new Promise((resolve) => {
      const waiter = (): void => {
        if (latest === undefined || !check(latest)) return;
        waiters.delete(waiter);
        resolve(latest);
      };
      waiters.add(waiter);
      waiter();
    }), what),
    render,
    unmount: () => root.unmount(),
  };
}

void describe('useTaskStream (mounted)', { timeout: 20_000 }, () => {
  let srv: TestServer;
  let client: TaskstreamClient<typeof exampleTasks>;
  before(async () => {
    srv = await startServer();
    client = createClient<typeof exampleTasks>({ baseUrl: srv.baseUrl });
  });
  after(() => srv.close());
  const streamsOf = (id: number): number => srv.streams.filter((r) => r.path.endsWith(`/${id}`)).length;

  void test('streams a task to completed with progress; one connection, none again after the end', async () => {
    const task = await client.create('examples/ExampleTask', { steps: 3, delay_ms: 5 });
    const h = mount(client, `examples/ExampleTask/${task.id}`);
    const done = await h.until((r) => r.status === 'completed', 'completed');
    assert.deepEqual(done.events.map((e) => e.type), ['start', 'progress', 'progress', 'progress', 'complete']);
    assert.equal(done.progress, 1);
    assert.equal(done.error, null);
    assert.equal(done.last?.data.final_value, `Completed processing: Hello from ExampleTask`);
    const request = srv.streams.find((r) => r.path.endsWith(`/${task.id}`))!;
    await within(2000, request.closed, 'the stream to end');
    // Re-rendering with the same ref keeps the finished state and does not connect again.
    h.render(`examples/ExampleTask/${task.id}`);
    await h.until((r) => r !== done, 'a re-render');
    assert.equal(h.current().status, 'completed');
    assert.equal(streamsOf(task.id), 1);
    h.unmount();
  });

  void test('a null ref makes no request; setting one connects; unmount closes the connection', async () => {
    const task = await client.create('examples/ContinueTask', { timeout_ms: 60_000 });
    const before = srv.streams.length;
    const h = mount(client, null);
    await h.until((r) => r.status === 'idle', 'idle');
    assert.equal(srv.streams.length, before);
    await assert.rejects(h.current().cancel(), TypeError);
    h.render(`examples/ContinueTask/${task.id}`);
    await h.until((r) => r.status === 'running' && r.last?.type === 'started', 'started');
    const request = srv.streams.find((r) => r.path.endsWith(`/${task.id}`))!;
    h.unmount();
    await within(2000, request.closed, 'the connection to close on unmount');
    await client.cancel(task);
  });

  void test('changing the ref closes the old connection and shows only the new task', async () => {
    const first = await client.create('examples/ContinueTask', { timeout_ms: 60_000 });
    const second = await client.create('examples/ExampleTask', { steps: 1, delay_ms: 1 });
    const h = mount(client, `examples/ContinueTask/${first.id}`);
    await h.until((r) => r.last?.type === 'started', 'first task started');
    const firstRequest = srv.streams.find((r) => r.path.endsWith(`/${first.id}`))!;
    h.render(`examples/ExampleTask/${second.id}`);
    await within(2000, firstRequest.closed, 'the old connection to close');
    const done = await h.until((r) => r.status === 'completed', 'second task completed');
    assert.deepEqual(done.events.map((e) => e.type), ['start', 'progress', 'complete']);
    h.unmount();
    await client.cancel(first);
  });

  void test('cancel() from the hook ends the task as cancelled with a typed error', async () => {
    const task = await client.create('examples/ContinueTask', { timeout_ms: 60_000 });
    const h = mount(client, `examples/ContinueTask/${task.id}`);
    await h.until((r) => r.last?.type === 'started', 'started');
    assert.equal((await h.current().cancel('from the hook')).cancelled, true);
    const ended = await h.until((r) => r.status === 'cancelled', 'cancelled');
    assert.ok(ended.error instanceof TaskCancelledError);
    assert.equal(ended.error.reason, 'from the hook');
    h.unmount();
  });

  void test('under StrictMode (effects run twice) events are not duplicated', async () => {
    const task = await client.create('examples/ExampleTask', { steps: 2, delay_ms: 5 });
    const h = mount(client, `examples/ExampleTask/${task.id}`, true);
    const done = await h.until((r) => r.status === 'completed', 'completed');
    assert.deepEqual(done.events.map((e) => e.seq), [1, 2, 3, 4]);
    h.unmount();
  });

  void test('a stream error (404) shows status error with the typed error, and no retry loop', async () => {
    const h = mount(client, 'examples/ExampleTask/999999');
    const failed = await h.until((r) => r.status === 'error', 'error');
    assert.equal((failed.error as { status?: number }).status, 404);
    assert.equal(srv.streams.filter((r) => r.path.endsWith('/999999')).length, 1);
    h.unmount();
  });
});
