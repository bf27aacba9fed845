// Time zones from the platform's Intl data (no tables of our own): wall-clock fields of an instant,
// and the instants a wall-clock time names (none in a spring-forward gap, two in a fall-back overlap).

/** A local date and time; month 1-12, weekday 0 = Sunday (Celery's day_of_week numbering). */
export interface Wall {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  weekday: number;
}

export const DAY_MS = 86_400_000;

/** The wall-clock time as if it were UTC, in ms: the arithmetic form of a Wall. */
export function wallMs(w: Pick<Wall, 'year' | 'month' | 'day'> & Partial<Pick<Wall, 'hour' | 'minute' | 'second'>>): number {
  return Date.UTC(w.year, w.month - 1, w.day, w.hour ?? 0, w.minute ?? 0, w.second ?? 0);
}

/** The fields of a wall-clock ms value (the inverse of wallMs). */
export function wallOf(ms: number): Wall {
  const d = new Date(ms);
  return {
    year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(),
    hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(), weekday: d.getUTCDay(),
  };
}

export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

export class Zone {
  private readonly format: Intl.DateTimeFormat | null;
  /** Offsets by minute: a schedule asks about the same few minutes again and again. */
  private readonly offsets = new Map<number, number>();

  constructor(readonly name: string) {
    if (name === 'UTC' || name === 'Etc/UTC') {
      this.format = null;
      return;
    }
    try {
      this.format = new Intl.DateTimeFormat('en-US', {
        timeZone: name, hourCycle: 'h23',
        year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
      });
    } catch {
      throw new RangeError(`Unknown time zone ${JSON.stringify(name)} (setting timezone): use an IANA name such as 'Europe/Berlin' or 'America/New_York'`);
    }
  }

  /** The wall-clock fields at an instant. */
  wallAt(ms: number): Wall {
    return wallOf(ms + this.offsetAt(ms));
  }

  /** Local time minus UTC at an instant, in ms. */
  offsetAt(ms: number): number {
    if (!this.format) return 0;
    const minute = Math.floor(ms / 60_000);
    let o = this.offsets.get(minute);
    if (o === undefined) {
      const at = minute * 60_000;
      const f: Record<string, string> = {};
      for (const p of this.format.formatToParts(new Date(at))) f[p.type] = p.value;
      o = Date.UTC(Number(f.year), Number(f.month) - 1, Number(f.day), Number(f.hour), Number(f.minute), Number(f.second)) - at;
      if (this.offsets.size > 20_000) this.offsets.clear();
      this.offsets.set(minute, o);
    }
    return o;
  }

  /** Offsets a day before and a day after a wall-clock ms: equal unless a transition is near. */
  offsetsAround(local: number): [number, number] {
    return [this.offsetAt(local - DAY_MS), this.offsetAt(local + DAY_MS)];
  }

  /** Every instant whose wall-clock time is `local` (wallMs form): 0 in a gap, 2 in an overlap. */
  instantsOf(local: number): number[] {
    const [before, after] = this.offsetsAround(local);
    const out: number[] = [];
    for (const o of before === after ? [before] : [before, after]) {
      const t = local - o;
      if (this.offsetAt(t) === o) out.push(t);
    }
    return out.sort((a, b) => a - b);
  }

  /**
   * The instant a wall-clock time stands for: the first of two in an overlap; in a gap, the same
   * distance past the transition (02:30 in a 02:00 → 03:00 gap is 03:30), as Temporal's "compatible".
   */
  resolve(local: number): number {
    const found = this.instantsOf(local);
    if (found.length > 0) return found[0]!;
    return local - this.offsetsAround(local)[0];
  }
}

/** Celery's app.timezone: the timezone setting, else UTC with enable_utc, else the system's zone. */
export function zoneName(timezone: unknown, enableUtc: unknown): string {
  if (typeof timezone === 'string' && timezone.trim() !== '') return timezone.trim();
  if (enableUtc !== false) return 'UTC';
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

const zones = new Map<string, Zone>();

export function zoneFor(name: string): Zone {
  let z = zones.get(name);
  if (!z) zones.set(name, (z = new Zone(name)));
  return z;
}

