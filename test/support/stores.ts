/**
 * A store wrapper that records every history read (what the hub asked for and what it got), to
 * check what replay costs the store: how many rows, how many bytes per page.
 */
import type { Store } from '../../src/index.js';

export interface ReadLog {
  /** One entry per `readEvents` call that returned events. */
  readonly pages: Array<{ afterSeq: number; rows: number; bytes: number; maxBytes: number | undefined }>;
  /** Rows returned, in all. */
  rows(): number;
  /** How many times each seq was returned. */
  readonly times: Map<number, number>;
  /** `readEvents` calls, whatever they returned. */
  calls: number;
  /** `getTask` calls. */
  lookups: number;
  /** `readPositions` calls (the position check), each with the tasks it asked for. */
  readonly positions: Array<readonly number[]>;
}

export function countingStore(inner: Store): Store & { reads: ReadLog } {
  const pages: ReadLog['pages'] = [];
  const times = new Map<number, number>();
  const reads: ReadLog = { pages, times, calls: 0, lookups: 0, positions: [], rows: () => pages.reduce((n, p) => n + p.rows, 0) };
  return new Proxy(inner, {
    get(target, key, receiver) {
      if (key === 'reads') return reads;
      if (key === 'getTask') {
        return async (id: number) => {
          reads.lookups += 1;
          return target.getTask(id);
        };
      }
      if (key === 'readPositions') {
        return async (taskIds: readonly number[]) => {
          reads.positions.push([...taskIds]);
          return target.readPositions(taskIds);
        };
      }
      if (key === 'readEvents') {
        return async (...args: Parameters<Store['readEvents']>) => {
          reads.calls += 1;
          const page = await target.readEvents(...args);
          if (page !== undefined && page.events.length > 0) {
            pages.push({
              afterSeq: args[1], rows: page.events.length, maxBytes: args[2].maxBytes,
              bytes: page.events.reduce((n, e) => n + e.json.length, 0),
            });
            for (const e of page.events) times.set(e.seq, (times.get(e.seq) ?? 0) + 1);
          }
          return page;
        };
      }
      const value: unknown = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  }) as Store & { reads: ReadLog };
}
