/**
 * A store wrapper that records every history read (what the hub asked for and what it got), to
 * check what replay costs the store: how many rows, how many bytes per page.
 */
import type { EventPage, Store } from '../../src/index.js';

export interface ReadLog {
  /** One entry per page that returned events (of `readEvents`, or one of a `readPages` call). */
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
  /** `readPages` calls (first pages read together), each with the tasks it asked for. */
  readonly batches: Array<readonly number[]>;
}

export function countingStore(inner: Store): Store & { reads: ReadLog } {
  const pages: ReadLog['pages'] = [];
  const times = new Map<number, number>();
  const reads: ReadLog = { pages, times, calls: 0, lookups: 0, positions: [], batches: [], rows: () => pages.reduce((n, p) => n + p.rows, 0) };
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
      const record = (afterSeq: number, maxBytes: number | undefined, page: EventPage | undefined): void => {
        if (page === undefined || page.events.length === 0) return;
        pages.push({ afterSeq, rows: page.events.length, maxBytes, bytes: page.events.reduce((n, e) => n + e.json.length, 0) });
        for (const e of page.events) times.set(e.seq, (times.get(e.seq) ?? 0) + 1);
      };
      if (key === 'readEvents') {
        return async (...args: Parameters<Store['readEvents']>) => {
          reads.calls += 1;
          const page = await target.readEvents(...args);
          record(args[1], args[2].maxBytes, page);
          return page;
        };
      }
      if (key === 'readPages' && target.readPages !== undefined) {
        return async (...args: Parameters<NonNullable<Store['readPages']>>) => {
          reads.batches.push(args[0].map((r) => r.taskId));
          const result = await target.readPages!(...args);
          result.forEach((page, i) => record(args[0][i]!.afterSeq, args[1].maxBytes, page));
          return result;
        };
      }
      const value: unknown = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  }) as Store & { reads: ReadLog };
}
