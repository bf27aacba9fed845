// Shared token buckets for global rate limits on Redis (Broker.sharedBuckets, and the Redis result
// backend's): one key per task name, updated by global-rate-limit.lua with Redis's own clock.
import type { Redis } from 'ioredis';
import type { SharedBuckets } from '../types.js';
import { scriptsFor } from './scripts.js';

export function redisBuckets(client: Redis, where: string): SharedBuckets {
  const scripts = scriptsFor(client);
  return {
    where,
    take: async (name, intervalMs, capacity) => Number(await scripts.run('global-rate-limit', [`celeriac.global_rate_limit.${name}`], [intervalMs, capacity])),
    close: async () => undefined, // the connection belongs to the broker or backend
  };
}
