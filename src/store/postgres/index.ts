/**
 * `taskstream/postgres`: the PostgreSQL store. Needs the `pg` package (an optional peer dependency
 * of taskstream), which the root export never loads.
 */
export { postgresStore, PostgresStore } from './store.js';
export type { PostgresStoreOptions } from './store.js';
export type { PgClient, PgPool, PgQueryConfig, PgQueryResult } from './pool.js';
