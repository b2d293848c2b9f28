/**
 * `serve`: opens the store, starts the runtime with the example tasks (and/or the user's), serves
 * the HTTP handler, and shuts down gracefully on SIGTERM/SIGINT. The only place in the package
 * that installs signal handlers.
 *
 * Lifecycle (one stdout line per step, never per event):
 *   store opened → listening → [signal] shutdown started → drained → closed → exit 0
 * A second signal during shutdown exits at once with code 130.
 */
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { lstatSync, unlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { exampleTasks } from '../../examples/tasks.js';
import { createHandler, serverTimeouts } from '../http/index.js';
import { createTaskstream, type AnyTaskDefinition, type Logger, type Taskstream } from '../index.js';
import { EXIT, UsageError, reason } from './args.js';
import { checkDbPath } from './db.js';
import { isPostgresUrl, openBackend } from './backend.js';
import { loadTaskModule } from './load-tasks.js';
import { serveHttpOptions, servesExamples, serveLogger, type ServeHttpFlags } from './serve-http.js';

export interface ServeOptions extends ServeHttpFlags {
  readonly port: number;
  readonly db: string;
  readonly redis?: string;
  readonly redisPrefix?: string;
  readonly tasks?: string;
  readonly shutdownTimeout: number;
  readonly concurrency?: number;
  readonly leaseMs?: number;
  readonly retainEvents?: number;
}

export interface Io {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

/** Signals closer together than this are one delivery seen twice (see onSignal). */
const SAME_SIGNAL_MS = 300;

/** Runs the server until a signal has shut it down; resolves with the process's exit code. */
export async function serve(options: ServeOptions, io: Io): Promise<number> {
  const dbPath = isPostgresUrl(options.db) ? options.db : checkDbPath(options.db);
  const httpOptions = serveHttpOptions(options);
  const tasks: AnyTaskDefinition[] = servesExamples(options) ? [...exampleTasks] : [];
  if (options.tasks !== undefined) tasks.push(...(await loadTaskModule(options.tasks)));
  if (tasks.length === 0) throw new UsageError('no task types to serve: without the examples (--no-examples, or a non-loopback --host without --examples) pass --tasks MODULE');

  const logger = serveLogger(options);
  const backend = await openBackend(
    { ...options, db: dbPath },
    (err) => logger.warn({ err }, 'taskstream: bus error (streams catch up from the store)'),
    (connected) => {
      if (connected) logger.info({ connected }, 'taskstream: bus reconnected to Redis (streams live again)');
      else logger.warn({ connected }, 'taskstream: bus lost Redis (streams catch up from the store until it is back)');
    },
  );
  const runtime = await createTaskstream({ store: backend.store, bus: backend.bus, tasks, logger, concurrency: options.concurrency, leaseMs: options.leaseMs, retainEvents: options.retainEvents });
  io.out(`taskstream: ${backend.description} opened and migrated`);
  io.out(`taskstream: ${tasks.length} task type${tasks.length === 1 ? '' : 's'}: ${tasks.map((t) => `${t.app}/${t.type}`).join(', ')}`);
  if (options.concurrency === 0) io.out('taskstream: --concurrency 0: this process runs no task; another process on the same store must run them');
  logTaskLifecycle(runtime, logger);

  const server = createServer(serverTimeouts(httpOptions.limits), createHandler(runtime, httpOptions));
  let address: string;
  try {
    address = await listen(server, options);
  } catch (err) {
    await runtime.close({ timeoutMs: 0 }).catch(() => {});
    throw err;
  }
  return new Promise<number>((done) => {
    let shuttingDown = false;
    let firstAt = 0;
    let first: NodeJS.Signals | undefined;
    const onSignal = (signal: NodeJS.Signals): void => {
      // Ctrl-C under `npm start` arrives twice within milliseconds: from the terminal (to the whole
      // process group) and forwarded by npm. The same signal within SAME_SIGNAL_MS is that echo;
      // another signal, or the same one later, is a second signal.
      if (shuttingDown && signal === first && Date.now() - firstAt < SAME_SIGNAL_MS) return;
      if (shuttingDown) {
        io.err(`taskstream: second ${signal}; exiting now without a clean drain (exit ${EXIT.forced})`);
        process.exit(EXIT.forced);
      }
      shuttingDown = true;
      firstAt = Date.now();
      first = signal;
      void shutdown(server, runtime, options, io, signal).then((code) => {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
        // The duplicate of the first signal may still be on its way (npm forwards it): without a
        // listener it would kill the process by the default action before it exits with `code`.
        const ignore = (): void => {};
        process.on('SIGTERM', ignore).on('SIGINT', ignore);
        setTimeout(() => process.off('SIGTERM', ignore).off('SIGINT', ignore), SAME_SIGNAL_MS).unref();
        done(code);
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // Printed once the handlers are in place: whoever waits for this line may signal at once.
    io.out(`taskstream: listening on ${address}`);
  });
}

/**
 * Drain the runtime (runs back to pending, streams ended), then close the server. The listening
 * socket stays open while draining, so clients get the documented 503 (`/ready` draining, new
 * streams and creates with Retry-After) rather than a refused connection.
 */
async function shutdown(server: Server, runtime: Taskstream, options: ServeOptions, io: Io, signal: string): Promise<number> {
  const running = runtime.stats.running;
  io.out(`taskstream: shutdown started (${signal}); ${running} running, waiting up to ${options.shutdownTimeout} ms`);
  let code: number = EXIT.ok;
  let interrupted = 0;
  const off = runtime.on('task:requeued', (info) => {
    if (info.reason === 'shutdown') interrupted++;
  });
  try {
    await runtime.close({ timeoutMs: options.shutdownTimeout });
    io.out(`taskstream: drained (${interrupted} runs put back to pending, open streams ended)`);
  } catch (err) {
    io.err(`taskstream: shutdown failed: ${reason(err)}`);
    code = EXIT.failure;
  } finally {
    off();
  }
  // Streams have ended; idle keep-alive sockets are closed by server.close(). A client that
  // still holds a request open after the drain is cut off rather than waited for.
  const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const cut = setTimeout(() => server.closeAllConnections(), 1000);
  await serverClosed;
  clearTimeout(cut);
  if (options.socket !== undefined) removeFile(resolve(options.socket));
  io.out(`taskstream: closed (exit ${code})`);
  return code;
}

/** Binds a TCP port or a Unix socket; resolves with the address clients should use. */
async function listen(server: Server, options: ServeOptions): Promise<string> {
  if (options.socket !== undefined) {
    const path = resolve(options.socket);
    await removeStaleSocket(path);
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(path, () => {
        server.off('error', fail);
        ok();
      });
    });
    return `unix:${path}`;
  }
  await new Promise<void>((ok, fail) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      fail(err.code === 'EADDRINUSE' ? new Error(`${options.host}:${options.port} is already in use; pick another --port (0 picks a free one)`) : err);
    });
    server.listen(options.port, options.host, () => ok());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('server has no TCP address');
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/**
 * A socket file left by a process that died is removed; one a live server still answers on is
 * not (that is a configuration mistake, not something to take over).
 */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (!isSocket) throw new UsageError(`--socket ${path}: exists and is not a socket; refusing to replace it`);
  const live = await new Promise<boolean>((answer) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      answer(true);
    });
    probe.once('error', () => answer(false));
  });
  if (live) throw new Error(`--socket ${path}: another server is listening on it`);
  removeFile(path);
}

function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Per-task lines go to the log at debug level only; stdout carries lifecycle lines alone. */
function logTaskLifecycle(runtime: Taskstream, logger: Logger): void {
  runtime.on('task:started', (info) => logger.debug(info, 'task started'));
  runtime.on('task:finished', (info) => logger.debug(info, 'task finished'));
  runtime.on('task:requeued', (info) => logger.debug(info, 'task requeued'));
  runtime.on('task:abandoned', (info) => logger.warn(info, 'task abandoned'));
}
