// kombu's QoS (transport/virtual/base.py), written once for every consumer: the prefetch window, the
// ETA messages the worker holds beyond it, and the deliveries held now (handed out, not yet settled).
import type { Logger } from '../app/log.js';

export class QoS<K, D> {
  /** Deliveries handed out and not yet settled, in the order they were handed out. */
  readonly held = new Map<K, D>();
  /** The window: concurrency × prefetch multiplier; 0 means no limit. */
  prefetch: number;
  /** ETA messages the worker holds until due; each raises the limit by one (Consumer.setEtaHeld). */
  etaHeld = 0;

  constructor(prefetch: number) {
    this.prefetch = count(prefetch, 'prefetch');
  }

  /** Most deliveries held at once (0: no limit). */
  get limit(): number {
    return this.prefetch === 0 ? 0 : this.prefetch + this.etaHeld;
  }

  /** How many more may be taken now, `pending` being already asked for (Infinity without a limit). */
  free(pending = 0): number {
    return this.prefetch === 0 ? Infinity : this.limit - this.held.size - pending;
  }

  setPrefetch(n: number): void {
    this.prefetch = count(n, 'prefetch');
  }

  setEtaHeld(n: number): void {
    this.etaHeld = count(n, 'ETA messages held');
  }

  /**
   * Warm shutdown: put back every held delivery, newest first (each pushed to the consuming end, so
   * the oldest is next in line again, as kombu restores them). `restore` returns false for one that
   * was settled meanwhile. Returns how many went back.
   */
  async restoreUnacked(restore: (d: D) => Promise<boolean> | boolean, logger: Logger): Promise<number> {
    let n = 0;
    for (const d of [...this.held.values()].reverse()) if (await restore(d)) n++;
    if (n > 0) logger.info(`Restoring ${n} unacknowledged message(s)`);
    return n;
  }
}

/** A count for the window: NaN or Infinity would make every fetch size NaN (Redis: ERR value is out of range). */
function count(n: number, what: string): number {
  if (!Number.isFinite(n)) throw new RangeError(`${what} must be a whole number, 0 or more (0: no limit), got ${n}`);
  return Math.max(0, Math.floor(n));
}
