// Task.retry's message, and autoretry_for, retry_backoff, retry_backoff_max and retry_jitter as Celery's
// task decorator applies them.
import type { RetryOptions } from '../app/context.js';
import type { Settings } from '../app/settings.js';
import type { Delivery } from '../brokers/types.js';
import { encodeTaskV2, type Message, type TaskRequest } from '../protocol/message.js';
import { repr } from '../protocol/repr.js';
import { encodeException, exceptionRepr, Ignore, MaxRetriesExceededError, Reject, Retry } from '../app/exceptions.js';

type ErrorClass = abstract new (...a: never[]) => Error;

/** Does the error match one of the classes (or class names, which also match errors from other threads/processes)? */
export function matchesAny(error: unknown, list: unknown): boolean {
  if (!Array.isArray(list) || list.length === 0) return false;
  const type = encodeException(error).exc_type;
  return list.some((c) => {
    if (typeof c === 'string') return c === type || c === 'Exception' || c === 'Error';
    if (typeof c === 'function') return error instanceof (c as ErrorClass) || (c as ErrorClass).name === type || c === Error;
    return false;
  });
}

/** Celery's get_exponential_backoff_interval: factor * 2**retries, capped, optionally full jitter. */
export function backoffInterval(factor: number, retries: number, maximum: number, fullJitter: boolean, random: () => number = Math.random): number {
  let countdown = Math.min(maximum, factor * 2 ** retries);
  if (fullJitter) countdown = Math.floor(random() * (countdown + 1));
  return Math.max(0, countdown);
}

/** The retry() arguments autoretry uses for this error, or null when the error should not be retried. */
export function autoretryOptions(options: Record<string, unknown>, error: unknown, retries: number): RetryOptions | null {
  if (error instanceof Retry || error instanceof Reject || error instanceof Ignore) return null;
  if (!matchesAny(error, options.autoretry_for)) return null;
  if (matchesAny(error, options.dont_autoretry_for)) return null;
  const kwargs = (options.retry_kwargs ?? {}) as Record<string, unknown>;
  const opts: RetryOptions = { exc: error };
  const max = kwargs.max_retries ?? kwargs.maxRetries;
  if (max !== undefined) opts.maxRetries = max as number | null;
  if (typeof kwargs.countdown === 'number') opts.countdown = kwargs.countdown;
  const backoff = options.retry_backoff;
  if (backoff) {
    const factor = Math.trunc(Math.max(1, typeof backoff === 'number' ? backoff : 1));
    const maximum = typeof options.retry_backoff_max === 'number' ? options.retry_backoff_max : 600;
    const jitter = options.retry_jitter !== false;
    opts.countdown = backoffInterval(factor, retries, maximum, jitter);
  }
  return opts;
}

/**
 * Celery's Task.retry for a running task: the message that runs it again (same id, retries + 1, an
 * ETA) and the Retry to end this run with; or the error to end with when max_retries is spent.
 */
export function retryMessage(
  f: TaskRequest, d: Delivery, task: { options: Record<string, unknown> }, opts: RetryOptions, conf: Settings,
): { message: Message; queue: string; retry: Retry } | Error {
  const taskMax = task.options.max_retries as number | null | undefined;
  const max = opts.maxRetries !== undefined ? opts.maxRetries : opts.max_retries !== undefined ? opts.max_retries : taskMax !== undefined ? taskMax : conf.task_max_retries;
  if (max !== null && max !== undefined && f.retries >= max) {
    if (opts.exc instanceof Error) return opts.exc;
    return new MaxRetriesExceededError(`Can't retry ${f.task}[${f.id}] args:${repr(f.args)} kwargs:${repr(f.kwargs)}`);
  }
  const countdown = opts.countdown ?? (opts.eta ? undefined : ((task.options.default_retry_delay as number | undefined) ?? conf.task_default_retry_delay));
  const eta = opts.eta ? new Date(opts.eta) : new Date(Date.now() + (countdown ?? 0) * 1000);
  const message = encodeTaskV2(f.task, f.args, f.kwargs, {
    id: f.id, eta, expires: f.expires, retries: f.retries + 1, timeLimit: f.timelimit[0], softTimeLimit: f.timelimit[1],
    rootId: f.rootId, parentId: f.id, group: f.group, groupIndex: f.groupIndex, origin: f.origin ?? undefined,
    shadow: f.shadow, replyTo: f.replyTo ?? undefined, priority: opts.priority ?? f.priority, headers: f.headers,
    embed: f.embed, ignoreResult: f.ignoreResult ?? undefined, argsrepr: f.argsrepr, kwargsrepr: f.kwargsrepr,
    serializer: (task.options.serializer ?? conf.task_serializer) as string, tags: f.kombuTags,
  });
  const queue = opts.queue ?? (d.exchange === '' ? d.routingKey : d.queue) ?? d.queue;
  const when = countdown !== undefined && !opts.eta ? `${countdown}s` : eta.toISOString();
  const exc = opts.exc;
  const retry = new Retry(`Retry in ${when}${exc ? `: ${exceptionRepr(encodeException(exc))}` : ''}`, exc, eta);
  return { message, queue, retry };
}
