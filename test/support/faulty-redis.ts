/**
 * Fault injection for the Redis bus: a node-redis client wrapped in the bus's `RedisClientSlice`,
 * whose subscriber connections (made by `duplicate()`) can acknowledge SUBSCRIBE late, drop
 * messages, or go deaf (stay connected and hear nothing, like a half-open TCP connection); and
 * whose publisher can refuse scripts, as a server whose ACL denies EVAL does.
 */
import { createClient } from 'redis';
import type { RedisClientSlice } from '../../src/bus/redis/index.js';

export interface Faults {
  /** Delay before each SUBSCRIBE is sent (its acknowledgement arrives that much later). */
  subscribeDelayMs: number;
  /** Drop this many of the next event messages received (probes and commands pass). */
  dropEvents: number;
  /** From now on the current subscriber hears nothing at all; a replacement made afterwards hears again. */
  deafen(): void;
  /** How many subscriber connections were made. */
  subscribers: number;
  /** EVAL is refused with NOPERM (an ACL without scripting). */
  refuseScripts: boolean;
  /** EVAL commands sent, refused ones included. */
  evals: number;
  /** Resolves at the publisher connection's next `ready` (a reconnect once it was dropped). */
  nextPublisherReady(): Promise<void>;
}

type Listener = (message: string, channel: string) => void;
type Client = ReturnType<typeof createClient>;

export function faultyClient(url: string, name: string): { client: RedisClientSlice; faults: Faults } {
  let current = { deaf: false };
  const real: Client = createClient({ url, name, disableOfflineQueue: true });
  const faults: Faults = {
    subscribeDelayMs: 0, dropEvents: 0, subscribers: 0, deafen: () => void (current.deaf = true), refuseScripts: false, evals: 0,
    nextPublisherReady: () => new Promise<void>((resolve) => real.once('ready', () => resolve())),
  };
  const wrap = (real: Client): RedisClientSlice => {
    const state = { deaf: false };
    // node-redis keeps a channel's listeners in a Set: the same listener must map to the same wrapper.
    const wrappers = new Map<Listener, Listener>();
    const slice: RedisClientSlice = {
      get isOpen() { return real.isOpen; },
      get isReady() { return real.isReady; },
      connect: () => real.connect(),
      duplicate: () => {
        faults.subscribers++;
        const sub = wrap(real.duplicate() as Client);
        return sub;
      },
      publish: (channel, message) => real.publish(channel, message),
      sendCommand: async (args) => {
        if (args[0] !== 'EVAL') return real.sendCommand(args);
        faults.evals++;
        if (faults.refuseScripts) throw new Error("NOPERM User default has no permissions to run the 'eval' command");
        return real.sendCommand(args);
      },
      subscribe: async (channel, listener: Listener) => {
        if (faults.subscribeDelayMs > 0) await new Promise((r) => setTimeout(r, faults.subscribeDelayMs));
        let wrapped = wrappers.get(listener);
        if (wrapped === undefined) {
          wrapped = (message: string, ch: string) => {
            if (state.deaf) return;
            if (ch.includes(':ev:') && faults.dropEvents > 0) {
              faults.dropEvents--;
              return;
            }
            listener(message, ch);
          };
          wrappers.set(listener, wrapped);
        }
        current = state;
        return real.subscribe(channel, wrapped);
      },
      unsubscribe: (channel) => real.unsubscribe(channel),
      ping: () => real.ping(),
      on: (event, listener) => real.on(event, listener as never),
      off: (event, listener) => real.off(event, listener as never),
      destroy: () => real.destroy(),
    };
    return slice;
  };
  return { client: wrap(real), faults };
}
