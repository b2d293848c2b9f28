/**
 * Latency histogram over whole microseconds, mergeable across worker threads by adding counts.
 *
 * Exact below 128 µs; above, each power of two is cut into 128 equal buckets, so a value is known
 * to within 1/128 (< 0.8 %) of itself. 3,328 buckets cover 0 µs to 2^32 µs (over an hour).
 */
const SUB = 128;
const SUB_BITS = 7;
const OCTAVES = 32 - SUB_BITS;
const SIZE = SUB + OCTAVES * SUB;

export interface HistogramData {
  readonly counts: Float64Array;
  readonly n: number;
  readonly sum: number;
  readonly min: number;
  readonly max: number;
}

export interface LatencySummary {
  readonly count: number;
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p99: number | null;
  readonly max: number | null;
  readonly mean: number | null;
}

export class Histogram {
  readonly counts: Float64Array;
  n = 0;
  sum = 0;
  min = Infinity;
  max = -Infinity;

  constructor(data?: HistogramData) {
    this.counts = data === undefined ? new Float64Array(SIZE) : Float64Array.from(data.counts);
    if (data !== undefined) {
      this.n = data.n;
      this.sum = data.sum;
      this.min = data.min;
      this.max = data.max;
    }
  }

  /** Records a latency in milliseconds (a negative one, clock skew, counts as 0). */
  record(ms: number): void {
    const v = ms > 0 ? ms : 0;
    this.n++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    this.counts[indexOf(Math.min(0xffffffff, Math.round(v * 1000)))]!++;
  }

  merge(other: HistogramData): void {
    for (let i = 0; i < SIZE; i++) this.counts[i]! += other.counts[i]!;
    this.n += other.n;
    this.sum += other.sum;
    this.min = Math.min(this.min, other.min);
    this.max = Math.max(this.max, other.max);
  }

  /** The nearest-rank percentile in milliseconds (the bucket's middle, within the seen min/max). */
  percentile(p: number): number | null {
    if (this.n === 0) return null;
    if (p >= 100) return this.max;
    const rank = Math.max(1, Math.ceil((p / 100) * this.n));
    let seen = 0;
    for (let i = 0; i < SIZE; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, middleOf(i) / 1000));
    }
    return this.max;
  }

  summary(): LatencySummary {
    const r = (x: number | null): number | null => (x === null ? null : Math.round(x * 1000) / 1000);
    return {
      count: this.n,
      p50: r(this.percentile(50)),
      p90: r(this.percentile(90)),
      p99: r(this.percentile(99)),
      max: r(this.n > 0 ? this.max : null),
      mean: r(this.n > 0 ? this.sum / this.n : null),
    };
  }

  data(): HistogramData {
    return { counts: this.counts, n: this.n, sum: this.sum, min: this.min, max: this.max };
  }
}

function indexOf(us: number): number {
  if (us < SUB) return us;
  const octave = 31 - Math.clz32(us) - SUB_BITS; // 0 for 128…255 µs
  return SUB + octave * SUB + ((us >>> octave) - SUB);
}

function middleOf(index: number): number {
  if (index < SUB) return index;
  const octave = Math.floor((index - SUB) / SUB);
  const low = (SUB + ((index - SUB) % SUB)) * 2 ** octave;
  return low + 2 ** octave / 2;
}
