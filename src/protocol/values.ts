// Python values with no exact JavaScript equivalent, as named TypeScript types. Each one is decoded from
// what kombu writes for it and encoded back to the same Python value (docs/interop.md has the table).

/** A Python float whose value is a whole number (2.0): a plain number 2 would go back as the int 2. */
export class Float {
  constructor(readonly value: number) {
    if (typeof value !== 'number') throw new TypeError(`Float takes a number, got ${typeof value}`);
  }
  valueOf(): number {
    return this.value;
  }
  toString(): string {
    return String(this.value);
  }
  toJSON(): number {
    return this.value;
  }
}

const DECIMAL = /^[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|sNaN|Infinity|Inf)$/i;

/** A Python decimal.Decimal, kept as its exact text ('1.10' stays '1.10'). */
export class Decimal {
  readonly value: string;
  constructor(value: string | number | bigint) {
    const text = String(value).trim();
    if (!DECIMAL.test(text)) throw new TypeError(`Not a decimal number: ${JSON.stringify(String(value))}`);
    this.value = text;
  }
  static isValid(text: unknown): text is string {
    return typeof text === 'string' && DECIMAL.test(text);
  }
  toNumber(): number {
    return Number(this.value.replace(/^([+-]?)inf$/i, '$1Infinity').replace(/^[+-]?s?nan$/i, 'NaN'));
  }
  toString(): string {
    return this.value;
  }
  toJSON(): string {
    return this.value;
  }
}

const UUID_TEXT = /^(?:urn:uuid:)?\{?([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})\}?$/i;

/** A Python uuid.UUID (a plain string id stays a string). */
export class UUID {
  /** 32 lowercase hex digits, as Python's UUID.hex. */
  readonly hex: string;
  constructor(text: string) {
    const m = UUID_TEXT.exec(String(text).trim());
    if (!m) throw new TypeError(`Not a UUID: ${JSON.stringify(String(text))}`);
    this.hex = m.slice(1).join('').toLowerCase();
  }
  static isValid(text: unknown): text is string {
    return typeof text === 'string' && UUID_TEXT.test(text.trim());
  }
  toString(): string {
    const h = this.hex;
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  toJSON(): string {
    return this.toString();
  }
}

const DATE_TEXT = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A Python datetime.date (a calendar day, no time and no zone). */
export class CeleryDate {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  constructor(iso: string) {
    const m = DATE_TEXT.exec(iso);
    if (!m || !validDay(+m[1]!, +m[2]!, +m[3]!)) throw new TypeError(`Not an ISO date (YYYY-MM-DD): ${JSON.stringify(iso)}`);
    [this.year, this.month, this.day] = [+m[1]!, +m[2]!, +m[3]!];
  }
  static isValid(text: unknown): text is string {
    if (typeof text !== 'string') return false;
    try {
      return new CeleryDate(text) !== null;
    } catch {
      return false;
    }
  }
  /** Python's date.isoformat(). */
  toString(): string {
    return `${pad(this.year, 4)}-${pad(this.month, 2)}-${pad(this.day, 2)}`;
  }
  toJSON(): string {
    return this.toString();
  }
}

const TIME_TEXT = /^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?$/;

/** A Python datetime.time (a time of day, with an optional UTC offset), kept as its isoformat text. */
export class CeleryTime {
  readonly iso: string;
  constructor(iso: string) {
    if (!TIME_TEXT.test(iso)) throw new TypeError(`Not an ISO time (HH:MM:SS[.ffffff][+HH:MM]): ${JSON.stringify(iso)}`);
    this.iso = iso;
  }
  static isValid(text: unknown): text is string {
    return typeof text === 'string' && TIME_TEXT.test(text);
  }
  toString(): string {
    return this.iso;
  }
  toJSON(): string {
    return this.iso;
  }
}

const DATETIME_TEXT = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6})\d*)?)?(Z|[+-]\d{2}(?::?\d{2}(?::?\d{2}(?:\.\d{1,6})?)?)?)?$/;

/**
 * A Python datetime as a Date that keeps what Date drops: microseconds, and the UTC offset it was
 * written with (null for a naive datetime). A naive datetime means UTC, as it does for ETAs, so its
 * Date value does not depend on the process's time zone. Encoded back, it is the same isoformat.
 */
