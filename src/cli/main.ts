/**
 * The `taskstream` command line: flags → library calls, nothing more.
 *
 * Exit codes: 0 success; 1 failure (a tailed task ended in error/cancelled/timeout, a request
 * failed, a shutdown did not drain cleanly); 2 bad usage, with a one-line reason on stderr;
 * 130 a second SIGTERM/SIGINT forced `serve` to exit before its drain finished, or Ctrl-C stopped
 * `tail` / `create --follow` (the task goes on).
 */
import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import {
  EXIT, parseChoice, parseDuration, parseIntRange, parseJson, parseJsonObject, parseKind, parseName, parseNonNegativeInt, parsePort,
  parsePositiveInt, parseRef, parseUrl, reason, UsageError,
} from './args.js';
import { cleanupCommand as cleanup, dbOption, listFromDb, migrateCommand as migrate, redisOptions } from './backend.js';
import { cancelCommand, createCommand, listCommand, signalCommand, tailCommand, type RemoteIo } from './remote.js';
import { serve, type Io, type ServeOptions } from './serve.js';
import { addServeAccessOptions } from './serve-flags.js';

const STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled', 'timed_out'] as const;
const DEFAULT_URL = 'http://127.0.0.1:8888';

/** Runs the CLI with `argv` (without node and script) and exits the process with its code. */
export async function main(argv: string[]): Promise<void> {
  const io: RemoteIo = {
    out: (line) => void process.stdout.write(`${line}\n`),
    err: (line) => void process.stderr.write(`${line}\n`),
    stdout: process.stdout,
  };
  process.exit(await run(argv, io));
}

/** Parses and runs one command; resolves with the exit code. Never exits the process itself. */
export async function run(argv: string[], io: RemoteIo): Promise<number> {
  if (argv.length === 0) {
    io.err('taskstream: missing command (serve, create, tail, cancel, signal, list, cleanup, migrate); see taskstream --help');
    return EXIT.usage;
  }
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return EXIT.ok; // --help, --version
      io.err(`taskstream: ${reason(err).replace(/^error: /, '')}`);
      return EXIT.usage;
    }
    io.err(`taskstream: ${reason(err)}`);
    return err instanceof UsageError ? EXIT.usage : EXIT.failure;
  }
}

