/**
 * The state logic of `useTaskStream` (a pure reducer), driven by hand and by a real server's
 * stream; plus what can be checked of the hook itself without a DOM: a server render makes no
 * request. (The hook in a real browser is covered by the browser suite.)
 */
import assert from 'node:assert/strict';
import { createElement } from 'react';
import { renderToString } from 'react-dom/server';
import { after, before, describe, test } from 'node:test';
import type { exampleTasks } from '../../examples/tasks.js';
import {
  createClient, type StreamEvent, TaskCancelledError, TaskFailedError, TaskstreamClientError, TaskTimedOutError,
} from '../../src/client/index.js';
import {
  initialTaskStreamState, progressOf, type TaskStreamState, taskStreamReducer, useTaskStream,
} from '../../src/react/index.js';
import { startServer, type TestServer, within } from './fixtures/server.js';

const KEY = 'examples/ExampleTask/7';

function ev(seq: number, type: string, data: Record<string, unknown> = {}): StreamEvent {
  return { id: seq, seq, type, data, timestamp: new Date(0).toISOString() };
}

function feed(state: TaskStreamState, ...events: StreamEvent[]): TaskStreamState {
  return events.reduce((s, event) => taskStreamReducer(s, { type: 'event', key: KEY, event }), state);
}

void describe('useTaskStream state', () => {
  void test('starts idle without a ref and connecting with one', () => {
    assert.equal(initialTaskStreamState(null).status, 'idle');
    assert.deepEqual(initialTaskStreamState(KEY), { key: KEY, status: 'connecting', events: [], last: null, progress: null, error: null, gap: null });
  });

  void test('events append in order; status running; progress from the last progress-like event', () => {
    let s = feed(initialTaskStreamState(KEY), ev(1, 'start', { total_steps: 4 }));
    assert.deepEqual([s.status, s.progress, s.last?.seq], ['running', null, 1]);
    s = feed(s, ev(2, 'progress', { step: 1, total_steps: 4 }), ev(3, 'note', { text: 'no progress here' }));
    assert.equal(s.progress, 0.25);
    assert.deepEqual(s.events.map((e) => e.seq), [1, 2, 3]);
    s = feed(s, ev(4, 'progress', { step: 4, total_steps: 4 }), ev(5, 'complete', { final_value: 'ok' }));
    assert.deepEqual([s.status, s.progress, s.error, s.last?.type], ['completed', 1, null, 'complete']);
  });

  void test('progressOf reads step/total_steps, step/total and percentage, clamped to 0..1', () => {
    assert.equal(progressOf({ step: 1, total_steps: 4 }), 0.25);
    assert.equal(progressOf({ step: 3, total: 4, percentage: 10 }), 0.75);
    assert.equal(progressOf({ percentage: 40 }), 0.4);
    assert.equal(progressOf({ percentage: 140 }), 1);
    assert.equal(progressOf({ step: 1, total_steps: 0 }), null);
    assert.equal(progressOf({ step: '1', total_steps: 2 }), null);
    assert.equal(progressOf({ total_steps: 3 }), null);
  });

  void test('duplicates, older events and events of another task are ignored', () => {
    const s = feed(initialTaskStreamState(KEY), ev(1, 'start'), ev(2, 'progress', { percentage: 50 }));
    assert.equal(feed(s, ev(2, 'progress'), ev(1, 'start')), s);
    assert.equal(taskStreamReducer(s, { type: 'event', key: 'examples/ExampleTask/8', event: ev(3, 'x') }), s);
  });

  void test('terminal events set the status and the same typed error result() rejects with; nothing after them counts', () => {
    const failed = feed(initialTaskStreamState(KEY), ev(1, 'start'), ev(2, 'error', { message: 'boom', error_type: 'RangeError' }));
    assert.equal(failed.status, 'failed');
    assert.ok(failed.error instanceof TaskFailedError);
    assert.equal(failed.error.errorType, 'RangeError');
    assert.equal(feed(failed, ev(3, 'progress')), failed);

    const cancelled = feed(initialTaskStreamState(KEY), ev(1, 'cancelled', { message: 'x', reason: 'user' }));
    assert.equal(cancelled.status, 'cancelled');
    assert.ok(cancelled.error instanceof TaskCancelledError);
    assert.equal(cancelled.error.reason, 'user');

    const timedOut = feed(initialTaskStreamState(KEY), ev(1, 'timeout', { message: 'x', timeout_ms: 50 }));
    assert.equal(timedOut.status, 'timed_out');
    assert.ok(timedOut.error instanceof TaskTimedOutError);
    assert.equal(timedOut.error.timeoutMs, 50);
  });

  void test('interrupted puts the task back to pending; the next event makes it running again', () => {
    const s = feed(initialTaskStreamState(KEY), ev(1, 'start'), ev(2, 'interrupted', { reason: 'shutdown' }));
    assert.equal(s.status, 'pending');
    assert.equal(feed(s, ev(3, 'start')).status, 'running');
  });

  void test('start keeps the state of the same task (resume) and resets for another one or after a stream error', () => {
    const s = feed(initialTaskStreamState(KEY), ev(1, 'start'));
    assert.equal(taskStreamReducer(s, { type: 'start', key: KEY }), s);
    assert.deepEqual(taskStreamReducer(s, { type: 'start', key: 'examples/ExampleTask/8' }), initialTaskStreamState('examples/ExampleTask/8'));
    assert.deepEqual(taskStreamReducer(s, { type: 'start', key: null }), initialTaskStreamState(null));
    const broken = taskStreamReducer(s, { type: 'failed', key: KEY, error: new TaskstreamClientError('not_found', 'gone', { status: 404 }) });
    assert.equal(broken.status, 'error');
    assert.ok(broken.error instanceof TaskstreamClientError);
    assert.equal(broken.events.length, 1);
    assert.deepEqual(taskStreamReducer(broken, { type: 'start', key: KEY }), initialTaskStreamState(KEY));
    // A failure reported by an old stream (another task) changes nothing.
    assert.equal(taskStreamReducer(s, { type: 'failed', key: 'examples/ExampleTask/8', error: new Error('x') }), s);
  });

  void test('maxEvents keeps the newest events', () => {
    let s = initialTaskStreamState(KEY);
    for (let seq = 1; seq <= 5; seq++) s = taskStreamReducer(s, { type: 'event', key: KEY, event: ev(seq, 'p'), maxEvents: 3 });
    assert.deepEqual(s.events.map((e) => e.seq), [3, 4, 5]);
    assert.equal(s.last?.seq, 5);
  });
});

