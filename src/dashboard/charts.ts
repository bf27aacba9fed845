// Throughput and runtime percentiles per minute, kept as counters while events arrive (not computed
// from the task rows, which at 100,000 events a minute would be millions of rows an hour).
// Runtimes are counted in log-spaced buckets (each 25 % wider than the last, 100 µs to ~2 h), so a
// percentile is read to within a bucket's width.
import type { MinuteCounts } from './store.js';

export const RUNTIME_BOUNDS: readonly number[] = Array.from({ length: 76 }, (_, i) => 1e-4 * 1.25 ** i);

export function emptyMinute(t: number): MinuteCounts {
  return { t, succeeded: 0, failed: 0, retried: 0, received: 0, runtimes: RUNTIME_BOUNDS.map(() => 0).concat(0) };
}

export function runtimeBucket(seconds: number): number {
  let lo = 0;
  let hi = RUNTIME_BOUNDS.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (seconds <= RUNTIME_BOUNDS[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo; // RUNTIME_BOUNDS.length: beyond the last bound
}

/** The q-th percentile (0..1) of the counted runtimes: the upper bound of the bucket it falls in. */
export function percentile(counts: readonly number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]!;
    if (seen >= rank) return RUNTIME_BOUNDS[Math.min(i, RUNTIME_BOUNDS.length - 1)]!;
  }
  return RUNTIME_BOUNDS[RUNTIME_BOUNDS.length - 1]!;
}

/** The minutes being counted now, flushed to the store each tick. */
export class MinuteCounters {
  private readonly open = new Map<number, MinuteCounts>();
  private readonly dirty = new Set<number>();

  constructor(private readonly load: (t: number) => MinuteCounts | undefined) {}

  private at(timestamp: number): MinuteCounts {
    const t = Math.floor(timestamp / 60) * 60;
    let m = this.open.get(t);
    if (!m) {
      m = this.load(t) ?? emptyMinute(t);
      this.open.set(t, m);
      // Keep only the last few minutes open: late events for older ones are rare.
      if (this.open.size > 5) this.open.delete(Math.min(...this.open.keys()));
    }
    this.dirty.add(t);
    return m;
  }

  count(subject: string, timestamp: number, runtime: number | undefined): void {
    if (subject !== 'succeeded' && subject !== 'failed' && subject !== 'retried' && subject !== 'received') return;
    const m = this.at(timestamp);
    m[subject]++;
    if (subject === 'succeeded' && typeof runtime === 'number' && runtime >= 0) m.runtimes[runtimeBucket(runtime)]!++;
  }

  /** The minutes changed since the last call. */
  takeDirty(): MinuteCounts[] {
    const out = [...this.dirty].map((t) => this.open.get(t)).filter((m): m is MinuteCounts => !!m);
    this.dirty.clear();
    return out.map((m) => ({ ...m, runtimes: [...m.runtimes] }));
  }
}
