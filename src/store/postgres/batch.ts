/**
 * Group commit inside the store: the calls made during one tick of the event loop go to the
 * database as one statement, and each caller gets its own row's result. Many runs finish, and many
 * HTTP requests create tasks, in the same tick; one statement each would cost a round trip and a
 * commit apiece.
 */
export class TickBatch<I, O> {
  readonly #write: (items: readonly I[]) => Promise<O[]>;
  readonly #key: ((item: I) => unknown) | undefined;
  readonly #max: number;
  #queue: Array<Pending<I, O>> = [];

  /**
   * `write` gets the items in call order and returns one result per item, in the same order.
   * Two items with the same `key`, when one is given, never share a statement (the later one goes in another).
   */
  constructor(write: (items: readonly I[]) => Promise<O[]>, key?: (item: I) => unknown, max = 500) {
    this.#write = write;
    this.#key = key;
    this.#max = max;
  }

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      if (this.#queue.length === 0) setImmediate(() => this.#flush());
      this.#queue.push({ item, resolve, reject });
    });
  }

  #flush(): void {
    let rest = this.#queue;
    this.#queue = [];
    while (rest.length > 0) {
      const batch: Array<Pending<I, O>> = [];
      const later: Array<Pending<I, O>> = [];
      const keys = new Set<unknown>();
      for (const p of rest) {
        const key = this.#key?.(p.item);
        if (batch.length >= this.#max || (key !== undefined && keys.has(key))) later.push(p);
        else {
          if (key !== undefined) keys.add(key);
          batch.push(p);
        }
      }
      this.#send(batch);
      rest = later;
    }
  }

  #send(batch: ReadonlyArray<Pending<I, O>>): void {
    this.#write(batch.map((p) => p.item)).then(
      (results) => {
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]!);
      },
      (err: unknown) => {
        for (const p of batch) p.reject(err);
      },
    );
  }
}

interface Pending<I, O> {
  readonly item: I;
  resolve(result: O): void;
  reject(err: unknown): void;
}