function buildProgram(io: RemoteIo, setCode: (code: number) => void): Command {
  const program = new Command('taskstream')
    .description('Durable long-running tasks whose events stream live over SSE.')
    .version(packageVersion())
    .addHelpText('after', `
Exit codes: 0 ok; 1 failure (a followed task ended error/cancelled/timeout, the server refused or
was unreachable, a shutdown did not drain cleanly); 2 bad usage; 130 a second SIGTERM/SIGINT cut
serve's drain short, or Ctrl-C stopped tail.`)
    // Errors are thrown to run() and printed there as one line; help still prints in full.
    .exitOverride()
    .configureOutput({ outputError: () => {} })
    .showHelpAfterError(false);

  /** A command that talks to a running server: --url (or TASKSTREAM_URL), --key (or TASKSTREAM_KEY), --token (or TASKSTREAM_TOKEN). */
  const remote = (name: string): Command => program.command(name)
    .addOption(new Option('--url <url>', 'server to talk to').env('TASKSTREAM_URL').default(DEFAULT_URL).argParser(parseUrl))
    .addOption(new Option('--key <key>', 'API key of a server with Access on (sent as Authorization: Bearer)').env('TASKSTREAM_KEY'))
    .addOption(new Option('--token <token>', 'a stream token for one task instead of a key (tail, cancel, signal)').env('TASKSTREAM_TOKEN'));

  program.command('serve')
    .description('serve the HTTP API, SSE streams and the dashboard, running tasks in this process')
    .option('--port <n>', 'TCP port (0 picks a free one)', parsePort, 8888)
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .addOption(new Option('--socket <path>', 'bind a Unix socket instead of a TCP port').conflicts(['port', 'host']))
    .addOption(dbOption())
    .addOption(redisOptions()[0]!)
    .addOption(redisOptions()[1]!)
    .option('--tasks <module>', 'JS or TS module exporting your own task definitions')
    .option('--examples', 'serve the example tasks under app "examples" on a non-loopback address too (HttpFetchTask fetches any URL)')
    .option('--no-examples', 'do not serve the example tasks under app "examples"')
    .option('--concurrency <n>', 'runs at once in this process (0: run nothing, only create, stream and command tasks other processes run)', parseNonNegativeInt)
    .option('--shutdown-timeout <ms>', 'how long running tasks get to stop on shutdown', parseNonNegativeInt, 10_000)
    .option('--lease-ms <ms>', 'run lease; after a crash, runs are taken over once it expires (default 10000)', parsePositiveInt)
    .option('--retain-events <n>', 'keep at most the N newest events of each task (the terminal one always); older ones are pruned', parsePositiveInt)
    .option('--insecure', 'allow binding a non-loopback address without an API key')
    .addOption(new Option('--log-level <level>', 'log level (logs go to stderr)').choices(['debug', 'info', 'warn', 'error', 'silent']).default('info'))
    .addOption(new Option('--log-format <format>', 'json, or pretty for people (default: pretty on a terminal)').choices(['json', 'pretty']));
  addServeAccessOptions(program.commands.at(-1)!)
    .action(async (o: ServeOptions) => {
      setCode(await serve(o, io satisfies Io));
    });

  remote('create')
    .description('create a task on a running server')
    .argument('<app/type>', 'task type, e.g. examples/ExampleTask', parseKind)
    .option('--input <json>', 'task input as a JSON object', parseJsonObject, {})
    .option('--idempotency-key <key>', 'return the task first created with this key instead of another')
    .option('--follow', 'then print its events until it ends (like tail)')
    .option('--json', 'print the task JSON the server returned')
    .action(async (kind: ReturnType<typeof parseKind>, o: { input: Record<string, unknown>; idempotencyKey?: string; follow?: boolean; json?: boolean; url: string; key?: string; token?: string }) => {
      setCode(await createCommand(kind, o, io));
    });

  remote('tail')
    .description('print a task\'s events as they arrive; exit 0 on complete, 1 on error/cancelled/timeout')
    .argument('<app/type/id>', 'task, e.g. examples/ExampleTask/42', parseRef)
    .option('--last-event-id <n>', 'only events after this seq', parseNonNegativeInt)
    .action(async (ref: ReturnType<typeof parseRef>, o: { lastEventId?: number; url: string; key?: string; token?: string }) => {
      setCode(await tailCommand(ref, o, io));
    });

  remote('cancel')
    .description('cancel a pending or running task')
    .argument('<app/type/id>', 'task', parseRef)
    .option('--reason <reason>', 'recorded as the cancel reason')
    .action(async (ref: ReturnType<typeof parseRef>, o: { reason?: string; url: string; key?: string; token?: string }) => {
      setCode(await cancelCommand(ref, o, io));
    });

  remote('signal')
    .description('deliver a named signal to a task (e.g. continue)')
    .argument('<app/type/id>', 'task', parseRef)
    .argument('<name>', 'signal name', parseName)
    .option('--payload <json>', 'JSON payload', parseJson)
    .action(async (ref: ReturnType<typeof parseRef>, name: string, o: { payload?: unknown; url: string; key?: string; token?: string }) => {
      setCode(await signalCommand(ref, name, o, io));
    });

  remote('list')
    .description('list tasks, newest first')
    .option('--app <app>', 'only this app')
    .option('--type <type>', 'only this type')
    .option('--status <status>', `only this status (${STATUSES.join(', ')})`, parseChoice(STATUSES))
    .option('--limit <n>', 'at most this many (1 to 1000)', parseIntRange(1, 1000), 20)
    .option('--before <id>', 'only tasks older than this id (the next page)', parsePositiveInt)
    .option('--json', 'print the JSON the server returned')
    .option('--db <path|url>', 'read this database directly instead of asking a server (SQLite file or postgres://…)')
    .action(async (o: { app?: string; type?: string; status?: string; limit: number; before?: number; json?: boolean; url: string; key?: string; token?: string; db?: string }) => {
      setCode(o.db !== undefined ? await listFromDb({ ...o, db: o.db }, io.out) : await listCommand(o, io));
    });

  program.command('cleanup')
    .description('delete finished tasks older than a duration, directly in the database (no server)')
    .requiredOption('--older-than <duration>', 'e.g. 30s, 15m, 1h, 7d', parseDuration)
    .option('--dry-run', 'only count what would be deleted')
    .addOption(dbOption())
    .action(async (o: { olderThan: number; dryRun?: boolean; db: string }) => {
      await cleanup(o, io.out);
    });

  program.command('migrate')
    .description('apply database migrations and print what was done')
    .addOption(dbOption())
    .action(async (o: { db: string }) => {
      await migrate(o, io.out);
    });

  return program;
}

/** The package's version, from its package.json (two levels up from src/cli, three from dist/src/cli). */
function packageVersion(): string {
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'taskstream' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Not at this level; try the next.
    }
  }
  return 'unknown';
}
