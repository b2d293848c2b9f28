// Copies the non-TypeScript files the built package needs (SQL migrations of both stores, dashboard assets) into dist/.
import { cpSync, existsSync } from 'node:fs';

const assets = [
  ['src/store/sqlite/migrations', 'dist/src/store/sqlite/migrations'],
  ['src/store/postgres/migrations', 'dist/src/store/postgres/migrations'],
  ['src/dashboard/static', 'dist/src/dashboard/static'],
];
for (const [from, to] of assets) {
  if (existsSync(from)) cpSync(from, to, { recursive: true });
}
