// Connection retries with Celery's settings, shared by every transport: broker_connection_max_retries,
// and broker_connection_retry_on_startup for a worker's first connection.
import type { Logger } from '../app/log.js';

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Reconnect delays: 1 s, 2 s, 3 s ... capped at 5 s (shorter than kombu's 2..30 s, so workers resume quickly). */
export function reconnectDelay(attempt: number): number {
  return Math.min(1000 * (attempt + 1), 5000);
}

/** broker_connection_max_retries: 0 or null means retry forever, as in Celery. */
export function maxConnectionRetries(value: number | null | undefined): number {
  return value == null || value <= 0 ? Infinity : value;
}

/** An error that retrying cannot fix (wrong password, missing database or vhost) says so with `permanent`. */
export function isPermanent(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { permanent?: unknown }).permanent === true;
}

export interface StartupRetry {
  /** Retries after the first attempt (Infinity: forever). */
  maxRetries: number;
  logger: Logger;
  /** Aborted when the app closes (a signal during start-up): stop retrying at once. */
  signal?: AbortSignal;
  /** Override for tests. */
  delay?: (attempt: number) => number;
}

/**
 * Celery's consumer start-up (ensure_connection): call `connect` until it succeeds, logging each
 * failure with the wait before the next attempt. After the last retry, or on an error retrying cannot
 * fix, the error is thrown with how many attempts were made.
 */
export async function connectWithRetry<T>(connect: () => Promise<T>, o: StartupRetry): Promise<T> {
  const delay = o.delay ?? reconnectDelay;
  for (let attempt = 0; ; attempt++) {
    try {
      return await connect();
    } catch (err) {
      const e = err as Error;
      if (isPermanent(err) || o.signal?.aborted) throw err;
      if (attempt >= o.maxRetries) {
        if (attempt > 0) e.message = `${e.message.replace(/\.?$/, '.')} Gave up after ${attempt + 1} attempts (broker_connection_max_retries = ${o.maxRetries}).`;
        throw err;
      }
      const wait = delay(attempt);
      const max = o.maxRetries === Infinity ? '∞' : String(o.maxRetries);
      o.logger.warning(`consumer: ${e.message.replace(/\.?$/, '.')} Trying again in ${(wait / 1000).toFixed(2)} seconds... (${attempt + 1}/${max})`);
      await sleep(wait, o.signal);
      if (o.signal?.aborted) throw err;
    }
  }
}
