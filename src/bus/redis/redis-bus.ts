import { randomUUID } from 'node:crypto';
import type { EventRecord } from '../../store/types.js';
import { ErrorGate, Listeners, parseCommand } from '../listeners.js';
import type { Bus, Command, Delivery } from '../types.js';
import { decodeEvents, encodeEvents } from './codec.js';

/**
 * The few methods of a Redis client the bus uses (node-redis 5/6 has them all). Passing your own
 * client (or a wrapper of one, for fault injection) lets the bus share your connection settings.
 */
export interface RedisClientSlice {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  /** A new, unconnected client with the same options: the bus's subscriber connection. */
  duplicate(): RedisClientSlice;
  publish(channel: string, message: string): Promise<unknown>;
  /** A raw command (node-redis `sendCommand`); when present, the publishes of one tick go as one EVAL. */
  sendCommand?(args: string[]): Promise<unknown>;
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  ping(): Promise<unknown>;
  on(event: 'error' | 'ready' | 'end' | 'reconnecting', listener: (...args: never[]) => void): unknown;
  off(event: 'error' | 'ready' | 'end' | 'reconnecting', listener: (...args: never[]) => void): unknown;
  destroy(): void;
}

export interface RedisBusOptions {
  /** `redis://host:port`; ignored when `client` is given. */
  readonly url?: string;
  /** A node-redis client (or anything with its `RedisClientSlice` methods). It stays yours to close. */
  readonly client?: RedisClientSlice;
  /** Namespaces every channel: `{prefix}:ev:{taskId}`, `{prefix}:cmd`, `{prefix}:probe:{id}`. Default `taskstream`. */
  readonly prefix?: string;
  /** Bus errors (publish failures, lost connections, malformed messages); reported once per outage. */
  readonly onError?: (err: unknown) => void;
  /**
   * Told `false` when the bus loses Redis (either connection dropped: `ping` rejects from then on)
   * and `true` once it has it back (both connections ready, every channel subscribed again): once
   * per change, never for the first connection or after `close`.
   */
  readonly onConnected?: (connected: boolean) => void;
  /** How often the subscriber connection is probed (an echo through Redis). Default 2000 ms. */
  readonly probeIntervalMs?: number;
  /** No echo within this → the subscriber is treated as lost: replaced, then `onResync`. Default 2000 ms. */
  readonly probeTimeoutMs?: number;
  /** Event data carried inline per message; larger batches carry their newest events only. Default 64 KiB. */
  readonly inlineMaxBytes?: number;
}

type Create = (url: string | undefined) => Promise<RedisClientSlice>;

/** Publishes (channel, message) pairs in order: one command for a tick's publishes instead of one each. */
const PUBLISH_ALL = "for i = 1, #ARGV, 2 do redis.call('PUBLISH', ARGV[i], ARGV[i + 1]) end return 0";
/** Message bytes per EVAL, so that one command stays bounded whatever the batch. */
const EVAL_MAX_BYTES = 1 << 20;

/**
 * A bus over Redis pub/sub, at-most-once: one publisher and one subscriber connection per
 * process. A task channel is subscribed on its first local watcher and unsubscribed after its
 * last; published events reach local watchers at once (the same objects) and other processes
 * through Redis. After every reconnect — node-redis's own, or a replacement after a failed probe
 * — every channel is live again and `onResync` fires, so readers re-read from the store.
 */
export class RedisBus implements Bus {
  readonly delivery: Delivery = 'at-most-once';
  readonly #id = randomUUID();
  readonly #prefix: string;
  readonly #local: Listeners;
  readonly #errors: ErrorGate;
  readonly #options: RedisBusOptions;
  readonly #create: Create;
  readonly #probeChannel: string;
  #pub: RedisClientSlice | undefined;
  #ownsPub = false;
  #sub: RedisClientSlice | undefined;
  #subHandlers: { ready: () => void; end: () => void; error: (err: Error) => void } | undefined;
  /** Set when the subscriber lost its connection; the next `ready` reconciles channels, then resyncs. */
  #lost = false;
  /** Set when either connection went down after the first connect; cleared (and told) once both are back. */
  #down = false;
  #connecting: Promise<void> | undefined;
  #probe: { timer: ReturnType<typeof setInterval>; nonce: string | undefined; sentAt: number; replacing: boolean } | undefined;
  #closed = false;
  /** This tick's publishes, as channel, message, channel, message…; sent after the current task. */
  #outbox: string[] = [];
  /** Set when the server refuses EVAL (ACL, a proxy without scripting): publish one by one. */
  #noScripting = false;

