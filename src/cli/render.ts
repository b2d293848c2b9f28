/**
 * How remote commands print: one line per event, a progress bar on a terminal, a task table.
 */
import cliProgress from 'cli-progress';

export interface EventLike {
  readonly seq: number;
  readonly type: string;
  readonly data: Record<string, unknown>;
}

export interface TaskRow {
  readonly id: number;
  readonly app: string;
  readonly type: string;
  readonly status: string;
  readonly attempt: number;
  readonly created_at: string;
  readonly finished_at: string | null;
  readonly last_seq: number;
}

/** `seq type {data}`: the event's own data, compact, on one line. */
export function eventLine(event: EventLike): string {
  return `${event.seq} ${event.type} ${JSON.stringify(event.data)}`;
}

/** How far an event says the task is, when it says so: `step` of `total_steps`/`total`, or `percentage`. */
export function progressOf(data: Record<string, unknown>): { value: number; total: number } | undefined {
  const { step, total_steps, total, percentage } = data;
  const of = typeof total_steps === 'number' ? total_steps : typeof total === 'number' ? total : undefined;
  if (typeof step === 'number' && of !== undefined && of > 0) return { value: Math.min(step, of), total: of };
  if (typeof percentage === 'number' && Number.isFinite(percentage)) return { value: Math.max(0, Math.min(100, percentage)), total: 100 };
  return undefined;
}

export interface EventView {
  event(event: EventLike): void;
  stop(): void;
}

/** Plain lines, for pipes and files. */
export function plainView(out: (line: string) => void): EventView {
  return { event: (e) => out(eventLine(e)), stop: () => {} };
}

/**
 * On a terminal: event lines scroll above a progress bar that appears with the first event
 * carrying progress.
 */
export function barView(stream: NodeJS.WriteStream, label: string): EventView {
  const multibar = new cliProgress.MultiBar({
    stream,
    format: `${label} {bar} {percentage}% | {value}/{total}`,
    hideCursor: true,
    clearOnComplete: false,
    stopOnComplete: false,
    autopadding: true,
  }, cliProgress.Presets.shades_classic);
  let bar: cliProgress.SingleBar | undefined;
  return {
    event(e) {
      multibar.log(`${eventLine(e)}\n`);
      const progress = progressOf(e.data);
      if (progress !== undefined && bar === undefined) bar = multibar.create(progress.total, progress.value);
      else if (progress !== undefined) {
        bar?.setTotal(progress.total);
        bar?.update(progress.value);
      }
      // Draw now: logged lines otherwise wait for the bar's redraw timer, which a short task outruns.
      multibar.update();
    },
    stop() {
      multibar.update();
      multibar.stop();
    },
  };
}

/** A fixed-width table of tasks, newest first as the server returned them. */
export function taskTable(tasks: readonly TaskRow[]): string[] {
  const header = ['ID', 'TASK', 'STATUS', 'ATTEMPT', 'EVENTS', 'CREATED', 'FINISHED'];
  const rows = tasks.map((t) => [String(t.id), `${t.app}/${t.type}`, t.status, String(t.attempt), String(t.last_seq), t.created_at, t.finished_at ?? '-']);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const format = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [format(header), ...rows.map(format)];
}
