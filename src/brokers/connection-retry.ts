// Connection retries with Celery's settings, shared by every transport: a worker's first connection
// (broker_connection_retry_on_startup, ensure_connection) and a consumer that lost its broker
// (broker_connection_retry / broker_connection_max_retries): every transport counts its consecutive
// failed attempts here, logs each distinct failure once, and gives up with the same words (the worker
// then exits non-zero).
import type { Settings } from '../app/settings.js';
import type { Logger } from '../app/log.js';

export type RetrySettings = Pick<Settings, 'broker_connection_retry' | 'broker_connection_max_retries'>;

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

/** A consumer stopped for good: no more deliveries will come from it. */
export class ConsumerGaveUp extends Error {
  override name = 'OperationalError';
}

export interface ConsumerRetriesOptions {
  settings: Partial<RetrySettings>;
  /** The broker URL without its password. */
  where: string;
  logger: Logger;
  /** ConsumeOptions.onFailure: told once when the retries are spent (else the error is logged here). */
  onFailure?: (err: Error) => void;
  /** Stop fetching (called once, before onFailure). */
  stop: () => void;
  /** The clock (tests). */
  now?: () => number;
}

/** Consecutive failed attempts of one consumer, against the retry settings. */
export class ConsumerRetries {
  private failures = 0;
  private lastCounted = 0;
  /** The failure logged last: the same one again is not logged again until the consumer recovers. */
  private lastLogged = '';
  private stopped: ConsumerGaveUp | undefined;

  constructor(private readonly o: ConsumerRetriesOptions) {}

  /** Attempts allowed after a loss: 0 with broker_connection_retry=False, Infinity when unlimited. */
  get max(): number {
    const s = this.o.settings;
    return s.broker_connection_retry === false ? 0 : maxConnectionRetries(s.broker_connection_max_retries);
  }

  /** Failed attempts since the last success. */
  get count(): number {
    return this.failures;
  }

  /** The error the consumer stopped with, once it gave up. */
  get gaveUp(): ConsumerGaveUp | undefined {
    return this.stopped;
  }

  /** "(3/100)", as Celery counts its attempts in the log. */
  progress(): string {
    return `(${this.failures}/${this.max === Infinity ? '∞' : this.max})`;
  }

  /**
   * One more failed attempt: `why` says what failed, `next` what happens now ("retrying in 2s").
   * Returns true when no retry is left: the consumer was stopped and its owner told.
   */
  failed(why: string, next: string): boolean {
    if (this.stopped) return true;
    // Attempts count on one schedule on every transport (reconnectDelay apart, as RabbitMQ reconnects),
    // however fast a transport retries underneath (ioredis reconnects within 2 s, a SQLite claim at once).
    const now = (this.o.now ?? Date.now)();
    const counts = this.failures === 0 || now - this.lastCounted >= reconnectDelay(this.failures - 1);
    if (counts) {
      this.lastCounted = now;
      this.failures++;
    }
    const sentence = /[.!?]$/.test(why) ? why : `${why}.`;
    const max = this.max;
    if (counts && (max === 0 || this.failures > max)) {
      this.stopped = new ConsumerGaveUp(max === 0
        ? `Retrying to re-establish a connection to the message broker after a connection loss has been disabled (app.conf.broker_connection_retry=False): ${sentence} Shutting down...`
        : `Gave up consuming from ${this.o.where} after ${max} retries (broker_connection_max_retries=${max}): ${sentence} ` +
          'Start the worker again once the broker answers, or raise broker_connection_max_retries (0 retries forever).');
      this.o.stop();
      if (this.o.onFailure) this.o.onFailure(this.stopped);
      else this.o.logger.critical(`consumer: ${this.stopped.message}`);
      return true;
    }
    if (why !== this.lastLogged) {
      this.lastLogged = why;
      this.o.logger.warning(`consumer: Cannot consume from ${this.o.where}: ${sentence} ${capitalize(next)} ${this.progress()}; the same error is not logged again.`);
    } else {
      this.o.logger.debug(`consumer: still failing ${this.progress()}: ${why}`);
    }
    return false;
  }

  /** The consumer works again: the count starts over. */
  succeeded(): void {
    if (this.failures === 0) return;
    this.o.logger.info(`consumer: consuming from ${this.o.where} again after ${this.failures} failed attempt(s)`);
    this.failures = 0;
    this.lastLogged = '';
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
