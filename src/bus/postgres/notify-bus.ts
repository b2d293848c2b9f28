import { randomBytes } from 'node:crypto';
import type { EventRecord, Store } from '../../store/types.js';
import type { PgClient, PgPool } from '../../store/postgres/pool.js';
import { ErrorGate, Listeners, parseCommand } from '../listeners.js';
import type { Bus, Command, Delivery } from '../types.js';

/** The listening connection: a pooled client with node-postgres's events. */
interface ListenClient extends PgClient {
  on(event: 'notification', listener: (msg: { channel: string; payload?: string }) => void): unknown;
  on(event: 'error' | 'end', listener: (err?: Error) => void): unknown;
  removeAllListeners(event?: string): unknown;
}

export interface PostgresBusOptions {
  /** `postgres://…`; the bus opens (and closes) a small pool of its own. */
  readonly connectionString?: string;
  /** A pool of your own (the store's, say); the bus holds one of its connections for LISTEN and leaves the pool open. */
  readonly pool?: PgPool;
  /** The one NOTIFY channel every process on the database listens to. Default `taskstream`. */
  readonly channel?: string;
  /**
   * Where a hint (`taskId:lastSeq`) is turned into events: one read per task, shared by every
   * watcher of it. Without it, watchers of tasks running elsewhere catch up through the hub's
   * position check (about once a second).
   */
  readonly store?: Pick<Store, 'readEvents' | 'getTask'>;
  /** Bus errors (a failed flush, a lost listener); reported once per outage. */
  readonly onError?: (err: unknown) => void;
  /** Notifications are coalesced and sent at most this often, after commit, in their own statement. Default 10 ms. */
  readonly flushMs?: number;
}

type OpenPool = (connectionString: string) => Promise<PgPool>;

/** NOTIFY payloads stay under PostgreSQL's 8000-byte limit. */
const MAX_PAYLOAD = 7900;
const CHANNEL_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const READ_PAGE = { limit: 1000, maxBytes: 256 * 1024 };

/**
 * A bus over PostgreSQL LISTEN/NOTIFY, for a cluster without Redis; at-most-once and carrying
 * hints, never event data. Per process: one listening connection on one channel; everything sent
 * in a tick is coalesced and sent by a flusher (`SELECT pg_notify($1, p) FROM unnest($2::text[])
 * p`), never inside the append transaction, so NOTIFY's commit-time lock never slows appends.
 * Payloads: `e|origin|taskId|lastSeq` (a task's log moved) and `c|origin|json` (a command). A
 * dropped listening connection is reopened with backoff, then `onResync`.
 */
export class PostgresBus implements Bus {
  readonly delivery: Delivery = 'at-most-once';
  readonly #id = randomBytes(6).toString('hex');
  readonly #options: PostgresBusOptions;
  readonly #openPool: OpenPool;
  readonly #channel: string;
  readonly #local: Listeners;
  readonly #errors: ErrorGate;
  #pool: PgPool | undefined;
  #ownsPool = false;
  #listener: ListenClient | undefined;
  #connecting: Promise<void> | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #backoff = 100;
  /** Newest seq per task published here since the last flush; commands likewise. */
  #pendingEvents = new Map<number, number>();
  #pendingCommands: string[] = [];
  #flushTimer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  /** Per task: a store read in flight, and the newest seq announced meanwhile. */
  readonly #reads = new Map<number, { target: number }>();
  /** Watched tasks whose log position was read at subscribe time (so a hint reads from there). */
  readonly #positioned = new Set<number>();
  #closed = false;