void describe('useTaskStream state over a real stream', { timeout: 15_000 }, () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.close());

  void test('an ExampleTask streamed through the reducer ends completed with progress 1', async () => {
    const client = createClient<typeof exampleTasks>({ baseUrl: srv.baseUrl });
    const task = await client.create('examples/ExampleTask', { steps: 3, delay_ms: 5 });
    const key = `examples/ExampleTask/${task.id}`;
    let state = taskStreamReducer(initialTaskStreamState(null), { type: 'start', key });
    const progress: Array<number | null> = [];
    await within(5000, (async () => {
      for await (const event of client.stream(key)) {
        state = taskStreamReducer(state, { type: 'event', key, event });
        progress.push(state.progress);
      }
    })(), 'the stream');
    assert.equal(state.status, 'completed');
    assert.deepEqual(progress, [null, 1 / 3, 2 / 3, 1, 1]);
    assert.deepEqual(state.events.map((e) => e.type), ['start', 'progress', 'progress', 'progress', 'complete']);
  });

  void test('rendering the hook on the server makes no request (effects do not run), with or without a ref', () => {
    let requests = 0;
    const counting: typeof fetch = (input, init) => {
      requests++;
      return fetch(input, init);
    };
    function View(props: { taskRef: string | null }): string {
      const { status, progress } = useTaskStream(props.taskRef, { baseUrl: srv.baseUrl, fetch: counting });
      return `${status}:${String(progress)}`;
    }
    assert.equal(renderToString(createElement(View, { taskRef: null })), 'idle:null');
    assert.equal(renderToString(createElement(View, { taskRef: 'examples/ExampleTask/1' })), 'connecting:null');
    assert.equal(requests, 0);
  });
});
