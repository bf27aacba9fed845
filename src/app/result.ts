// AsyncResult: a handle on a task's state and return value in the result backend.
import type { Celeriac } from './celeriac.js';
import type { ResultMeta } from '../backends/types.js';
import { READY_STATES, PROPAGATE_STATES } from '../backends/types.js';
import { decodeException } from './exceptions.js';
import type { RevokeOptions } from '../control/control.js';
import { TimeoutError } from '../backends/retry.js';
import { describeUrl } from '../brokers/registry.js';

export interface GetOptions {
  /** Milliseconds to wait; undefined waits forever. */
  timeout?: number;
  /** Reject with the task's error on FAILURE/REVOKED (default true). */
  propagate?: boolean;
  signal?: AbortSignal;
}

/** What the sender knows about a task it sent (for error messages). */
export interface SentTask {
  name: string;
  queue: string;
}

export class AsyncResult<R = unknown> {
  constructor(
    readonly id: string,
    private readonly app: Celeriac,
    private readonly sent?: SentTask,
  ) {}

  private async backend() {
    return this.app.requireBackend();
  }

  /** The stored meta (PENDING when nothing is stored yet). */
  async meta(): Promise<ResultMeta> {
    return (await this.backend()).get(this.id);
  }

  /** Wait for the task to finish and return its value; reject with its error on failure. */
  async get(opts: GetOptions = {}): Promise<R> {
    const backend = await this.backend();
    let meta: ResultMeta;
    try {
      meta = await backend.wait(this.id, { timeout: opts.timeout, signal: opts.signal });
    } catch (err) {
      if ((err as Error)?.name === 'TimeoutError' && opts.timeout !== undefined) throw await this.notReady(opts.timeout);
      throw err;
    }
    if (PROPAGATE_STATES.has(String(meta.status)) && opts.propagate !== false) {
      const err = decodeException(meta.result, meta.traceback);
      err.taskId = this.id;
      throw err;
    }
    return meta.result as R;
  }

  /** The same timeout error for every backend, saying what to check when the task never started. */
  private async notReady(timeoutMs: number): Promise<TimeoutError> {
    const state = await this.state().catch(() => 'unknown');
    const what = this.sent ? `task ${this.sent.name}[${this.id}]` : `task ${this.id}`;
    let hint: string;
    if (state === 'PENDING') {
      const queue = this.sent ? `queue ${JSON.stringify(this.sent.queue)}` : "the task's queue";
      hint = ` No worker may be consuming ${queue}: start one (celeriac -A <your app module> worker${this.sent ? ` -Q ${this.sent.queue}` : ''}) or check its -Q and broker URL.`;
      if (this.app.usesEmbeddedDefault) hint += ` The embedded default is ${describeUrl(this.app.brokerUrl)}: a worker started in another directory uses another file.`;
    } else {
      hint = ' It has not finished yet.';
    }
    return new TimeoutError(`The result of ${what} was not ready within ${timeoutMs / 1000} s (state ${state}).${hint}`);
  }

  async state(): Promise<string> {
    return String((await this.meta()).status);
  }

  /** Alias of state(), as in Celery. */
  status(): Promise<string> {
    return this.state();
  }

  async ready(): Promise<boolean> {
    return READY_STATES.has(await this.state());
  }

  async successful(): Promise<boolean> {
    return (await this.state()) === 'SUCCESS';
  }

  async failed(): Promise<boolean> {
    return (await this.state()) === 'FAILURE';
  }

  /** The result value, or the exception dict / progress meta for other states (Celery's .info). */
  async info(): Promise<unknown> {
    return (await this.meta()).result;
  }

  async traceback(): Promise<string | null> {
    return (await this.meta()).traceback;
  }

  /** Revoke this task on every worker (Celery's AsyncResult.revoke); terminate also stops it if running. */
  revoke(opts: RevokeOptions = {}): Promise<void> {
    return this.app.control.revoke(this.id, opts);
  }

  async forget(): Promise<void> {
    await (await this.backend()).forget(this.id);
  }

  toString(): string {
    return this.id;
  }

  toJSON(): string {
    return this.id;
  }
}
