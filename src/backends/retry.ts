// Celery's retry policy (kombu retry_over_time): max_retries, interval_start/step/max, timeout.
import type { RetryPolicy } from '../app/settings.js';

export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

export class BackendUnavailable extends Error {
  override name = 'BackendUnavailable';
}

/** Errors that retrying cannot fix (e.g. InconsistencyError) carry `permanent = true`. */
function isPermanent(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { permanent?: unknown }).permanent === true;
}

/** Run fn, retrying with Celery's interval schedule; give up after max_retries or timeout seconds. */
export async function withRetries<T>(policy: RetryPolicy, what: string, fn: () => Promise<T>): Promise<T> {
  const start = Date.now();
  const maxRetries = policy.max_retries ?? Infinity;
  const deadline = policy.timeout != null ? start + policy.timeout * 1000 : Infinity;
  let interval = policy.interval_start ?? 0;
  for (let attempt = 0; ; attempt++) {
    try {
      return await withDeadline(fn(), deadline, what);
    } catch (err) {
      if (isPermanent(err)) throw err;
      const now = Date.now();
      if (attempt >= maxRetries || now >= deadline) {
        throw new BackendUnavailable(`Gave up ${what} after ${attempt + 1} attempt(s) in ${((now - start) / 1000).toFixed(1)}s: ${(err as Error).message}`, { cause: err });
      }
      const wait = Math.min(interval, policy.interval_max ?? 1) * 1000;
      await new Promise((r) => setTimeout(r, Math.max(0, Math.min(wait, deadline - now))));
      interval += policy.interval_step ?? 1;
    }
  }
}

function withDeadline<T>(p: Promise<T>, deadline: number, what: string): Promise<T> {
  if (deadline === Infinity) return p;
  // An attempt abandoned at the deadline may still fail later: that is expected, not unhandled.
  p.catch(() => undefined);
  const left = deadline - Date.now();
  if (left <= 0) return Promise.reject(new TimeoutError(`timed out ${what}`));
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`timed out ${what}`)), left);
    }),
  ]);
}
