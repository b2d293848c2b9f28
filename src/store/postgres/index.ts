/**
 * `taskstream/postgres`: the PostgreSQL store. Needs the `pg` package (an optional peer dependency
 * of taskstream), which the root export never loads.
 *
 * @module taskstream/postgres
 */
export { postgresStore, PostgresStore } from './store.js';
export type { PostgresStoreOptions } from './store.js';
export type { PgClient, PgPool, PgQueryConfig, PgQueryResult } from './pool.js';
// The LISTEN/NOTIFY bus (src/bus/postgres) ships in the same entry point as the store.
export { postgresBus, PostgresBus } from '../../bus/postgres/index.js';
export type { PostgresBusOptions } from '../../bus/postgres/index.js';
