// SQLITE_BUSY handling in the application: SQLite's own busy handler is unfair under a tight loop of
// writers and blocks the event loop while it waits, so it is kept short and we retry with jitter here.

export function isBusyError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** Delay before retry number `attempt` (0-based): exponential from 2 ms, capped at 200 ms, full jitter above half. */
export function busyBackoff(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(200, 2 * 2 ** Math.min(attempt, 10));
  return ceiling / 2 + random() * (ceiling / 2);
}

export interface BusyRetryOptions {
  /** Give up (rethrow the SQLITE_BUSY error) after this many milliseconds. */
  deadlineMs: number;
  /** Called before each retry, for stats and debug logs. */
  onRetry?: (attempt: number, err: unknown) => void;
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Run fn; on SQLITE_BUSY/SQLITE_LOCKED wait with jitter and run it again until the deadline. */
export async function retryBusy<T>(fn: () => T, opts: BusyRetryOptions): Promise<T> {
  const sleep = opts.sleep ?? defaultSleep;
  const deadline = Date.now() + opts.deadlineMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return fn();
    } catch (err) {
      if (!isBusyError(err) || Date.now() >= deadline) throw err;
      opts.onRetry?.(attempt, err);
      await sleep(busyBackoff(attempt));
    }
  }
}
