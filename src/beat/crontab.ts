// Celery's crontab schedule: the same fields, grammar (ranges, steps, names, wrap-around ranges) and
// AND of day_of_month, month_of_year and day_of_week, evaluated in the app's time zone.
import { DAY_MS, daysInMonth, wallMs, wallOf, type Zone } from './tz.js';
import type { Schedule, ScheduleSpec } from './schedule.js';

export type Cronspec = number | string | readonly number[];

export interface CrontabFields {
  minute?: Cronspec;
  hour?: Cronspec;
  dayOfWeek?: Cronspec;
  dayOfMonth?: Cronspec;
  monthOfYear?: Cronspec;
  /** Celery's spellings are accepted too. */
  day_of_week?: Cronspec;
  day_of_month?: Cronspec;
  month_of_year?: Cronspec;
}

interface Field {
  name: string;
  /** How many values (60 minutes, 24 hours, 7 days, 31 days, 12 months). */
  size: number;
  min: number;
  names?: readonly string[];
}

const MONTH_NAMES = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

const FIELDS = {
  minute: { name: 'minute', size: 60, min: 0 },
  hour: { name: 'hour', size: 24, min: 0 },
  day_of_week: { name: 'day_of_week', size: 7, min: 0, names: DAY_NAMES },
  day_of_month: { name: 'day_of_month', size: 31, min: 1 },
  month_of_year: { name: 'month_of_year', size: 12, min: 1, names: MONTH_NAMES },
} satisfies Record<string, Field>;

export class CrontabError extends Error {
  override name = 'ParseException';
}

function fail(field: Field, spec: string, why: string): never {
  throw new CrontabError(`crontab ${field.name}=${JSON.stringify(spec)}: ${why}`);
}

/** A number or (in day_of_week and month_of_year) a name; Celery reads names by their first three letters. */
function expandNumber(field: Field, token: string, spec: string): number {
  let n: number;
  if (/^\d+$/.test(token)) n = Number(token);
  else {
    const i = field.names?.indexOf(token.slice(0, 3).toLowerCase()) ?? -1;
    if (i < 0) fail(field, spec, `${JSON.stringify(token)} is not a number${field.names ? ` or a name (${field.names.join(', ')})` : ''}`);
    n = i + field.min;
  }
  const max = field.min + field.size - 1;
  if (n > max) fail(field, spec, `${n} is above the highest value ${max}`);
  if (n < field.min) fail(field, spec, `${n} is below the lowest value ${field.min}`);
  return n;
}

/** One comma-separated part: *, n, a-b (wrapping past the end when b < a), either with /step. */
function expandPart(field: Field, part: string, spec: string): number[] {
  const [base, step, ...extra] = part.split('/');
  if (extra.length > 0 || base === undefined || base === '') fail(field, spec, `cannot read ${JSON.stringify(part)}`);
  let values: number[];
  if (base === '*') {
    values = Array.from({ length: field.size }, (_, i) => field.min + i);
  } else if (base.includes('-')) {
    const [a, b, ...more] = base.split('-');
    if (more.length > 0 || !a || !b) fail(field, spec, `cannot read the range ${JSON.stringify(base)} (negative numbers are not supported)`);
    const from = expandNumber(field, a, spec);
    const to = expandNumber(field, b, spec);
    values = [];
    if (to >= from) for (let i = from; i <= to; i++) values.push(i);
    else {
      for (let i = from; i < field.min + field.size; i++) values.push(i);
      for (let i = field.min; i <= to; i++) values.push(i);
    }
  } else {
    if (step !== undefined) fail(field, spec, `a step needs * or a range before it (write ${base}-${field.min + field.size - 1}/${step})`);
    return [expandNumber(field, base, spec)];
  }
  if (step === undefined) return values;
  if (!/^\d+$/.test(step) || Number(step) === 0) fail(field, spec, `the step ${JSON.stringify(step)} must be a whole number of at least 1`);
  return values.filter((_, i) => i % Number(step) === 0);
}

interface Parsed {
  values: number[];
  /** day_of_month only: 'L', the last day of the month (a Celeriac addition; Celery has no such value). */
  last: boolean;
  text: string;
}

function parseField(field: Field, spec: Cronspec | undefined): Parsed {
  const raw = spec ?? '*';
  const set = new Set<number>();
  let last = false;
  let text: string;
  if (typeof raw === 'number' || Array.isArray(raw)) {
    const list: readonly number[] = typeof raw === 'number' ? [raw] : raw;
    text = list.join(',');
    if (list.length === 0) fail(field, text, 'an empty list never matches');
    for (const n of list) {
      if (!Number.isInteger(n)) fail(field, text, `${n} is not a whole number`);
      set.add(expandNumber(field, String(n), text));
    }
  } else if (typeof raw === 'string') {
    text = raw.trim();
    for (const part of text.split(',')) {
      const p = part.trim();
      if (p === '') fail(field, text, 'empty part');
      if (field === FIELDS.day_of_month && p.toUpperCase() === 'L') last = true;
      else for (const n of expandPart(field, p, text)) set.add(n);
    }
  } else {
    throw new CrontabError(`crontab ${field.name}: expected a number, a string or a list of numbers, got ${typeof raw}`);
  }
  return { values: [...set].sort((a, b) => a - b), last, text };
}

