/**
 * Bad input is refused at the call site with an error of a named class, and nothing is stored
 * half-way: unknown types, input failing its schema, events the log cannot take.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import {
  defineTask, InputValidationError, InvalidEventError, TaskstreamError, UnknownTaskTypeError, type RunContext,
} from '../../src/index.js';
import { assertLog, finished, open, describeBackends } from './helpers.js';

await describeBackends('core', 'bad-input', (tmp) => {

  const Order = defineTask({
    app: 'shop',
    type: 'Order',
    input: z.object({ qty: z.number().int().min(1), address: z.object({ zip: z.string().length(5) }) }),
    run: (_ctx, input) => input.qty,
  });
  const Noop = defineTask({ app: 'shop', type: 'Noop', input: z.object({}), run: () => null });

  /** Runs `probe` inside a task, then sends one good event and completes; returns what `probe` gave. */
  async function insideTask<T>(probe: (ctx: RunContext) => T, options: { maxEventBytes?: number } = {}) {
    let result!: T;
    const Probe = defineTask({
      app: 'core',
      type: 'Probe',
      input: z.object({}),
      async run(ctx) {
        result = probe(ctx);
        await ctx.send('ok', { fine: true });
        return 'done';
      },
    });
    const rt = await open(tmp.db(), { tasks: [Probe], ...options });
    try {
      const task = await finished(rt, (await rt.create(Probe, {})).id);
      assert.equal(task.status, 'completed', `the task stays consistent: ${JSON.stringify(task.error)}`);
      const events = await assertLog(rt, task, 'complete');
      assert.deepEqual(events.map((e) => [e.seq, e.type]), [[1, 'ok'], [2, 'complete']], 'no partial event in the log');
      return result;
    } finally {
      await rt.close();
    }
  }

  /** Calls `send` and returns what it threw synchronously (failing if it did not throw at the call). */
  function thrownBy(send: () => unknown): unknown {
    try {
      const value = send();
      if (value instanceof Promise) value.catch(() => {});
    } catch (err) {
      return err;
    }
    assert.fail('send() should throw at the call site');
  }

  function assertInvalidEvent(err: unknown, pattern: RegExp): void {
    assert.ok(err instanceof InvalidEventError, `an InvalidEventError, got ${String(err)}`);
    assert.ok(err instanceof TaskstreamError, 'a TaskstreamError');
    assert.equal(err.code, 'invalid_event');
    assert.equal(err.name, 'InvalidEventError');
    assert.match(err.message, pattern);
  }

  void describe('bad input', () => {
    void test('an unknown app/type is refused with UnknownTaskTypeError listing the registered types', async () => {
      await using rt = await open(tmp.db(), { tasks: [Order, Noop] });
      for (const kind of ['shop/Refund', { app: 'other', type: 'Order' }, 'nonsense'] as const) {
        await assert.rejects(rt.create(kind, {}), (err: unknown) => {
          assert.ok(err instanceof UnknownTaskTypeError, 'an UnknownTaskTypeError');
          assert.equal(err.code, 'unknown_type');
          assert.match(err.message, /unknown task type/);
          assert.match(err.message, /registered: shop\/Order, shop\/Noop/);
          return true;
        });
      }
      assert.deepEqual((await rt.list()).tasks, [], 'nothing stored');
    });

    void test('input failing its schema is refused with InputValidationError carrying every issue and its path', async () => {
      await using rt = await open(tmp.db(), { tasks: [Order] });
      await assert.rejects(rt.create('shop/Order', { qty: 0, address: { zip: 123 } }), (err: unknown) => {
        assert.ok(err instanceof InputValidationError, 'an InputValidationError');
        assert.equal(err.code, 'invalid_input');
        assert.deepEqual(err.issues.map((i) => i.path).sort(), ['address.zip', 'qty']);
        for (const issue of err.issues) assert.ok(issue.message.length > 0, 'each issue has a message');
        assert.match(err.message, /shop\/Order/);
        assert.match(err.message, /address\.zip/);
        return true;
      });
      await assert.rejects(rt.create('shop/Order', null), InputValidationError);
      assert.deepEqual((await rt.list()).tasks, [], 'nothing stored');
      // And a valid one goes through.
      const ok = await rt.create(Order, { qty: 2, address: { zip: '12345' } });
      assert.equal((await finished(rt, ok.id)).finalValue, 2);
    });

    void test('event data that is not a JSON object is refused at the call site', async () => {
      const errors = await insideTask((ctx) => [
        thrownBy(() => ctx.send('data', 5 as unknown as object)),
        thrownBy(() => ctx.send('data', 'text' as unknown as object)),
        thrownBy(() => ctx.send('data', null as unknown as object)),
        thrownBy(() => ctx.send('data', [1, 2])),
        thrownBy(() => ctx.progress(true as unknown as object)),
      ]);
      for (const err of errors) assertInvalidEvent(err, /data must be a JSON object/);
    });

    void test('reserved and malformed event names are refused', async () => {
      const reserved = ['complete', 'error', 'cancelled', 'timeout', 'retry', 'interrupted'];
      const errors = await insideTask((ctx) => reserved.map((name) => thrownBy(() => ctx.send(name, {}))));
      errors.forEach((err, k) => assertInvalidEvent(err, new RegExp(`"${reserved[k]}" is reserved`)));
      const malformed = await insideTask((ctx) => ['', 'has space', 'new\nline', 'x'.repeat(65)].map((name) => thrownBy(() => ctx.send(name, {}))));
      for (const err of malformed) assertInvalidEvent(err, /must match/);
    });

    void test('data that is not JSON-serialisable (BigInt, circular) or over maxEventBytes is refused', async () => {
      const circular: Record<string, unknown> = { a: 1 };
      circular.self = circular;
      const [big, loop, large, reservedKey] = await insideTask((ctx) => [
        thrownBy(() => ctx.send('data', { n: 10n })),
        thrownBy(() => ctx.send('data', circular)),
        thrownBy(() => ctx.send('data', { text: 'x'.repeat(2000) })),
        thrownBy(() => ctx.send('data', { _seq: 3 })),
      ], { maxEventBytes: 1024 });
      assertInvalidEvent(big, /not JSON-serialisable/);
      assert.ok((big as Error).cause instanceof TypeError, 'the cause is kept');
      assertInvalidEvent(loop, /not JSON-serialisable/);
      assertInvalidEvent(large, /over the limit of 1024/);
      assertInvalidEvent(reservedKey, /"_seq" is reserved/);
    });

    void test('an event at exactly maxEventBytes is stored; one byte more is refused', async () => {
      const Edge = defineTask({
        app: 'core',
        type: 'Edge',
        input: z.object({}),
        async run(ctx) {
          const exact = { t: 'é'.repeat(10) + 'x'.repeat(100 - 8 - 20) }; // {"t":"…"} is 8 bytes; é is 2
          assert.equal(Buffer.byteLength(JSON.stringify(exact)), 100);
          await ctx.send('exact', exact);
          return String(thrownBy(() => ctx.send('over', { t: exact.t + 'x' })));
        },
      });
      await using rt = await open(tmp.db(), { tasks: [Edge], maxEventBytes: 100 });
      const task = await finished(rt, (await rt.create(Edge, {})).id);
      assert.equal(task.status, 'completed', JSON.stringify(task.error));
      assert.match(String(task.finalValue), /InvalidEventError: .*101 bytes, over the limit of 100/);
      const events = await assertLog(rt, task, 'complete');
      assert.deepEqual(events.map((e) => e.type), ['exact', 'complete']);
    });

    void test('a bad event the task does not catch fails the task cleanly, with nothing half-stored', async () => {
      const Careless = defineTask({
        app: 'core',
        type: 'Careless',
        input: z.object({}),
        async run(ctx) {
          await ctx.send('fine', { k: 1 });
          await ctx.send('complete', {});
        },
      });
      await using rt = await open(tmp.db(), { tasks: [Careless] });
      const task = await finished(rt, (await rt.create(Careless, {})).id);
      assert.equal(task.status, 'failed');
      assert.equal(task.error?.type, 'InvalidEventError');
      const events = await assertLog(rt, task, 'error');
      assert.deepEqual(events.map((e) => e.type), ['fine', 'error']);
    });

    void test('a final value that is not JSON-serialisable fails the task with a clear error', async () => {
      const Bigint = defineTask({ app: 'core', type: 'Bigint', input: z.object({}), run: () => ({ n: 1n }) });
      await using rt = await open(tmp.db(), { tasks: [Bigint] });
      const task = await finished(rt, (await rt.create(Bigint, {})).id);
      assert.equal(task.status, 'failed');
      assert.match(task.error?.message ?? '', /final value is not JSON-serialisable/);
      await assertLog(rt, task, 'error');
    });

    void test('bad signal names and payloads, and bad create options, are refused before anything is stored', async () => {
      await using rt = await open(tmp.db(), { tasks: [Noop] });
      const task = await rt.create(Noop, {}, { runAt: new Date(Date.now() + 3_600_000) });
      await assert.rejects(rt.signal(task.id, 'bad name'), InvalidEventError);
      await assert.rejects(rt.signal(task.id, 'ok', { n: 1n }), TypeError);
      await assert.rejects(rt.create(Noop, {}, { timeoutMs: -1 }), TypeError);
      await assert.rejects(rt.create(Noop, {}, { runAt: new Date(Number.NaN) }), TypeError);
      await assert.rejects(rt.cancel(task.id, ''), TypeError);
      assert.equal((await rt.list()).tasks.length, 1);
      assert.equal((await rt.get(task.id))?.status, 'pending');
    });
  });
});
