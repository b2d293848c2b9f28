/**
 * `taskstream/redis`: the Redis bus for cluster mode. Needs the optional peer dependency `redis`
 * (node-redis 5 or 6); the package root never imports it.
 *
 * @module taskstream/redis
 */
import { createClient } from 'redis';
import { RedisBus, type RedisBusOptions, type RedisClientSlice } from './redis-bus.js';

export { RedisBus } from './redis-bus.js';
export type { RedisBusOptions, RedisClientSlice } from './redis-bus.js';

/**
 * A bus over Redis pub/sub: `redisBus({ url: 'redis://127.0.0.1:6379', prefix: 'myapp' })`, or
 * `redisBus({ client })` with a node-redis client of your own. Connects in `ready()` (the runtime
 * calls it at start).
 */
export function redisBus(options: RedisBusOptions = {}): RedisBus {
  return new RedisBus(options, async (url) => {
    // A publish while disconnected fails at once (and is dropped) instead of queueing without bound.
    const client = createClient({ url: url ?? 'redis://127.0.0.1:6379', disableOfflineQueue: true });
    return client as unknown as RedisClientSlice;
  });
}