  constructor(options: RedisBusOptions, create: Create) {
    this.#options = options;
    this.#create = create;
    this.#prefix = options.prefix ?? 'taskstream';
    const onError = options.onError ?? (() => {});
    this.#local = new Listeners(onError);
    // After close, what close itself caused (commands rejected by destroy) is not news.
    this.#errors = new ErrorGate((err) => {
      if (!this.#closed) onError(err);
    });
    this.#probeChannel = `${this.#prefix}:probe:${this.#id}`;
  }

  #eventChannel(taskId: number): string {
    return `${this.#prefix}:ev:${taskId}`;
  }

  get #commandChannel(): string {
    return `${this.#prefix}:cmd`;
  }

  ready(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('taskstream redis bus: closed'));
    // A failed first connection is not cached: the next call tries again.
    this.#connecting ??= this.#connect().catch((err: unknown) => {
      this.#connecting = undefined;
      throw err;
    });
    return this.#connecting;
  }

  async #connect(): Promise<void> {
    if (this.#options.client !== undefined) {
      this.#pub = this.#options.client;
    } else {
      this.#pub = await this.#create(this.#options.url);
      this.#ownsPub = true;
    }
    this.#pub.on('error', this.#onPubError);
    this.#pub.on('ready', this.#onPubReady);
    if (!this.#pub.isOpen) await this.#pub.connect();
    await this.#openSubscriber();
    const interval = this.#options.probeIntervalMs ?? 2000;
    this.#probe = { timer: setInterval(() => this.#probeTick(), interval), nonce: undefined, sentAt: 0, replacing: false };
    this.#probe.timer.unref();
  }

  readonly #onPubError = (err: unknown): void => {
    if (this.#pub?.isReady === false) this.#setDown();
    this.#errors.fail(err);
  };

  readonly #onPubReady = (): void => this.#setUpIfReady();

  #setDown(): void {
    // No probe yet: the first connect is still under way, and onConnected is not told of it.
    if (this.#down || this.#closed || this.#probe === undefined) return;
    this.#down = true;
    this.#tellConnected(false);
  }

  /** Back up once the publisher is ready and the subscriber is ready with every channel subscribed. */
  #setUpIfReady(): void {
    if (!this.#down || this.#closed || this.#lost || this.#pub?.isReady !== true || this.#sub?.isReady !== true) return;
    this.#down = false;
    this.#tellConnected(true);
  }

  #tellConnected(connected: boolean): void {
    try { this.#options.onConnected?.(connected); } catch (err) { this.#errors.fail(err); }
  }

  /** Connects a fresh subscriber and subscribes every channel this process needs; then swaps it in. */
  async #openSubscriber(): Promise<void> {
    const sub = this.#pub!.duplicate();
    const handlers = {
      ready: (): void => this.#onSubReady(sub),
      end: (): void => {
        this.#lost = true;
        this.#setDown();
      },
      error: (err: Error): void => {
        this.#lost = true;
        if (sub === this.#sub && !sub.isReady) this.#setDown();
        this.#errors.fail(err);
      },
    };
    sub.on('error', handlers.error);
    await sub.connect();
    await Promise.all(this.#channels().map((channel) => sub.subscribe(channel, this.#onMessage)));
    const old = this.#sub;
    const oldHandlers = this.#subHandlers;
    this.#sub = sub;
    this.#subHandlers = handlers;
    sub.on('ready', handlers.ready);
    sub.on('end', handlers.end);
    if (old !== undefined && oldHandlers !== undefined) {
      old.off('ready', oldHandlers.ready);
      old.off('end', oldHandlers.end);
      old.off('error', oldHandlers.error);
      old.on('error', () => {});
      old.destroy();
    }
  }

  #channels(): string[] {
    const channels = [this.#probeChannel, this.#commandChannel];
    for (const taskId of this.#local.watchedTasks()) channels.push(this.#eventChannel(taskId));
    return channels;
  }

  /**
   * node-redis re-subscribes what it knew before it emits `ready`; a SUBSCRIBE that failed while
   * the connection was down is not among those, so every channel is subscribed again (a no-op for
   * live ones) before readers are told to resync.
   */
  #onSubReady(sub: RedisClientSlice): void {
    if (!this.#lost || sub !== this.#sub) return;
    this.#lost = false;
    void Promise.all(this.#channels().map((channel) => sub.subscribe(channel, this.#onMessage)))
      .then(() => {
        this.#errors.ok();
        this.#setUpIfReady();
        if (!this.#closed && sub === this.#sub) this.#local.resync();
      }, (err: unknown) => {
        // Lost again mid-way: the next `ready` tries again.
        this.#lost = true;
        this.#errors.fail(err);
      });
  }

  readonly #onMessage = (message: string, channel: string): void => {
    try {
      if (channel === this.#probeChannel) {
        if (this.#probe !== undefined && message === this.#probe.nonce) this.#probe.nonce = undefined;
        return;
      }
      if (channel === this.#commandChannel) {
        const command = parseCommand(message);
        if (command !== undefined) this.#local.deliverCommand(command);
        return;
      }
      const decoded = decodeEvents(message);
      // Our own batches reached local watchers when they were published.
      if (decoded.origin === this.#id) return;
      this.#local.deliverEvents(decoded.taskId, decoded.events);
    } catch (err) {
      this.#errors.fail(err);
    }
  };

  /**
   * A probe whose echo did not come back in time means the subscriber no longer hears Redis
   * (a half-open TCP connection, a failover): replace it. While either connection is down,
   * node-redis is already reconnecting and nothing is probed.
   */
  #probeTick(): void {
    const probe = this.#probe;
    if (probe === undefined || this.#closed || probe.replacing) return;
    const timeout = this.#options.probeTimeoutMs ?? 2000;
    if (probe.nonce !== undefined) {
      if (Date.now() - probe.sentAt < timeout) return;
      probe.nonce = undefined;
      if (this.#sub?.isReady === true) {
        probe.replacing = true;
        this.#errors.fail(new Error(`taskstream redis bus: no probe echo within ${timeout} ms; replacing the subscriber connection`));
        void this.#openSubscriber().then(() => {
          this.#errors.ok();
          if (!this.#closed) this.#local.resync();
        }, (err: unknown) => this.#errors.fail(err)).finally(() => { probe.replacing = false; });
      }
      return;
    }
    if (this.#pub?.isReady !== true || this.#sub?.isReady !== true) return;
    const nonce = randomUUID();
    probe.nonce = nonce;
    probe.sentAt = Date.now();
    this.#pub.publish(this.#probeChannel, nonce).catch((err: unknown) => this.#errors.fail(err));
  }

  publishEvents(taskId: number, events: readonly EventRecord[]): void {
    if (events.length === 0) return;
    this.#local.deliverEvents(taskId, events);
    this.#send(this.#eventChannel(taskId), () => encodeEvents(this.#id, taskId, events, this.#options.inlineMaxBytes ?? 65_536));
  }

  publishCommand(command: Command): void {
    this.#send(this.#commandChannel, () => JSON.stringify(command));
  }

  /** Fire and forget: a publish while Redis is down is dropped and reported, never queued or thrown. */
  #send(channel: string, encode: () => string): void {
    if (this.#closed) return;
    if (this.#pub === undefined || !this.#pub.isReady) {
      this.#errors.fail(new Error('taskstream redis bus: not connected; message dropped'));
      return;
    }
    let message: string;
    try {
      message = encode();
    } catch (err) {
      this.#errors.fail(err);
      return;
    }
    if (this.#outbox.length === 0) queueMicrotask(() => this.#flush());
    this.#outbox.push(channel, message);
  }

  /**
   * Sends what this tick published, in order: a single publish as PUBLISH, more as one EVAL per
   * EVAL_MAX_BYTES (one command instead of one per task: the writer publishes every task of a
   * batch in the same tick).
   */
  #flush(): void {
    const pairs = this.#outbox;
    this.#outbox = [];
    const pub = this.#pub;
    if (this.#closed || pub === undefined) return;
    if (pub.sendCommand === undefined || this.#noScripting) {
      this.#publishEach(pub, pairs);
      return;
    }
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < pairs.length; i += 2) {
      bytes += pairs[i + 1]!.length;
      if (bytes >= EVAL_MAX_BYTES || i + 2 === pairs.length) {
        this.#evalPublish(pub, pairs.slice(start, i + 2));
        start = i + 2;
        bytes = 0;
      }
    }
  }

  /** One EVAL for these pairs (a single pair goes as a plain PUBLISH). */
  #evalPublish(pub: RedisClientSlice, pairs: string[]): void {
    if (pairs.length === 2) {
      this.#publishEach(pub, pairs);
      return;
    }
    pub.sendCommand!(['EVAL', PUBLISH_ALL, '0', ...pairs]).catch((err: unknown) => {
      if (!/NOPERM|unknown command|NOSCRIPT|not allowed/i.test(String(err))) {
        this.#errors.fail(err);
        return;
      }
      this.#noScripting = true;
      this.#publishEach(pub, pairs);
    });
  }

  #publishEach(pub: RedisClientSlice, pairs: readonly string[]): void {
    for (let i = 0; i < pairs.length; i += 2) {
      try {
        pub.publish(pairs[i]!, pairs[i + 1]!).catch((err: unknown) => this.#errors.fail(err));
      } catch (err) {
        this.#errors.fail(err);
      }
    }
  }

  async subscribeEvents(taskId: number, listener: (events: readonly EventRecord[]) => void): Promise<() => void> {
    if (this.#local.addEvents(taskId, listener)) await this.#subscribeChannel(this.#eventChannel(taskId));
    return () => {
      if (this.#local.removeEvents(taskId, listener)) this.#unsubscribeChannel(taskId);
    };
  }

  async subscribeCommands(listener: (command: Command) => void): Promise<() => void> {
    await this.ready();
    return this.#local.addCommands(listener);
  }

  /**
   * Resolves once SUBSCRIBE is acknowledged. While the subscriber is down it resolves at once:
   * the channel is subscribed on reconnect, and `onResync` follows.
   */
  async #subscribeChannel(channel: string): Promise<void> {
    await this.ready();
    const sub = this.#sub!;
    if (!sub.isReady) {
      this.#lost = true;
      return;
    }
    try {
      await sub.subscribe(channel, this.#onMessage);
    } catch (err) {
      this.#lost = true;
      this.#errors.fail(err);
    }
  }

  #unsubscribeChannel(taskId: number): void {
    const sub = this.#sub;
    if (sub === undefined || !sub.isReady || this.#closed) return;
    const channel = this.#eventChannel(taskId);
    // A watcher that came back in the meantime keeps the channel.
    queueMicrotask(() => {
      if (this.#local.watched(taskId) || sub !== this.#sub || !sub.isReady) return;
      sub.unsubscribe(channel).catch((err: unknown) => this.#errors.fail(err));
    });
  }

  onResync(listener: () => void): () => void {
    return this.#local.addResync(listener);
  }

  async ping(): Promise<void> {
    if (this.#closed) throw new Error('taskstream redis bus: closed');
    if (this.#pub?.isReady !== true) throw new Error('taskstream redis bus: Redis is not connected');
    if (this.#sub?.isReady !== true) throw new Error('taskstream redis bus: the subscriber connection is down');
    await this.#pub.ping();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#probe !== undefined) clearInterval(this.#probe.timer);
    await this.#connecting?.catch(() => {});
    const sub = this.#sub;
    if (sub !== undefined) {
      sub.on('error', () => {});
      sub.destroy();
    }
    const pub = this.#pub;
    if (pub !== undefined) {
      pub.off('error', this.#onPubError);
      pub.off('ready', this.#onPubReady);
      if (this.#ownsPub) {
        pub.on('error', () => {});
        pub.destroy();
      }
    }
  }
}
