/**
 * Where the example apps listen and keep their tasks, from the environment:
 *
 *   PORT=4000 TASKSTREAM_DB=/var/lib/my-app/tasks.db node --import tsx examples/express.ts
 *
 * PORT defaults to 3000 (0 picks a free port); TASKSTREAM_DB to ./example-app.db, not the
 * ./taskstream.db that `npm start` uses, so an example and the demo server never share a file.
 */
export interface AppSettings {
  readonly port: number;
  readonly dbPath: string;
}

export function settingsFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): AppSettings {
  const port = env.PORT === undefined || env.PORT === '' ? 3000 : Number(env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`PORT must be a whole number from 0 to 65535, got ${JSON.stringify(env.PORT)}`);
  }
  return { port, dbPath: env.TASKSTREAM_DB || './example-app.db' };
}
