// Global (all workers) rate limits, which Celery lacks: one token bucket per task name in a store every
// worker shares (Redis, the embedded SQLite database, or this process for memory://). Messages waiting for
// a token stay unacked in the worker, holding prefetch, as per-worker rate limits do.
import type { Broker, SharedBuckets } from '../brokers/types.js';
import type { ResultBackend } from '../backends/types.js';
import type { Logger } from '../app/log.js';
import type { TaskHandle } from './host.js';
import { parseRate } from './rate-limit.js';

/** Celery's buckets hold one token; so do ours, so a global '10/s' never bursts above 10 in a second. */
const CAPACITY = 1;
const RETRY_AFTER_ERROR_MS = 1000;

/**
 * The shared store for global rate limits: the broker's (Redis, SQLite, memory), else the result
 * backend's (Redis, SQLite); RabbitMQ has no shared state a worker can update atomically.
 */
export async function openSharedBuckets(broker: Broker, backend: ResultBackend | null, limited: string[]): Promise<SharedBuckets> {
  if (broker.sharedBuckets) return broker.sharedBuckets();
  if (backend?.sharedBuckets) return backend.sharedBuckets();
  throw new Error(
    `Task(s) ${limited.join(', ')} set global_rate_limit, which needs a store all workers share, and the ${broker.transport} broker ` +
      `${broker.displayUrl} has none: configure a redis:// or sqlite:// result_backend (--result-backend), ` +
      `or use rate_limit (per worker) instead.`,
  );
}

interface Waiting {
  perSecond: number;
  queue: (() => void)[];
  busy: boolean;
  timer: NodeJS.Timeout | null;
}

/** Releases waiting tasks one shared token at a time, per task name, in arrival order. */
export class GlobalRateLimiter {
  private readonly limits = new Map<string, Waiting>();
  private buckets: SharedBuckets | undefined;
  private stopped = false;

  constructor(private readonly logger: Logger) {}

  /** Task names with a global_rate_limit option, and their rates in tasks per second. */
  static limitsOf(tasks: Iterable<TaskHandle>): Map<string, number> {
    const out = new Map<string, number>();
    for (const t of tasks) {
      const r = parseRate(t.options.global_rate_limit as string | number | null | undefined);
      if (r > 0) out.set(t.name, r);
    }
    return out;
  }

  async start(limits: Map<string, number>, open: (names: string[]) => Promise<SharedBuckets>): Promise<void> {
    if (limits.size === 0) return;
    this.buckets = await open([...limits.keys()]);
    for (const [name, perSecond] of limits) this.limits.set(name, { perSecond, queue: [], busy: false, timer: null });
    this.logger.info(`Global rate limits (shared through ${this.buckets.where}): ${[...limits].map(([n, r]) => `${n}=${r}/s`).join(', ')}`);
  }

  has(name: string): boolean {
    return this.limits.has(name);
  }

  get waitingCount(): number {
    let n = 0;
    for (const w of this.limits.values()) n += w.queue.length;
    return n;
  }

  /** Run `release` once a shared token for this task name is taken. */
  schedule(name: string, release: () => void): void {
    const w = this.limits.get(name);
    if (!w) return release();
    w.queue.push(release);
    void this.pump(name, w);
  }

  private async pump(name: string, w: Waiting): Promise<void> {
    if (w.busy || w.timer || this.stopped) return;
    w.busy = true;
    let wait = 0;
    try {
      while (w.queue.length > 0 && !this.stopped) {
        wait = await this.buckets!.take(name, 1000 / w.perSecond, CAPACITY);
        if (wait > 0) break;
        w.queue.shift()?.();
      }
    } catch (err) {
      this.logger.warning(`Global rate limit of ${name}: could not reach ${this.buckets!.where} (${(err as Error).message}); waiting tasks stay unacked, retrying in ${RETRY_AFTER_ERROR_MS / 1000}s`);
      wait = RETRY_AFTER_ERROR_MS;
    } finally {
      w.busy = false;
    }
    if (w.queue.length > 0 && !this.stopped) {
      w.timer = setTimeout(() => {
        w.timer = null;
        void this.pump(name, w);
      }, wait);
    }
  }

  /** Forget what waits (shutdown restores those messages) and let go of the store. */
  async close(): Promise<void> {
    this.stopped = true;
    for (const w of this.limits.values()) {
      if (w.timer) clearTimeout(w.timer);
      w.timer = null;
      w.queue.length = 0;
    }
    await this.buckets?.close().catch(() => undefined);
    this.buckets = undefined;
  }
}
