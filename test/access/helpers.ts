/** Helpers of the access, limits and logging suites. */
import type { Logger } from '../../src/index.js';
import { within } from '../http/helpers.js';

const WAIT = 10_000;

interface Line { readonly level: string; readonly obj: Record<string, unknown>; readonly msg: string | undefined }

/** A logger that records every line, with a way to wait for one. */
export function recordingLogger(): Logger & { lines: Line[]; waitFor(match: (l: Line) => boolean, what: string): Promise<Line> } {
  const lines: Line[] = [];
  const waiters = new Set<() => void>();
  const make = (bindings: Record<string, unknown>): Logger => {
    const at = (level: string) => (obj: object, msg?: string): void => {
      lines.push({ level, obj: { ...bindings, ...obj }, msg });
      waiters.forEach((w) => w());
    };
    return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (b) => make({ ...bindings, ...b }) };
  };
  return Object.assign(make({}), {
    lines,
    waitFor(match: (l: Line) => boolean, what: string): Promise<Line> {
      return within(WAIT, new Promise<Line>((resolve) => {
        const check = (): void => {
          const found = lines.find(match);
          if (found) {
            waiters.delete(check);
            resolve(found);
          }
        };
        waiters.add(check);
        check();
      }), what);
    },
  });
}

