// The async execution pool: runs at most `concurrency` jobs at once on the event loop.

/** What the pool runs: a job that returns no promise finished when it returned. */
export interface PoolJob {
  execute(): Promise<void> | void;
  /** execute() threw or rejected: the worker failed on this job, not its task (settle it, say so). */
  onInternalError?(err: unknown): void;
}

export class AsyncPool {
  private running = 0;
  private readonly waiting: PoolJob[] = [];
  private idleWaiters: (() => void)[] = [];

  constructor(public concurrency: number) {}

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Jobs waiting for a slot, next first (inspect reserved). */
  get waitingJobs(): readonly PoolJob[] {
    return this.waiting;
  }

  /** Queue a job; it starts as soon as a slot is free. */
  submit(job: PoolJob): void {
    this.waiting.push(job);
    this.pump();
  }

  /** Drop jobs that have not started; returns how many were dropped. */
  drain(): number {
    const n = this.waiting.length;
    this.waiting.length = 0;
    this.checkIdle();
    return n;
  }

  private readonly finished = (): void => {
    this.running--;
    this.pump();
    this.checkIdle();
  };

  /** Start waiting jobs while slots are free (after the concurrency was raised). */
  pump(): void {
    let finishedHere = false;
    while (this.running < this.concurrency && this.waiting.length > 0) {
      const job = this.waiting.shift()!;
      this.running++;
      let pending: Promise<void> | void;
      try {
        pending = job.execute();
      } catch (err) {
        pending = undefined; // its slot is free either way
        job.onInternalError?.(err);
      }
      if (pending) {
        pending.then(this.finished, (err: unknown) => {
          this.finished();
          job.onInternalError?.(err);
        });
      } else {
        // Finished synchronously: the slot is free for the next waiting job in this same loop.
        this.running--;
        finishedHere = true;
      }
    }
    if (finishedHere) this.checkIdle();
  }

  private checkIdle(): void {
    if (this.running === 0 && this.waiting.length === 0) {
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  /** Resolves when nothing is running (jobs still queued are not waited for if drained first). */
  onIdle(): Promise<void> {
    if (this.running === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Resolves when no job is running (ignores queued jobs). */
  async onNoneRunning(): Promise<void> {
    while (this.running > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
  }
}
