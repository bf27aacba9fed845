// Celery's rate limits: "10/s", "100/m", "1000/h" or a bare number (per second), enforced by a token bucket.

/** Tasks per second for a rate string (Celery's celery.utils.time.rate); 0 means no limit. */
export function parseRate(r: string | number | null | undefined): number {
  if (r === null || r === undefined || r === '') return 0;
  if (typeof r === 'number') {
    if (!Number.isFinite(r) || r < 0) throw new TypeError(`Invalid rate limit ${r}: expected a number of tasks per second`);
    return r;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*([smh]))?\s*$/.exec(r);
  if (!m) throw new TypeError(`Invalid rate limit ${JSON.stringify(r)}: expected e.g. '10/s', '100/m', '1000/h' or a number`);
  const n = Number(m[1]);
  const per = m[2] === 'm' ? 60 : m[2] === 'h' ? 3600 : 1;
  return n / per;
}

/** kombu's TokenBucket: `rate` tokens per second, holding at most `capacity` (Celery uses capacity 1). */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(readonly rate: number, readonly capacity = 1, private readonly now: () => number = () => performance.now()) {
    this.tokens = capacity;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((t - this.last) / 1000) * this.rate);
    this.last = t;
  }

  /** Take a token if one is available. */
  take(): boolean {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /** Milliseconds until a token will be available (0 if one is now). */
  expectedWait(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : ((1 - this.tokens) / this.rate) * 1000;
  }
}

/** Per-task-name queues of work waiting for their bucket, released one token at a time. */
export class RateLimiter {
  private readonly buckets = new Map<string, { bucket: TokenBucket; waiting: (() => void)[]; timer: NodeJS.Timeout | null }>();

  /** Change or remove (0) the limit of a task name (the rate_limit control command does this). */
  set(name: string, perSecond: number): void {
    const cur = this.buckets.get(name);
    if (perSecond <= 0) {
      if (cur) {
        if (cur.timer) clearTimeout(cur.timer);
        this.buckets.delete(name);
        for (const f of cur.waiting.splice(0)) f();
      }
      return;
    }
    const bucket = new TokenBucket(perSecond);
    if (cur) {
      cur.bucket = bucket;
      this.pump(name);
    } else this.buckets.set(name, { bucket, waiting: [], timer: null });
  }

  has(name: string): boolean {
    return this.buckets.has(name);
  }

  /** Run `release` when the task may start: now if a token is free, later otherwise (in arrival order). */
  schedule(name: string, release: () => void): void {
    const b = this.buckets.get(name);
    if (!b) return release();
    b.waiting.push(release);
    this.pump(name);
  }

  get waitingCount(): number {
    let n = 0;
    for (const b of this.buckets.values()) n += b.waiting.length;
    return n;
  }

  private pump(name: string): void {
    const b = this.buckets.get(name);
    if (!b || b.timer) return;
    while (b.waiting.length > 0 && b.bucket.take()) b.waiting.shift()!();
    if (b.waiting.length > 0) {
      b.timer = setTimeout(() => {
        b.timer = null;
        this.pump(name);
      }, Math.max(1, Math.ceil(b.bucket.expectedWait())));
    }
  }

  /** Forget everything waiting (shutdown: those messages are restored unacked). */
  clear(): void {
    for (const b of this.buckets.values()) {
      if (b.timer) clearTimeout(b.timer);
      b.timer = null;
      b.waiting.length = 0;
    }
  }
}
