/**
 * Retention: how many of each task's newest events the store keeps. The runtime's default
 * (`createTaskstream({ retainEvents })`, `serve --retain-events N`) applies to every type unless
 * the type sets its own (`defineTask({ retention: { events: N } })`, or `'all'` to keep every event).
 * The terminal event is never pruned; a reader positioned before what is kept gets a `gap` event.
 */
export interface RetentionPolicy {
  /** The newest events kept per task (the terminal one included), or `'all'`. */
  readonly events: number | 'all';
}

/** Throws a TypeError naming `what` unless `keep` is a whole number >= 1 (or undefined). */
export function checkRetainEvents(what: string, keep: unknown): void {
  if (keep === undefined) return;
  if (typeof keep !== 'number' || !Number.isSafeInteger(keep) || keep < 1) {
    throw new TypeError(`${what} must be a whole number >= 1 (events kept per task), got ${String(keep)}`);
  }
}

export function checkRetention(what: string, policy: unknown): void {
  if (policy === undefined) return;
  if (policy === null || typeof policy !== 'object' || !('events' in policy)) {
    throw new TypeError(`${what} must be { events: N } or { events: 'all' }`);
  }
  const events = (policy as { events: unknown }).events;
  if (events !== 'all') checkRetainEvents(`${what}.events`, events);
}

/** Events to keep for a type: its own policy, else the runtime's default; undefined keeps them all. */
export function keepFor(policy: RetentionPolicy | undefined, runtimeDefault: number | undefined): number | undefined {
  if (policy === undefined) return runtimeDefault;
  return policy.events === 'all' ? undefined : policy.events;
}
