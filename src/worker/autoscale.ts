// Autoscale: more pool slots while work waits, one fewer after keepalive without any (Celery's
// Autoscaler, simplified).
import type { Logger } from '../app/log.js';
import type { AsyncPool } from './pool.js';
import type { Executor } from './executor.js';

export interface AutoscaleLimits {
  max: number;
  min: number;
  keepaliveMs: number;
}

export class Autoscaler {
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly limits: AutoscaleLimits, private readonly pool: AsyncPool, private readonly executor: Executor, private readonly logger: Logger) {}

  start(): void {
    const a = this.limits;
    let idleSince = Date.now();
    this.timer = setInterval(() => {
      const cur = this.pool.concurrency;
      if (this.pool.queued > 0 && cur < a.max) {
        const n = Math.min(a.max, cur + this.pool.queued);
        this.resize(n, 'up');
        this.pool.pump();
        idleSince = Date.now();
      } else if (this.pool.queued === 0 && this.pool.active < cur) {
        if (cur > a.min && Date.now() - idleSince > a.keepaliveMs) {
          this.resize(Math.max(a.min, this.pool.active, cur - 1), 'down');
          idleSince = Date.now();
        }
      } else idleSince = Date.now();
    }, 500);
    this.timer.unref();
  }

  /** The autoscale control command: a new range (the caller moves the pool into it). */
  update(max: number, min: number): void {
    this.limits.max = max;
    this.limits.min = min;
  }

  private resize(n: number, way: 'up' | 'down'): void {
    this.logger.info(`Scaling ${way} the pool to ${n}`);
    this.pool.concurrency = n;
    this.executor.resize(n);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
