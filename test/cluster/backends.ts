/**
 * The databases a cluster of `serve` processes is tested on. Each `args()` call names a fresh
 * database (and a fresh Redis prefix): a new SQLite file, or a new PostgreSQL database dropped
 * after the file.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { REDIS_URL, skipUnlessRedis } from '../support/services.js';

export interface ClusterBackend {
  readonly name: string;
  readonly skip: string | false;
  /** `serve` flags for a fresh database shared by the processes started with them. */
  args(): Promise<string[]>;
}

const prefix = (): string => `ts-bus-${randomBytes(6).toString('hex')}`;

export async function clusterBackends(dir: string): Promise<ClusterBackend[]> {
  let n = 0;
  return [
    {
      name: 'one SQLite file + Redis',
      skip: await skipUnlessRedis(),
      args: async () => ['--db', join(dir, `cluster-${++n}.db`), '--redis', REDIS_URL, '--redis-prefix', prefix()],
    },
  ];
}