/** Celery's crontab(minute, hour, day_of_week, day_of_month, month_of_year). */
export class Crontab implements Schedule {
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  readonly daysOfWeek: ReadonlySet<number>;
  readonly daysOfMonth: ReadonlySet<number>;
  readonly monthsOfYear: ReadonlySet<number>;
  readonly lastDayOfMonth: boolean;
  private readonly text: Record<keyof typeof FIELDS, string>;

  constructor(fields: CrontabFields = {}) {
    const minute = parseField(FIELDS.minute, fields.minute);
    const hour = parseField(FIELDS.hour, fields.hour);
    const dow = parseField(FIELDS.day_of_week, fields.dayOfWeek ?? fields.day_of_week);
    const dom = parseField(FIELDS.day_of_month, fields.dayOfMonth ?? fields.day_of_month);
    const moy = parseField(FIELDS.month_of_year, fields.monthOfYear ?? fields.month_of_year);
    this.minutes = minute.values;
    this.hours = hour.values;
    this.daysOfWeek = new Set(dow.values);
    this.daysOfMonth = new Set(dom.values);
    this.monthsOfYear = new Set(moy.values);
    this.lastDayOfMonth = dom.last;
    this.text = { minute: minute.text, hour: hour.text, day_of_week: dow.text, day_of_month: dom.text, month_of_year: moy.text };
    const possible = this.lastDayOfMonth || moy.values.some((m) => dom.values.some((d) => d <= daysInMonth(2000, m)));
    if (!possible) throw new CrontabError(`crontab ${this}: day_of_month ${dom.text} never falls in month_of_year ${moy.text}, so it would never run`);
  }

  /** crontab('*\/15 9-17 * * mon-fri'): minute, hour, day of month, month, day of week, as in a crontab file. */
  static fromString(expr: string): Crontab {
    const parts = expr.trim().split(/\s+/);
    if (parts.length !== 5) throw new CrontabError(`crontab ${JSON.stringify(expr)}: expected 5 fields (minute hour day-of-month month day-of-week), got ${parts.length}`);
    const [minute, hour, dayOfMonth, monthOfYear, dayOfWeek] = parts as [string, string, string, string, string];
    return new Crontab({ minute, hour, dayOfMonth, monthOfYear, dayOfWeek });
  }

  private dayMatches(local: number): boolean {
    const w = wallOf(local);
    if (!this.daysOfWeek.has(w.weekday)) return false;
    return this.daysOfMonth.has(w.day) || (this.lastDayOfMonth && w.day === daysInMonth(w.year, w.month));
  }

  /**
   * The first matching time after `after`. Local times that a DST change skips run the same distance
   * past the change (02:30 → 03:30), and local times it repeats run once, at the first occurrence;
   * a schedule that runs every hour of the day instead follows real time (each repeated hour runs).
   */
  next(after: number, zone: Zone): number | null {
    const start = zone.wallAt(after);
    const everyHour = this.hours.length === 24;
    // From the day before: a time skipped by a DST change late that day may land after `after`.
    let day = wallMs({ year: start.year, month: start.month, day: start.day }) - DAY_MS;
    const lastYear = start.year + 60;
    while (wallOf(day).year <= lastYear) {
      const w = wallOf(day);
      if (!this.monthsOfYear.has(w.month)) {
        day = wallMs({ year: w.year + (w.month === 12 ? 1 : 0), month: (w.month % 12) + 1, day: 1 });
        continue;
      }
      if (this.dayMatches(day)) {
        const t = this.firstOnDay(day, after, zone, everyHour);
        if (t !== null) return t;
      }
      day += DAY_MS;
    }
    return null;
  }

  private firstOnDay(day: number, after: number, zone: Zone, everyHour: boolean): number | null {
    const before = zone.offsetAt(day - DAY_MS);
    if (before === zone.offsetAt(day + 2 * DAY_MS)) {
      for (const h of this.hours) {
        for (const m of this.minutes) {
          const t = day + h * 3_600_000 + m * 60_000 - before;
          if (t > after) return t;
        }
      }
      return null;
    }
    // A DST change near this day: resolve each local time on its own.
    let best: number | null = null;
    for (const h of this.hours) {
      for (const m of this.minutes) {
        const local = day + h * 3_600_000 + m * 60_000;
        for (const t of everyHour ? zone.instantsOf(local) : [zone.resolve(local)]) {
          if (t > after && (best === null || t < best)) best = t;
        }
      }
    }
    return best;
  }

  toJSON(): ScheduleSpec {
    return { type: 'crontab', ...this.text };
  }

  toString(): string {
    const t = this.text;
    return `<crontab: ${t.minute} ${t.hour} ${t.day_of_month} ${t.month_of_year} ${t.day_of_week} (m/h/dM/MY/d)>`;
  }
}

/** Celery's crontab(): crontab({ minute: 0, hour: '*\/3' }) or crontab('0 *\/3 * * *'). */
export function crontab(fields: CrontabFields | string = {}): Crontab {
  return typeof fields === 'string' ? Crontab.fromString(fields) : new Crontab(fields);
}
