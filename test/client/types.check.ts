/**
 * Type-level tests of `taskstream/client`: compiled by `tsc -p tsconfig.json --noEmit`, never run.
 * Each `@ts-expect-error` marks a call the types must reject; an accepted one fails the build.
 */
import type { ContinueTask, ExampleTask, exampleTasks, HttpFetchTask } from '../../examples/tasks.js';
import { createClient, type InputFor, type KindOf, type ResultFor, type StreamItem, type TaskJson } from '../../src/client/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
function expectType<T extends true>(): T | undefined {
  return undefined;
}

/** `defineTask` keeps `app` and `type` as literal types, so the definitions' types name every kind. */
type Tasks = readonly [typeof ExampleTask, typeof ContinueTask, typeof HttpFetchTask];

expectType<Equal<KindOf<Tasks>, 'examples/ExampleTask' | 'examples/ContinueTask' | 'examples/HttpFetchTask'>>();
expectType<Equal<InputFor<Tasks, 'examples/ExampleTask'>, { message?: string; steps?: number; delay_ms?: number }>>();
expectType<Equal<ResultFor<Tasks, 'examples/ExampleTask'>, string>>();
expectType<Equal<ResultFor<Tasks, 'examples/HttpFetchTask'>, unknown>>();

export async function typedClient(): Promise<void> {
  const client = createClient<Tasks>({ baseUrl: 'http://127.0.0.1:1' });

  const task = await client.create('examples/ExampleTask', { message: 'hi', steps: 3, delay_ms: 1 });
  expectType<Equal<typeof task, TaskJson<string, 'examples', 'ExampleTask'>>>();
  expectType<Equal<typeof task.final_value, string | null>>();
  await client.create('examples/ExampleTask', {});
  await client.create('examples/HttpFetchTask', { url: 'http://127.0.0.1:1/x' });

  // @ts-expect-error unknown kind
  await client.create('examples/NoSuchTask', {});
  // @ts-expect-error a kind is "app/type"
  await client.create('ExampleTask', {});
  // @ts-expect-error steps is a number
  await client.create('examples/ExampleTask', { steps: 'three' });
  // @ts-expect-error unknown input field
  await client.create('examples/ExampleTask', { stpes: 3 });
  // @ts-expect-error url is required for HttpFetchTask
  await client.create('examples/HttpFetchTask', {});
  // @ts-expect-error ExampleTask's input does not fit ContinueTask
  await client.create('examples/ContinueTask', { steps: 3 });

  const value = await client.result(task);
  expectType<Equal<typeof value, string>>();
  const fromString = await client.result('examples/ContinueTask/7');
  expectType<Equal<typeof fromString, string>>();
  const fromObject = await client.result({ app: 'examples', type: 'ExampleTask', id: 7 });
  expectType<Equal<typeof fromObject, string>>();
  // @ts-expect-error unknown kind in a string ref
  await client.result('examples/NoSuchTask/7');

  for await (const event of client.stream(task, { lastEventId: 2 })) {
    expectType<Equal<typeof event, StreamItem>>();
    expectType<Equal<typeof event.seq, number>>();
  }
  const { cancelled } = await client.cancel('examples/ContinueTask/7', 'user');
  expectType<Equal<typeof cancelled, boolean>>();
  const { delivered } = await client.signal(task, 'continue', { ok: true });
  expectType<Equal<typeof delivered, boolean>>();
  const { tasks, next } = await client.list({ app: 'examples', status: 'running', limit: 10 });
  expectType<Equal<typeof tasks, TaskJson[]>>();
  expectType<Equal<typeof next, number | null>>();
  // @ts-expect-error not a status
  await client.list({ status: 'done' });
}

/** The server's own array: kinds, inputs and results come straight from its definitions. */
export async function fromExampleTasks(): Promise<void> {
  const client = createClient<typeof exampleTasks>({ baseUrl: 'http://127.0.0.1:1' });
  const task = await client.create('examples/ExampleTask', { message: 'hi', steps: 3 });
  // @ts-expect-error steps is a number
  await client.create('examples/ExampleTask', { steps: 'three' });
  // @ts-expect-error unknown kind
  await client.create('examples/NoSuchTask', {});
  const value = await client.result(task);
  expectType<Equal<typeof value, string>>();
}

/** Without definitions: any `app/type` kind, `unknown` input and result. */
export async function untypedClient(): Promise<void> {
  const client = createClient({ baseUrl: 'http://127.0.0.1:1' });
  const task = await client.create('anything/Goes', { whatever: 1 });
  const value = await client.result(task);
  expectType<Equal<typeof value, unknown>>();
  // @ts-expect-error a kind is "app/type"
  await client.create('nope', {});
}

/** A task JSON whose kind is not known statically (from `get` or `list`) still works with `result`. */
export async function dynamicRefs(): Promise<void> {
  const client = createClient<Tasks>({ baseUrl: 'http://127.0.0.1:1' });
  const task = await client.get('examples/ExampleTask/1');
  const value = await client.result(task);
  expectType<Equal<typeof value, ResultFor<Tasks, `${string}/${string}`>>>();
}
