// Running a task inline, as Celery's Task.apply() and task_always_eager do: no broker, no worker, the
// handler called in this process and its outcome returned as an EagerResult.
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Celeriac } from './celeriac.js';
import type { Task } from './task.js';
import { AsyncResult, type GetOptions } from './result.js';
import { currentTask, type Request, type RetryOptions, type TaskContext } from './context.js';
import { formatTraceback, Ignore, MaxRetriesExceededError, Reject, Retry } from './exceptions.js';
import { PROPAGATE_STATES, type ResultMeta, type TaskState } from '../backends/types.js';
import { isoformat } from '../protocol/json.js';
import { repr } from '../protocol/repr.js';
import { autoretryOptions } from '../worker/retry-policy.js';

/** A result that is already known (Celery's EagerResult): nothing is read from a result backend. */
export class EagerResult<R = unknown> extends AsyncResult<R> {
  constructor(
    id: string,
    app: Celeriac,
    /** The return value, or the error the task threw. */
    readonly value: unknown,
    readonly finalState: TaskState,
    private readonly tb: string | null,
    readonly taskName: string,
  ) {
    super(id, app);
  }

  override async meta(): Promise<ResultMeta> {
    return { status: this.finalState, result: this.value, traceback: this.tb, children: [], date_done: isoformat(new Date()), task_id: this.id, name: this.taskName };
  }

  /** The value; rejects with the task's own error for FAILURE unless propagate is false (as Celery's EagerResult.get). */
  override async get(opts: GetOptions = {}): Promise<R> {
    if (PROPAGATE_STATES.has(this.finalState) && opts.propagate !== false) {
      throw this.value instanceof Error ? this.value : new Error(String(this.value));
    }
    return this.value as R;
  }

  override async forget(): Promise<void> {
    /* nothing was stored */
  }

  override async revoke(): Promise<void> {
    /* already finished */
  }

  override toString(): string {
    return this.id;
  }
}

export interface EagerOptions {
  task_id?: string;
  retries?: number;
  /** Throw the task's error instead of returning a failed EagerResult (default: task_eager_propagates). */
  throw?: boolean;
  headers?: Record<string, unknown>;
  exchange?: string;
  routing_key?: string;
  priority?: number;
  queue?: string;
}

/** The retry limit for one retry() call: its own, then the task's, then task_max_retries (null: no limit). */
function retryLimit<A extends unknown[], R>(task: Task<A, R>, opts: RetryOptions): number | null | undefined {
  if (opts.maxRetries !== undefined) return opts.maxRetries;
  if (opts.max_retries !== undefined) return opts.max_retries;
  const own = task.options.max_retries as number | null | undefined;
  return own !== undefined ? own : task.app.conf.task_max_retries;
}

/**
 * Celery's Task.apply: run the handler here and now. A retry runs the task again at once (the countdown
 * is not waited for), up to its retry limit; autoretry_for applies as on a worker.
 */
export async function applyEagerly<A extends unknown[], R>(task: Task<A, R>, args: unknown[], kwargs: Record<string, unknown>, options: EagerOptions = {}): Promise<EagerResult<R>> {
  const app = task.app;
  app.checkSettings();
  const id = options.task_id ?? randomUUID();
  const propagate = options.throw ?? app.conf.task_eager_propagates === true;
  const parent = currentTask()?.request;
  const hostname = os.hostname();
  for (let retries = options.retries ?? 0; ; retries++) {
    const request: Request = {
      id, task: task.name, args, kwargs, retries, eta: null, expires: null, headers: options.headers ?? {},
      rootId: parent ? parent.rootId ?? id : id, parentId: parent?.id ?? null, group: null, groupIndex: null, origin: null,
      hostname, replyTo: null, correlationId: id, timelimit: [null, null], isEager: true,
      deliveryInfo: { exchange: options.exchange ?? '', routingKey: options.routing_key ?? options.queue ?? '', priority: options.priority ?? 0, redelivered: false },
    };
    const retry = (opts: RetryOptions = {}): Error => {
      const max = retryLimit(task, opts);
      if (max !== null && max !== undefined && retries >= max) {
        if (opts.exc instanceof Error) return opts.exc;
        return new MaxRetriesExceededError(`Can't retry ${task.name}[${id}] args:${repr(args)} kwargs:${repr(kwargs)}`);
      }
      return new Retry(`Retry (eager: runs again at once)`, opts.exc, null);
    };
    const ctx: TaskContext = {
      name: task.name,
      request,
      signal: new AbortController().signal,
      retry: (opts?: RetryOptions): never => {
        throw retry(opts);
      },
      updateState: async (state: string, meta?: unknown) => {
        // As Celery: update_state stores through the result backend, when there is one.
        const backend = await app.backend();
        await backend?.store({ status: state, result: meta ?? null, traceback: null, children: [], date_done: null, task_id: id });
      },
    };
    let error: unknown;
    try {
      const value = await task.call(ctx, args, kwargs);
      return new EagerResult<R>(id, app, value, 'SUCCESS', null, task.name);
    } catch (err) {
      error = err;
    }
    const auto = autoretryOptions(task.options, error, retries);
    if (auto) error = retry(auto);
    if (error instanceof Retry) continue;
    if (propagate) throw error;
    const state: TaskState = error instanceof Ignore ? 'IGNORED' : error instanceof Reject ? 'REJECTED' : 'FAILURE';
    return new EagerResult<R>(id, app, error, state, formatTraceback(error), task.name);
  }
}
