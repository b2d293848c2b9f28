/**
 * End to end over real processes: three `serve` processes on one database form one cluster.
 * Create on one, stream from the other two, cancel and signal through a third; SIGKILL the
 * process running a task and watch another take it over while a client that reconnects with
 * Last-Event-ID loses nothing. Backends: one SQLite file with Redis (always, when Redis is up),
 * PostgreSQL with Redis, PostgreSQL alone.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { tempDir } from '../cli/helpers.js';
import { get, post, range, seqs, serveProcess, sse, type Serve } from './support.js';
import { clusterBackends } from './backends.js';

const dir = tempDir();
process.on('exit', () => dir[Symbol.dispose]());

for (const backend of await clusterBackends(dir.path)) {
  describe(`cluster of serve processes: ${backend.name}`, { skip: backend.skip }, () => {
    /** Starts `n` processes on one fresh database (and Redis prefix). */
    async function start(n: number, extra: string[] = []): Promise<{ procs: Serve[]; more(): Promise<Serve> }> {
      const args = await backend.args();
      const more = (): Promise<Serve> => serveProcess([...args, ...extra]);
      const procs: Serve[] = [];
      for (let i = 0; i < n; i++) procs.push(await more());
      return { procs, more };
    }

    /** Resolves once the task has sent its first event: it is running (on `url`'s process, when that is the only one). */
    async function running(url: string, ref: string): Promise<void> {
      const stream = sse(`${url}/stream/${ref}`);
      try {
        await stream.wait(1, 15_000);
      } finally {
        stream.close();
      }
    }

    test('create on one, stream from the other two, signal and cancel through a third', async () => {
      // Long leases: a cancel or a signal that arrives within seconds came over the bus, not through lease renewal.
      const { procs: [p1], more } = await start(1, ['--lease-ms', '60000']);
      // Both tasks run on p1, the only process when they are created.
      const waiting = (await post(`${p1!.url}/tasks/examples/ContinueTask`, { timeout_ms: 120_000 })).json as { id: number };
      const slow = (await post(`${p1!.url}/tasks/examples/ExampleTask`, { steps: 10_000, delay_ms: 20 })).json as { id: number };
      const waitRef = `examples/ContinueTask/${waiting.id}`;
      const slowRef = `examples/ExampleTask/${slow.id}`;
      await running(p1!.url, waitRef);
      await running(p1!.url, slowRef);
      const p2 = await more();
      const p3 = await more();

      const onP2 = sse(`${p2.url}/stream/${waitRef}`);
      const onP3 = sse(`${p3.url}/stream/${waitRef}`);
      await Promise.all([onP2.wait(1, 10_000), onP3.wait(1, 10_000)]);
      const signalled = await post(`${p3.url}/tasks/${waitRef}/signals/continue`, { from: 'p3' });
      assert.equal(signalled.status, 202);
      assert.equal(await within(onP2.done), 'terminal');
      assert.equal(await within(onP3.done), 'terminal');
      assert.deepEqual(seqs(onP2.events), seqs(onP3.events));
      for (const stream of [onP2, onP3]) {
        assert.deepEqual(seqs(stream.events), range(1, stream.events.length), 'no gap, no duplicate');
        assert.equal(stream.events.at(-1)!.type, 'complete');
        assert.deepEqual((stream.events.find((e) => e.type === 'final')?.data as { payload?: unknown } | undefined)?.payload, { from: 'p3' });
      }

      const slowOnP3 = sse(`${p3.url}/stream/${slowRef}`);
      await slowOnP3.wait(2, 10_000);
      assert.equal((await post(`${p2.url}/tasks/${slowRef}/cancel`, { reason: 'through p2' })).status, 202);
      assert.equal(await within(slowOnP3.done), 'terminal');
      assert.equal(slowOnP3.events.at(-1)!.type, 'cancelled');
      assert.equal((slowOnP3.events.at(-1)!.data as { reason?: string }).reason, 'through p2');
      assert.equal(((await get(`${p3.url}/tasks/${slowRef}`)).json as { status: string }).status, 'cancelled');
    });

    test('SIGKILL the process running a task: another takes it over, and a client that reconnects elsewhere with Last-Event-ID loses nothing', async () => {
      const { procs: [p1], more } = await start(1, ['--lease-ms', '600']);
      const task = (await post(`${p1!.url}/tasks/examples/ContinueTask`, { timeout_ms: 120_000 })).json as { id: number };
      const ref = `examples/ContinueTask/${task.id}`;
      await running(p1!.url, ref);
      const p2 = await more();
      const p3 = await more();
      const first = sse(`${p1!.url}/stream/${ref}`);
      const watcher = sse(`${p3.url}/stream/${ref}`);
      await Promise.all([first.wait(1, 10_000), watcher.wait(1, 10_000)]);
      p1!.child.kill('SIGKILL');
      assert.equal(await within(first.done), 'dropped');
      const last = first.events.at(-1)!.seq;
      const resumed = sse(`${p2.url}/stream/${ref}`, last);
      // Taken over: `interrupted`, then the run starts again (its `started`) on p2 or p3.
      await resumed.wait(2, 30_000);
      assert.deepEqual(resumed.events.slice(0, 2).map((e) => e.type), ['interrupted', 'started']);
      assert.equal((await post(`${p3.url}/tasks/${ref}/signals/continue`, { after: 'takeover' })).status, 202);
      assert.equal(await within(resumed.done), 'terminal');
      assert.equal(await within(watcher.done), 'terminal');
      const all = [...first.events, ...resumed.events];
      assert.deepEqual(seqs(all), range(1, all.length), 'the reconnected client has every event once');
      assert.deepEqual(seqs(watcher.events), range(1, all.length), 'the stream on a surviving process has every event');
      assert.ok(all.some((e) => e.type === 'interrupted'), 'the run was interrupted and taken over');
      assert.equal(all.at(-1)!.type, 'complete');
      const done = (await get(`${p3.url}/tasks/${ref}`)).json as { status: string; attempt: number };
      assert.deepEqual([done.status, done.attempt], ['completed', 2]);
    });
  });
}

function within<T>(promise: Promise<T>, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms); })]).finally(() => clearTimeout(timer));
}
