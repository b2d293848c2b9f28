/**
 * The databases a cluster of `serve` processes is tested on. Each `args()` call names a fresh
 * database (and a fresh Redis prefix): a new SQLite file, or a new PostgreSQL database dropped
 * after the file.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after } from 'node:test';
import { pgAdmin } from '../support/pg.js';
import { POSTGRES_URL, REDIS_URL, skipUnlessPostgres, skipUnlessRedis } from '../support/services.js';

export interface ClusterBackend {
  readonly name: string;
  readonly skip: string | false;
  /** `serve` flags for a fresh database shared by the processes started with them. */
  args(): Promise<string[]>;
}

const prefix = (): string => `ts-bus-${randomBytes(6).toString('hex')}`;

/** A new PostgreSQL database named with this suite's prefix (or TASKSTREAM_TEST_PG_PREFIX's), dropped after the file. */
async function pgDatabase(): Promise<string> {
  const name = `${process.env.TASKSTREAM_TEST_PG_PREFIX ?? 'ts_bus_'}e2e_${process.pid}_${++databases}`;
  await pgAdmin(`CREATE DATABASE "${name}"`);
  after(() => pgAdmin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
  return POSTGRES_URL.replace(/\/[^/?]*(\?|$)/, `/${name}$1`);
}
let databases = 0;

export async function clusterBackends(dir: string): Promise<ClusterBackend[]> {
  let n = 0;
  const pgSkip = await skipUnlessPostgres();
  const redisSkip = await skipUnlessRedis();
  return [
    {
      name: 'one SQLite file + Redis',
      skip: redisSkip,
      args: async () => ['--db', join(dir, `cluster-${++n}.db`), '--redis', REDIS_URL, '--redis-prefix', prefix()],
    },
    {
      name: 'PostgreSQL + Redis',
      skip: pgSkip || redisSkip,
      args: async () => ['--db', await pgDatabase(), '--redis', REDIS_URL, '--redis-prefix', prefix()],
    },
    {
      name: 'PostgreSQL alone (LISTEN/NOTIFY)',
      skip: pgSkip,
      args: async () => ['--db', await pgDatabase()],
    },
  ];
}
