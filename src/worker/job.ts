// What an executor runs and what it reports back; plain data, so it crosses thread and process boundaries.
import type { Request, RetryOptions, TaskContext } from '../app/context.js';
import type { ExceptionInfo } from '../backends/types.js';
import {
  encodeException, formatTraceback, Ignore, Reject, Retry, SoftTimeLimitExceeded, TaskError, TaskRevokedError,
} from '../app/exceptions.js';

export interface Job {
  /** Unique per execution (task id + delivery tag): a retried task id can be running twice briefly. */
  key: string;
  taskName: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  request: Request;
}

/** How a task asks the worker for things while it runs (the worker does the I/O). */
export interface JobHooks {
  /** Republish for retry; returns the error the task should end with (Retry, the exc, or MaxRetriesExceededError). */
  retry(opts: RetryOptions): Error;
  updateState(state: string, meta: unknown): Promise<void>;
  /** Record a result among the task's children (what it sent while running). */
  addTrail?(result: { asTuple(): unknown }): void;
}

/** Thrown inside a child executor by task.retry(): the parent does the republishing. */
export class RetryRequested extends Error {
  override name = 'RetryRequested';
  constructor(readonly opts: RetryOptions) {
    super('retry requested');
  }
}

export interface WireRetryOptions extends Omit<RetryOptions, 'exc'> {
  exc?: { info: ExceptionInfo; traceback: string };
}

/** A task outcome as sent from a child to the worker. */
export type WireOutcome =
  | { kind: 'success'; value: unknown }
  | { kind: 'retry'; opts: WireRetryOptions }
  | { kind: 'reject'; reason: string; requeue: boolean }
  | { kind: 'ignore' }
  | { kind: 'error'; info: ExceptionInfo; traceback: string };

export function outcomeOfError(error: unknown, signal?: AbortSignal): WireOutcome {
  const err = effectiveError(error, signal);
  if (err instanceof RetryRequested) {
    const { exc, ...rest } = err.opts;
    return { kind: 'retry', opts: exc === undefined ? rest : { ...rest, exc: { info: encodeException(exc), traceback: formatTraceback(exc) } } };
  }
  if (err instanceof Retry) return { kind: 'retry', opts: { eta: err.when ?? undefined, exc: err.exc === undefined ? undefined : { info: encodeException(err.exc), traceback: formatTraceback(err.exc) } } };
  if (err instanceof Reject) return { kind: 'reject', reason: err.reason, requeue: err.requeue };
  if (err instanceof Ignore) return { kind: 'ignore' };
  return { kind: 'error', info: encodeException(err), traceback: formatTraceback(err) };
}

/** Rebuild, in the worker, the error a child reported (TaskError keeps the remote type for storing). */
export function errorOfOutcome(o: Exclude<WireOutcome, { kind: 'success' } | { kind: 'retry' }>): Error {
  if (o.kind === 'reject') return new Reject(o.reason, o.requeue);
  if (o.kind === 'ignore') return new Ignore();
  return new TaskError(o.info, o.traceback);
}

export function retryOptionsOf(o: WireRetryOptions): RetryOptions {
  const { exc, ...rest } = o;
  return exc ? { ...rest, exc: new TaskError(exc.info, exc.traceback) } : rest;
}

/**
 * A task that awaited something cancellable ends with an AbortError when its signal fires; what the
 * user should see is why the signal fired (SoftTimeLimitExceeded, TaskRevokedError).
 */
export function effectiveError(error: unknown, signal?: AbortSignal): unknown {
  if (signal?.aborted && error instanceof Error && error.name === 'AbortError') {
    const reason = signal.reason;
    if (reason instanceof SoftTimeLimitExceeded || reason instanceof TaskRevokedError) return reason;
  }
  return error;
}

/**
 * The context of a task run by the inline executor: the same members as makeContext's, as a class,
 * so a task costs one object (the request and the signal are still built only when read).
 */
export class JobContext implements TaskContext {
  private req: Request | undefined;

  constructor(
    readonly name: string,
    private readonly job: Job,
    private readonly abort: { readonly signal: AbortSignal },
    private readonly hooks: JobHooks,
  ) {}

  get request(): Request {
    return (this.req ??= this.job.request);
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  retry(opts: RetryOptions = {}): never {
    throw this.hooks.retry(opts);
  }

  updateState(state: string, meta?: unknown): Promise<void> {
    return this.hooks.updateState(state, meta ?? null);
  }

  addTrail(result: { asTuple(): unknown }): void {
    this.hooks.addTrail?.(result);
  }
}

/** The context a bound task gets (Celery's self): request, signal, retry(), updateState(). */
export function makeContext(name: string, request: Request | (() => Request), signal: AbortSignal | (() => AbortSignal), hooks: JobHooks): TaskContext {
  let req = typeof request === 'function' ? undefined : request;
  return {
    name,
    // Built when first read: most tasks never look at their request.
    get request() {
      return (req ??= (request as () => Request)());
    },
    get signal() {
      return typeof signal === 'function' ? signal() : signal;
    },
    retry(opts: RetryOptions = {}): never {
      throw hooks.retry(opts);
    },
    updateState: (state: string, meta?: unknown) => hooks.updateState(state, meta ?? null),
  };
}
