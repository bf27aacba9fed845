// Schedules: when an entry runs next. Intervals (Celery's schedule(run_every, relative)), crontab and
// solar live beside this file; all of them serialize to a ScheduleSpec so every beat process and the
// CLI read the same definition from the store.
import { wallMs, type Zone } from './tz.js';
import { Crontab, CrontabError } from './crontab.js';
import { Solar, SOLAR_EVENTS, type SolarEvent } from './solar.js';

export type ScheduleSpec =
  | { type: 'interval'; seconds: number; relative?: boolean }
  | { type: 'crontab'; minute: string; hour: string; day_of_week: string; day_of_month: string; month_of_year: string }
  | { type: 'solar'; event: SolarEvent; lat: number; lon: number };

export interface Schedule {
  /** The first run time after `after` (ms since the epoch), or null when it never runs again. */
  next(after: number, zone: Zone): number | null;
  toJSON(): ScheduleSpec;
  toString(): string;
}

/** Celery's humanize_seconds: "30.00 seconds", "1.00 minute", "2.00 hours", "1.00 day". */
function humanize(seconds: number): string {
  for (const [unit, size] of [['day', 86400], ['hour', 3600], ['minute', 60]] as const) {
    if (seconds >= size) {
      const n = seconds / size;
      return `${n.toFixed(2)} ${unit}${n === 1 ? '' : 's'}`;
    }
  }
  return `${seconds.toFixed(2)} second${seconds === 1 ? '' : 's'}`;
}

/** A fixed interval (Celery's schedule). With relative, the time is rounded down to the interval's unit. */
export class Interval implements Schedule {
  constructor(readonly seconds: number, readonly relative = false) {
    if (!Number.isFinite(seconds) || seconds <= 0) throw new RangeError(`An interval schedule needs a number of seconds above 0, got ${seconds}`);
  }

  next(after: number, zone: Zone): number {
    const t = after + this.seconds * 1000;
    return this.relative ? roundDown(t, this.seconds, zone) : t;
  }

  toJSON(): ScheduleSpec {
    return this.relative ? { type: 'interval', seconds: this.seconds, relative: true } : { type: 'interval', seconds: this.seconds };
  }

  toString(): string {
    return `<freq: ${humanize(this.seconds)}>`;
  }
}

/** Celery's delta_resolution: a day or longer rounds to the local day, an hour to the hour, a minute to the minute. */
function roundDown(t: number, seconds: number, zone: Zone): number {
  if (seconds < 60) return Math.floor(t / 1000) * 1000;
  const w = zone.wallAt(t);
  if (seconds >= 86400) return zone.resolve(wallMs({ year: w.year, month: w.month, day: w.day }));
  if (seconds >= 3600) return zone.resolve(wallMs({ ...w, minute: 0, second: 0 }));
  return zone.resolve(wallMs({ ...w, second: 0 }));
}

/** What an entry's `schedule` may be: seconds, crontab(...), solar(...), or their JSON form. */
export type ScheduleInput = number | Schedule | ScheduleSpec;

/** Parse an entry's schedule (from code, the store, or the CLI) into a Schedule; `where` names it in errors. */
export function toSchedule(input: unknown, relative: boolean, where: string): Schedule {
  if (typeof input === 'number') return new Interval(input, relative);
  if (input instanceof Interval || input instanceof Crontab || input instanceof Solar) return input;
  // A schedule from another copy of this module (two installs of celeriac) still serializes to a spec.
  if (input && typeof input === 'object' && typeof (input as Schedule).toJSON === 'function') return toSchedule((input as Schedule).toJSON(), relative, where);
  if (input && typeof input === 'object' && typeof (input as { type?: unknown }).type === 'string') {
    const spec = input as Record<string, unknown>;
    try {
      switch (spec.type) {
        case 'interval':
          return new Interval(Number(spec.seconds), spec.relative === true || relative);
        case 'crontab':
          return new Crontab({
            minute: spec.minute as string, hour: spec.hour as string, dayOfWeek: spec.day_of_week as string,
            dayOfMonth: spec.day_of_month as string, monthOfYear: spec.month_of_year as string,
          });
        case 'solar':
          return new Solar(spec.event as SolarEvent, Number(spec.lat), Number(spec.lon));
      }
    } catch (err) {
      if (err instanceof CrontabError || err instanceof RangeError) throw new TypeError(`${where}: ${err.message}`);
      throw err;
    }
  }
  throw new TypeError(
    `${where}: schedule must be a number of seconds, crontab({ minute, hour, dayOfWeek, dayOfMonth, monthOfYear }) or solar(event, lat, lon) (events: ${SOLAR_EVENTS.join(', ')}), got ${JSON.stringify(input)}`,
  );
}
