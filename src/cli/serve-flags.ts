/** `serve`'s flags for access, limits and browser safety (mapped onto the library by serve-http.ts). */
import { type Command, Option } from 'commander';
import { parseDuration, parsePositiveInt } from './args.js';

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export function addServeAccessOptions(command: Command): Command {
  return command
    .addOption(new Option('--api-key <key>', 'turn Access on: every route but /health, /ready and the dashboard needs this key (repeatable, for rotation; also TASKSTREAM_API_KEYS=k1,k2)').argParser(collect))
    .addOption(new Option('--token-secret <secret>', 'HS256 secret (>= 32 bytes) of stream tokens; share it with every process and your backend (default: random per process)').env('TASKSTREAM_TOKEN_SECRET'))
    .addOption(new Option('--token-ttl <duration>', 'lifetime of the stream_token a create returns, e.g. 15m (the default)').argParser(parseDuration))
    .addOption(new Option('--max-streams <n>', 'open SSE streams at most; the next gets 503 with Retry-After').argParser(parsePositiveInt))
    .addOption(new Option('--rate-limit <n>', 'requests per second per client address (burst n); the next gets 429 with Retry-After').argParser(parsePositiveInt))
    .addOption(new Option('--cors-origin <origin>', 'an origin allowed cross-origin access, e.g. https://app.example.com (repeatable)').argParser(collect))
    .addOption(new Option('--allowed-host <name>', 'a Host name a loopback-bound server also answers (repeatable; DNS rebinding guard)').argParser(collect));
}
