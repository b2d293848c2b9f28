/**
 * Redis stopped and started again under a running stream: each process logs that its bus lost
 * Redis, and `/ready` then says 503 (`checks.bus` not "ok"); each logs that it has Redis again,
 * and `/ready` then says 200, and the stream, opened on the process that does
 * not run the task, keeps delivering while Redis is down (from the store) and ends with every event. A private `redis-server` on its own port.
 * The task runs until it is cancelled, after Redis is back: however slow the machine, it is still
 * sending while Redis is down.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { tempDir } from '../cli/helpers.js';
import { get, post, range, seqs, serveProcess, sse, PrivateRedis } from './support.js';
import { clusterBackends } from './backends.js';

const dir = tempDir();
process.on('exit', () => dir[Symbol.dispose]());
// A port of this suite's own range (6420-6439 unless TASKSTREAM_TEST_REDIS_PORT moves it), one per backend.
let port = Number(process.env.TASKSTREAM_TEST_REDIS_PORT ?? 6420) + (process.pid % 10);

for (const backend of await clusterBackends(dir.path)) {
  if (backend.name.includes('alone')) continue;
  describe(`Redis restarted under a stream: ${backend.name}`, { skip: backend.skip }, () => {
    test('/ready goes 503 then 200, and the stream on the other process gets every event', async () => {
      const redis = new PrivateRedis(port++);
      await redis.start();
      // At info level: the bus's "reconnected" line is an info line.
      const args = [...(await backend.args()).map((a) => (a.startsWith('redis://') ? redis.url : a)), '--log-level', 'info'];
      const p1 = await serveProcess(args);
      // Far longer than the test (10,000 × 40 ms): it ends with the cancel below, not on its own.
      const task = (await post(`${p1.url}/tasks/examples/ExampleTask`, { steps: 10_000, delay_ms: 40 })).json as { id: number };
      const ref = `examples/ExampleTask/${task.id}`;
      const onP1 = sse(`${p1.url}/stream/${ref}`);
      await onP1.wait(1, 15_000); // running, on p1: the only process
      onP1.close();
      const p2 = await serveProcess(args);
      const stream = sse(`${p2.url}/stream/${ref}`);
      await stream.wait(3, 10_000);
      assert.equal((await get(`${p2.url}/ready`)).status, 200);

      await redis.stop();
      for (const p of [p1, p2]) {
        await p.line(/"msg":"taskstream: bus lost Redis/, 10_000, 'stderr');
        const ready = await get(`${p.url}/ready`);
        assert.equal(ready.status, 503, `${p.url}/ready once its bus lost Redis`);
        assert.notEqual(ready.json.checks.bus, 'ok');
        assert.equal(ready.json.checks.store, 'ok');
      }
      // Redis is gone: the stream still moves, read from the store (the hub's position check).
      const before = stream.events.length;
      await stream.wait(before + 3, 15_000);
      await redis.start();
      for (const p of [p1, p2]) {
        await p.line(/"msg":"taskstream: bus reconnected to Redis/, 15_000, 'stderr');
        assert.equal((await get(`${p.url}/ready`)).status, 200, `${p.url}/ready once its bus has Redis again`);
      }
      const during = stream.events.length;
      await stream.wait(during + 3, 15_000);
      assert.equal((await post(`${p2.url}/tasks/${ref}/cancel`, { reason: 'done' })).status, 202);
      assert.equal(await within(stream.done, 60_000), 'terminal');
      assert.deepEqual(seqs(stream.events), range(1, stream.events.length), 'every event once, in order');
      assert.equal(stream.events.at(-1)!.type, 'cancelled');
      const stored = (await get(`${p1.url}/tasks/${ref}`)).json as { status: string; last_seq: number };
      assert.deepEqual({ status: stored.status, last: stored.last_seq }, { status: 'cancelled', last: stream.events.at(-1)!.seq }, 'the stream ends with the stored log');
    });
  });
}

function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms); })]).finally(() => clearTimeout(timer));
}
