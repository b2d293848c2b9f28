/** A process's memory and CPU time from /proc (Linux), for the server under test. */
import { readFileSync } from 'node:fs';

/** VmRSS and VmHWM (peak RSS) in KB. */
export function memory(pid: number): { rssKB: number; peakKB: number } | null {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKB: field('VmRSS'), peakKB: field('VmHWM') };
}

/** User + system CPU seconds of all the process's threads (clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: the fields after it start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so utime (14) and stime (15) are fields[11] and fields[12].
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
