/**
 * A BullMQ 6 worker process for bench/cluster.ts, on node-redis (BullMQ's node-redis adapter: the
 * same client taskstream's Redis bus uses). argv: redis-url prefix queue concurrency mode, where
 * mode is `burst:N` (N progress updates per job, as fast as they go) or `ticker:COUNT:INTERVAL`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createNodeRedisClient, RedisConnection, Worker } from 'bullmq';
import { createClient } from 'redis';

const [url = 'redis://127.0.0.1:6379', prefix = 'bench', queue = 'bench', concurrency = '100', mode = 'burst:10'] = process.argv.slice(2);
RedisConnection.clientFactory = () => createNodeRedisClient(createClient({ url }));

const [kind, a = '10', b = '0'] = mode.split(':');
const worker = new Worker(queue, async (job) => {
  if (kind === 'burst') {
    for (let i = 0; i < Number(a); i++) await job.updateProgress({ i });
  } else {
    for (let i = 0; i < Number(a); i++) {
      await sleep(Number(b));
      await job.updateProgress({ i, t: performance.timeOrigin + performance.now() });
    }
  }
  return null;
}, { connection: {}, prefix, concurrency: Number(concurrency) });
await worker.waitUntilReady();
process.stdout.write('ready\n');
process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)));
