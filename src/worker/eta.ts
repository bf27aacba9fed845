// ETA and countdown messages held unacked until due (Celery's timer + qos.increment_eventually): the
// consumer is told how many are held, which raises its prefetch limit by that many.
import type { Request } from './request.js';

/** setTimeout holds at most ~24.8 days; longer ETAs are re-armed in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class EtaSchedule {
  private readonly timers = new Map<Request, NodeJS.Timeout>();

  /** `setHeld` is told the count after every change (Consumer.setEtaHeld). */
  constructor(private readonly setHeld: (n: number) => void) {}

  get size(): number {
    return this.timers.size;
  }

  /** Hold `request` for `delayMs`, then call `due` with it. */
  hold(request: Request, delayMs: number, due: (r: Request) => void): void {
    const arm = (ms: number) => {
      const step = Math.min(ms, MAX_TIMER_MS);
      this.timers.set(request, setTimeout(() => {
        if (ms > step) return arm(ms - step);
        this.release(request);
        due(request);
      }, step));
    };
    arm(delayMs);
    this.setHeld(this.timers.size);
  }

  /** The requests held now (inspect scheduled). */
  held(): Request[] {
    return [...this.timers.keys()];
  }

  /** Stop holding the requests of these task ids; returns them (revoke discards them). */
  take(ids: ReadonlySet<string>): Request[] {
    const out: Request[] = [];
    for (const r of this.timers.keys()) if (ids.has(r.id)) out.push(r);
    for (const r of out) this.release(r);
    return out;
  }

  /** Forget every held request (shutdown: restoreUnacked puts their messages back). */
  clear(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private release(request: Request): void {
    const t = this.timers.get(request);
    if (!t) return;
    clearTimeout(t);
    this.timers.delete(request);
    this.setHeld(this.timers.size);
  }
}
