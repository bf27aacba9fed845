// Executors run task handlers: on the event loop (async), in worker threads (thread) or child processes (process).
import type { TaskHandle } from './host.js';
import { isThenable } from '../app/context.js';
import { NotRegistered } from '../app/exceptions.js';
import { effectiveError, JobContext, type Job, type JobHooks } from './job.js';

export type PoolKind = 'async' | 'thread' | 'process';

/** Thrown into jobs that were running when the pool was closed (cold shutdown). */
export class PoolClosed extends Error {
  override name = 'PoolClosed';
}
export const POOL_KINDS: readonly PoolKind[] = ['async', 'thread', 'process'];

export interface Executor {
  readonly kind: PoolKind;
  start(): Promise<void>;
  /** Run one job; resolves with the return value or rejects with what the task raised. */
  run(job: Job, hooks: JobHooks): Promise<unknown>;
  /** Soft stop: fire the task's AbortSignal with this reason (the task decides what to do). */
  interrupt(key: string, reason: Error): void;
  /**
   * Hard stop: the task stops now and run() rejects with reason. False when the job is not running.
   * `signal` (revoke's terminate signal) is sent to a process-pool child; threads are terminated and
   * async tasks aborted whatever the signal.
   */
  kill(key: string, reason: Error, signal?: NodeJS.Signals): boolean;
  /** Change how many jobs may run at once (autoscale). */
  resize(n: number): void;
  close(): Promise<void>;
  /**
   * Run the handler now, on this event loop (the async pool only): a plain value comes back as it
   * is, a throw is rethrown, a thenable comes back as a Promise. Absent on thread/process pools.
   */
  runInline?(job: Job, hooks: JobHooks): unknown;
  /** Process ids of the children (stats), where there are children. */
  readonly pids?: string[];
}

/** An AbortController made only when a task looks at its signal (most never do; creating one per task is costly). */
class LazyAbort {
  private controller: AbortController | undefined;
  private aborted = false;
  private reason: unknown;

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  get signalIfCreated(): AbortSignal | undefined {
    return this.controller?.signal;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.controller?.abort(reason);
  }
}

/** The async pool: handlers run on the worker's event loop; a hard limit stops waiting but cannot stop CPU work. */
export class InlineExecutor implements Executor {
  readonly kind = 'async' as const;
  private readonly running = new Map<string, { abort: LazyAbort; fail: (e: Error) => void }>();

  constructor(private readonly tasks: ReadonlyMap<string, TaskHandle>) {}

  async start(): Promise<void> {}

  run(job: Job, hooks: JobHooks): Promise<unknown> {
    try {
      const value = this.runInline(job, hooks);
      return value instanceof Promise ? value : Promise.resolve(value);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Run the handler now. A handler that returns a plain value is done: its value comes back as it is
   * (never a Promise), and a throw is rethrown. One that returns a thenable gives back a Promise,
   * which interrupt() and kill() can reach until it settles.
   */
  runInline(job: Job, hooks: JobHooks): unknown {
    const task = this.tasks.get(job.taskName);
    if (!task) throw new NotRegistered(job.taskName);
    const abort = new LazyAbort();
    const ctx = new JobContext(task.name, job, abort, hooks);
    let value: unknown;
    try {
      value = task.call(ctx, job.args, job.kwargs);
    } catch (err) {
      throw effectiveError(err, abort.signalIfCreated);
    }
    if (!isThenable(value)) return value;
    return new Promise((resolve, reject) => {
      this.running.set(job.key, { abort, fail: reject });
      Promise.resolve(value).then(resolve, (err) => reject(effectiveError(err, abort.signalIfCreated))).finally(() => this.running.delete(job.key));
    });
  }

  interrupt(key: string, reason: Error): void {
    this.running.get(key)?.abort.abort(reason);
  }

  kill(key: string, reason: Error): boolean {
    const r = this.running.get(key);
    if (!r) return false;
    this.running.delete(key);
    r.abort.abort(reason);
    r.fail(reason);
    return true;
  }

  resize(): void {}

  async close(): Promise<void> {}
}
