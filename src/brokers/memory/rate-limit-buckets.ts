// Shared token buckets for global rate limits on memory://: memory brokers live in one process, so
// the buckets do too (keyed by broker URL).
import type { SharedBuckets } from '../types.js';

const BUCKETS = new Map<string, number>();

export function memoryBuckets(where: string): SharedBuckets {
  return {
    where,
    take: async (name, intervalMs, capacity) => {
      const key = `${where}\u0000${name}`;
      const now = performance.now();
      const tat = Math.max(BUCKETS.get(key) ?? 0, now);
      const allowedAt = tat - (capacity - 1) * intervalMs;
      if (allowedAt > now) return Math.max(1, Math.ceil(allowedAt - now));
      BUCKETS.set(key, tat + intervalMs);
      return 0;
    },
    close: async () => undefined,
  };
}