  constructor(options: PostgresBusOptions, openPool: OpenPool) {
    this.#options = options;
    this.#openPool = openPool;
    this.#channel = options.channel ?? 'taskstream';
    if (!CHANNEL_NAME.test(this.#channel)) throw new TypeError(`postgresBus: channel must match ${CHANNEL_NAME.source}, got ${this.#channel}`);
    if (options.pool === undefined && options.connectionString === undefined) throw new TypeError('postgresBus: give connectionString or pool');
    const onError = options.onError ?? (() => {});
    this.#local = new Listeners(onError);
    this.#errors = new ErrorGate((err) => {
      if (!this.#closed) onError(err);
    });
  }

  ready(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('taskstream postgres bus: closed'));
    this.#connecting ??= this.#start().catch((err: unknown) => {
      this.#connecting = undefined;
      throw err;
    });
    return this.#connecting;
  }

  async #start(): Promise<void> {
    if (this.#options.pool !== undefined) {
      this.#pool = this.#options.pool;
    } else {
      this.#pool = await this.#openPool(this.#options.connectionString!);
      this.#ownsPool = true;
      this.#pool.on?.('error', (err) => this.#errors.fail(err));
    }
    await this.#listen();
  }

  /** Takes a connection from the pool and LISTENs on it; a failure later schedules a reconnect. */
  async #listen(): Promise<void> {
    const client = (await this.#pool!.connect()) as ListenClient;
    let dropped = false;
    const drop = (err?: Error): void => {
      if (dropped) return;
      dropped = true;
      if (err !== undefined) this.#errors.fail(err);
      client.removeAllListeners('notification');
      client.on('error', () => {});
      try { client.release(err ?? true); } catch { /* already gone */ }
      if (this.#listener === client) this.#listener = undefined;
      this.#scheduleReconnect();
    };
    client.on('error', drop);
    client.on('end', () => drop(new Error('taskstream postgres bus: the listening connection ended')));
    client.on('notification', (msg) => {
      if (msg.channel === this.#channel && msg.payload !== undefined) this.#onNotification(msg.payload);
    });
    try {
      await client.query(`LISTEN "${this.#channel}"`);
    } catch (err) {
      drop(err as Error);
      throw err;
    }
    this.#listener = client;
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#reconnectTimer !== undefined) return;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#closed) return;
      this.#listen().then(() => {
        this.#backoff = 100;
        this.#errors.ok();
        if (!this.#closed) this.#local.resync();
      }, (err: unknown) => {
        this.#errors.fail(err);
        this.#backoff = Math.min(this.#backoff * 2, 5000);
        this.#scheduleReconnect();
      });
    }, this.#backoff);
    this.#reconnectTimer.unref();
  }

  #onNotification(payload: string): void {
    try {
      const kind = payload.slice(0, 2);
      const rest = payload.slice(2);
      const bar = rest.indexOf('|');
      const origin = rest.slice(0, bar);
      const body = rest.slice(bar + 1);
      if (kind === 'c|') {
        const command = parseCommand(body);
        if (command !== undefined) this.#local.deliverCommand(command);
      } else if (kind === 'e|' && origin !== this.#id) {
        const [taskId, seq] = body.split('|').map(Number) as [number, number];
        this.#onHint(taskId, seq);
      }
    } catch (err) {
      this.#errors.fail(err);
    }
  }

  /** A task's log reached `seq`: read what this process has not delivered yet, once for all its watchers. */
  #onHint(taskId: number, seq: number): void {
    const store = this.#options.store;
    const seen = this.#local.seen(taskId);
    if (store === undefined || seen === undefined || seq <= seen) return;
    const inFlight = this.#reads.get(taskId);
    if (inFlight !== undefined) {
      inFlight.target = Math.max(inFlight.target, seq);
      return;
    }
    const read = { target: seq };
    this.#reads.set(taskId, read);
    void (async () => {
      try {
        for (;;) {
          const from = this.#local.seen(taskId);
          if (from === undefined || from >= read.target || this.#closed) return;
          // Position unknown (its read failed): the newest event is enough; a watcher behind it reads the rest itself.
          const after = this.#positioned.has(taskId) ? from : Math.max(from, read.target - 1);
          const page = await store.readEvents(taskId, after, READ_PAGE);
          const now = this.#local.seen(taskId) ?? Number.MAX_SAFE_INTEGER;
          const fresh = (page?.events ?? []).filter((e) => e.seq > now);
          if (fresh.length > 0) this.#local.deliverEvents(taskId, fresh);
          if (page === undefined || page.events.length === 0) return;
        }
      } catch (err) {
        this.#errors.fail(err);
      } finally {
        this.#reads.delete(taskId);
      }
    })();
  }

  publishEvents(taskId: number, events: readonly EventRecord[]): void {
    if (events.length === 0 || this.#closed) return;
    this.#local.deliverEvents(taskId, events);
    const last = events[events.length - 1]!.seq;
    if (last > (this.#pendingEvents.get(taskId) ?? 0)) this.#pendingEvents.set(taskId, last);
    this.#scheduleFlush();
  }

  publishCommand(command: Command): void {
    if (this.#closed) return;
    const payload = `c|${this.#id}|${JSON.stringify(command)}`;
    if (Buffer.byteLength(payload) > MAX_PAYLOAD) {
      // The store has the command; lease renewal delivers it.
      this.#errors.fail(new Error(`taskstream postgres bus: a ${command.kind} command is too large to notify; it arrives through the store`));
      return;
    }
    this.#pendingCommands.push(payload);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined || this.#flushing !== undefined) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#flushing = this.#flush().finally(() => {
        this.#flushing = undefined;
        if (this.#pendingEvents.size > 0 || this.#pendingCommands.length > 0) this.#scheduleFlush();
      });
    }, this.#options.flushMs ?? 10);
  }

  /** One statement, its own transaction, after the events' commit: every payload queued since the last one. */
  async #flush(): Promise<void> {
    const pool = this.#pool;
    if (pool === undefined) return;
    const payloads = this.#pendingCommands;
    for (const [taskId, seq] of this.#pendingEvents) payloads.push(`e|${this.#id}|${taskId}|${seq}`);
    this.#pendingCommands = [];
    this.#pendingEvents = new Map();
    if (payloads.length === 0) return;
    try {
      await pool.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) p', [this.#channel, payloads]);
      this.#errors.ok();
    } catch (err) {
      this.#errors.fail(err);
    }
  }

  async subscribeEvents(taskId: number, listener: (events: readonly EventRecord[]) => void): Promise<() => void> {
    // One channel for everything, LISTENed in ready(). The task's first subscription reads where
    // its log stands, so every event stored after this resolves is read on its hint.
    await this.ready();
    const first = this.#local.addEvents(taskId, listener);
    const store = this.#options.store;
    if (first && store !== undefined) {
      try {
        const task = await store.getTask(taskId);
        if (task !== undefined) {
          this.#local.raiseSeen(taskId, task.lastSeq);
          this.#positioned.add(taskId);
        }
      } catch (err) {
        // Then the first hint delivers the newest event only; watchers read the rest themselves.
        this.#errors.fail(err);
      }
    }
    return () => {
      if (this.#local.removeEvents(taskId, listener)) this.#positioned.delete(taskId);
    };
  }

  async subscribeCommands(listener: (command: Command) => void): Promise<() => void> {
    await this.ready();
    return this.#local.addCommands(listener);
  }

  onResync(listener: () => void): () => void {
    return this.#local.addResync(listener);
  }

  async ping(): Promise<void> {
    if (this.#closed) throw new Error('taskstream postgres bus: closed');
    if (this.#listener === undefined) throw new Error('taskstream postgres bus: the listening connection is down');
    await this.#pool!.query('SELECT 1');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    await this.#flushing;
    // Whatever was published before close still goes out (a cancel, the last events' hint).
    await this.#flush();
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    await this.#connecting?.catch(() => {});
    const listener = this.#listener;
    this.#listener = undefined;
    if (listener !== undefined) {
      listener.removeAllListeners('notification');
      listener.removeAllListeners('end');
      listener.on('error', () => {});
      await listener.query(`UNLISTEN "${this.#channel}"`).catch(() => {});
      listener.release(true);
    }
    if (this.#ownsPool) await this.#pool?.end().catch(() => {});
  }
}
