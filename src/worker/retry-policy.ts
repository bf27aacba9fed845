// autoretry_for, retry_backoff, retry_backoff_max and retry_jitter, as Celery's task decorator applies them.
import type { RetryOptions } from '../app/context.js';
import { encodeException, Ignore, Reject, Retry } from '../app/exceptions.js';

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
