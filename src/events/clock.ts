// Celery's logical clock (kombu.clocks.LamportClock): events and remote-control messages carry it, so
// a monitor can order what happened on different nodes whatever their wall clocks say.

/** Values from the wire beyond this are ignored: a float clock past 2^53 could never move forward again. */
const MAX_CLOCK = Number.MAX_SAFE_INTEGER / 2;

export class LamportClock {
  value = 0;

  /** A local event: the clock moves one step (kombu's forward). */
  forward(): number {
    return ++this.value;
  }

  /** A message from another node carried `other`: max(ours, theirs) + 1 (kombu's adjust). */
  adjust(other: unknown): number {
    const n = typeof other === 'number' ? other : Number(other);
    if (Number.isFinite(n) && n > this.value && n < MAX_CLOCK) this.value = Math.floor(n);
    return ++this.value;
  }

  toString(): string {
    return String(this.value);
  }
}

/** The process's clock (Celery's app.clock): shared by its events, control requests and replies. */
export const clock = new LamportClock();