export class CeleryDateTime extends Date {
  /** Microseconds within the second (0–999999), as Python's datetime.microsecond. */
  readonly microsecond: number;
  /** Seconds east of UTC it was written with; null for a naive datetime. */
  readonly utcoffset: number | null;

  constructor(epochMs: number, opts: { microsecond?: number; utcoffset?: number | null } = {}) {
    super(epochMs);
    const ms = ((epochMs % 1000) + 1000) % 1000;
    const micro = opts.microsecond ?? ms * 1000;
    this.microsecond = Math.floor(micro / 1000) === ms ? micro : ms * 1000;
    this.utcoffset = opts.utcoffset === undefined ? 0 : opts.utcoffset;
  }

  /** Parse Python's isoformat (and the forms datetime.fromisoformat reads); null if it is not one. */
  static fromisoformat(text: string): CeleryDateTime | null {
    const m = DATETIME_TEXT.exec(text);
    if (!m) return null;
    const [, y, mo, d, h, mi, s, frac, zone] = m;
    const micro = frac ? Number(frac.padEnd(6, '0')) : 0;
    if (!validDay(+y!, +mo!, +d!) || +h! > 23 || +mi! > 59 || (s ? +s : 0) > 59) return null;
    const wall = new Date(0);
    wall.setUTCFullYear(+y!, +mo! - 1, +d!); // years below 100 stay themselves (Date.UTC maps them to 19xx)
    wall.setUTCHours(+h!, +mi!, s ? +s : 0, Math.floor(micro / 1000));
    const offset = zone === undefined ? null : parseOffset(zone);
    return new CeleryDateTime(wall.getTime() - (offset ?? 0) * 1000, { microsecond: micro, utcoffset: offset });
  }

  /** Python's datetime.isoformat(): microseconds only when not zero, the offset it was written with. */
  isoformat(): string {
    const ms = this.getUTCMilliseconds();
    const micro = Math.floor(this.microsecond / 1000) === ms ? this.microsecond : ms * 1000;
    const offset = this.utcoffset ?? 0;
    const wall = new Date(this.getTime() + offset * 1000);
    const date = `${pad(wall.getUTCFullYear(), 4)}-${pad(wall.getUTCMonth() + 1, 2)}-${pad(wall.getUTCDate(), 2)}`;
    const time = `${pad(wall.getUTCHours(), 2)}:${pad(wall.getUTCMinutes(), 2)}:${pad(wall.getUTCSeconds(), 2)}`;
    return `${date}T${time}${micro ? '.' + pad(micro, 6) : ''}${this.utcoffset === null ? '' : formatOffset(offset)}`;
  }
}

function validDay(year: number, month: number, day: number): boolean {
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  // The Gregorian calendar repeats every 400 years, so year 2000 + year % 400 has the same leap days.
  return day <= new Date(Date.UTC(2000 + (year % 400), month, 0)).getUTCDate();
}

function parseOffset(zone: string): number {
  if (zone === 'Z') return 0;
  const sign = zone[0] === '-' ? -1 : 1;
  const digits = zone.slice(1).replace(/:/g, '');
  const [h, m, s] = [digits.slice(0, 2), digits.slice(2, 4) || '0', digits.slice(4) || '0'];
  return sign * (Number(h) * 3600 + Number(m) * 60 + Number(s));
}

function formatOffset(seconds: number): string {
  const sign = seconds < 0 ? '-' : '+';
  const a = Math.abs(seconds);
  const s = a % 60;
  return `${sign}${pad(Math.floor(a / 3600), 2)}:${pad(Math.floor((a % 3600) / 60), 2)}${s ? ':' + pad(s, 2) : ''}`;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** Python's isoformat for any Date: a CeleryDateTime as written, a plain Date as an aware UTC datetime. */
export function datetimeIsoformat(d: Date): string {
  if (d instanceof CeleryDateTime) return d.isoformat();
  return new CeleryDateTime(d.getTime()).isoformat();
}

/** String.prototype.isWellFormed (Node 20 has it; the ES2022 typings do not): no lone surrogate. */
export function isWellFormed(s: string): boolean {
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}
