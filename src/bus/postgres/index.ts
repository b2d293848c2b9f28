import { openPool } from '../../store/postgres/pool.js';
import { PostgresBus, type PostgresBusOptions } from './notify-bus.js';

export { PostgresBus } from './notify-bus.js';
export type { PostgresBusOptions } from './notify-bus.js';

/**
 * A bus over LISTEN/NOTIFY for a PostgreSQL-only cluster: `postgresBus({ pool, store })` with the
 * store's pool and the store itself (so hints become events in one read per task), or
 * `postgresBus({ connectionString })`.
 */
export function postgresBus(options: PostgresBusOptions): PostgresBus {
  return new PostgresBus(options, (connectionString) => openPool({ connectionString, max: 2, connectionTimeoutMillis: 5000 }));
}
