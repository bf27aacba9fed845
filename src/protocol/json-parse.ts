// Reading JSON as Python's json and kombu write it: bare NaN/Infinity, integers of any size (bigint
// beyond the safe range), floats kept apart from ints when asked, and kombu's tags for the peer's version.
// JSON.parse reads the common text (no big integer, no NaN/Infinity); this parser reads the rest. No library reads Python's non-finite tokens and big integers together (see docs/interop.md).
import type { JsonOptions } from './json.js';
import { CeleryDate, CeleryDateTime, CeleryTime, Decimal, Float, UUID, isWellFormed } from './values.js';

const MAX = 9007199254740991;

/** Thrown by settle(): the text had an integer JSON.parse rounded, so the parser must read it. */
const UNSAFE = new Error('an integer beyond 2^53');

/**
 * Finish what JSON.parse read: kombu's tags are decoded in place (innermost first, as kombu's
 * object_hook), and a number beyond the safe integer range throws UNSAFE (JSON.parse rounded it).
 * Walking the result costs a fraction of the parse; scanning the text for long digit runs with a
 * regular expression cost more than the parse itself.
 */
function settle(v: object, tags: boolean): unknown {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (typeof x === 'number') {
        if (x > MAX || x < -MAX) throw UNSAFE;
      } else if (typeof x === 'object' && x !== null) {
        const y = settle(x, tags);
        if (y !== x) v[i] = y;
      }
    }
    return v;
  }
  const o = v as Record<string, unknown>;
  let typed = false;
  for (const k in o) {
    const x = o[k];
    if (typeof x === 'number') {
      if (x > MAX || x < -MAX) throw UNSAFE;
    } else if (typeof x === 'object' && x !== null) {
      const y = settle(x, tags);
      if (y !== x) o[k] = y;
    } else if (k === '__type__') typed = true;
  }
  return typed && tags ? maybeUntag(o) : o;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The value kombu's decoder registers for a tag, or `undefined` when the tag or its value is not one
 * kombu ≥ 5.3 writes: such a dict passes through unchanged (a Celery 5.2 peer may send any dict).
 */
function untag(type: unknown, value: unknown): unknown {
  switch (type) {
    case 'datetime': return typeof value === 'string' ? (CeleryDateTime.fromisoformat(value) ?? undefined) : undefined;
    case 'date': {
      if (typeof value !== 'string') return undefined;
      const day = value.slice(0, 10); // kombu reads datetime.fromisoformat(v).date()
      return CeleryDate.isValid(day) && (value.length === 10 || CeleryDateTime.fromisoformat(value)) ? new CeleryDate(day) : undefined;
    }
    case 'time': return CeleryTime.isValid(value) ? new CeleryTime(value) : undefined;
    case 'decimal': return Decimal.isValid(value) ? new Decimal(value) : undefined;
    case 'uuid': {
      const hex = value !== null && typeof value === 'object' && Object.keys(value).length === 1 ? (value as { hex?: unknown }).hex : undefined;
      return UUID.isValid(hex) ? new UUID(hex) : undefined;
    }
    case 'bytes': return typeof value === 'string' && isWellFormed(value) ? Buffer.from(value, 'utf8') : undefined;
    case 'base64': return typeof value === 'string' && BASE64.test(value) ? Buffer.from(value, 'base64') : undefined;
    default: return undefined;
  }
}

function maybeUntag(o: Record<string, unknown>): unknown {
  let n = 0;
  for (const _ in o) if (++n > 2) return o;
  if (n !== 2 || !('__type__' in o) || !('__value__' in o)) return o;
  return untag(o.__type__, o.__value__) ?? o;
}

class Parser {
  private i = 0;
  constructor(private readonly s: string, private readonly tags: boolean, private readonly exactFloats: boolean) {}

  parse(): unknown {
    const v = this.value();
    this.ws();
    if (this.i < this.s.length) this.fail('Extra data');
    return v;
  }

  private fail(what: string): never {
    throw new SyntaxError(`${what} at position ${this.i} of the JSON text`);
  }

  private ws(): void {
    const s = this.s;
    let c = s.charCodeAt(this.i);
    while (c === 32 || c === 10 || c === 13 || c === 9) c = s.charCodeAt(++this.i);
  }

  private value(): unknown {
    this.ws();
    const s = this.s;
    const c = s.charCodeAt(this.i);
    switch (c) {
      case 123: return this.object(); // {
      case 91: return this.array(); // [
      case 34: return this.string(); // "
      case 116: return this.word('true', true);
      case 102: return this.word('false', false);
      case 110: return this.word('null', null);
      case 78: return this.word('NaN', NaN);
      case 73: return this.word('Infinity', Infinity);
    }
    if (c === 45 && s.startsWith('-Infinity', this.i)) return this.word('-Infinity', -Infinity);
    if (c === 45 || (c >= 48 && c <= 57)) return this.number();
    return this.fail(this.i >= s.length ? 'Unexpected end' : `Unexpected character ${JSON.stringify(s[this.i])}`);
  }

  private word<T>(w: string, v: T): T {
    if (!this.s.startsWith(w, this.i)) this.fail('Invalid literal');
    this.i += w.length;
    return v;
  }

  private number(): unknown {
    const s = this.s;
    const start = this.i;
    if (s.charCodeAt(this.i) === 45) this.i++;
    const intStart = this.i;
    while (isDigit(s.charCodeAt(this.i))) this.i++;
    const intDigits = this.i - intStart;
    if (intDigits === 0 || (intDigits > 1 && s.charCodeAt(intStart) === 48)) this.fail('Invalid number');
    let float = false;
    if (s.charCodeAt(this.i) === 46) { // .
      float = true;
      const f = ++this.i;
      while (isDigit(s.charCodeAt(this.i))) this.i++;
      if (this.i === f) this.fail('Invalid number');
    }
    const e = s.charCodeAt(this.i);
    if (e === 101 || e === 69) { // e E
      float = true;
      this.i++;
      const sign = s.charCodeAt(this.i);
      if (sign === 43 || sign === 45) this.i++;
      const d = this.i;
      while (isDigit(s.charCodeAt(this.i))) this.i++;
      if (this.i === d) this.fail('Invalid number');
    }
    const text = s.slice(start, this.i);
    if (!float) {
      if (intDigits < 16) return Number(text);
      const big = BigInt(text);
      return big >= -9007199254740991n && big <= 9007199254740991n ? Number(big) : big;
    }
    const n = Number(text);
    return this.exactFloats && Number.isSafeInteger(n) && !(n === 0 && 1 / n < 0) ? new Float(n) : n;
  }

  private string(): string {
    const s = this.s;
    const start = this.i++;
    let escaped = false;
    for (;;) {
      const c = s.charCodeAt(this.i++);
      if (c === 34) break;
      if (c === 92) { escaped = true; this.i++; }
      else if (Number.isNaN(c)) this.fail('Unterminated string');
      else if (c < 32) this.fail('Invalid control character in a string');
    }
    if (!escaped) return s.slice(start + 1, this.i - 1);
    try {
      return JSON.parse(s.slice(start, this.i)) as string;
    } catch {
      return this.fail('Invalid escape in a string');
    }
  }

  private array(): unknown[] {
    this.i++;
    const out: unknown[] = [];
    this.ws();
    if (this.s.charCodeAt(this.i) === 93) { this.i++; return out; }
    for (;;) {
      out.push(this.value());
      this.ws();
      const c = this.s.charCodeAt(this.i++);
      if (c === 93) return out;
      if (c !== 44) { this.i--; this.fail("Expecting ',' or ']'"); }
    }
  }

  private object(): unknown {
    this.i++;
    const out: Record<string, unknown> = {};
    this.ws();
    if (this.s.charCodeAt(this.i) === 125) { this.i++; return out; }
    for (;;) {
      this.ws();
      if (this.s.charCodeAt(this.i) !== 34) this.fail('Expecting a property name in double quotes');
      const key = this.string();
      this.ws();
      if (this.s.charCodeAt(this.i++) !== 58) { this.i--; this.fail("Expecting ':'"); }
      const v = this.value();
      // An own property, as JSON.parse makes it (assigning __proto__ would change the prototype).
      if (key === '__proto__') Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      else out[key] = v;
      this.ws();
      const c = this.s.charCodeAt(this.i++);
      if (c === 125) return this.tags ? maybeUntag(out) : out;
      if (c !== 44) { this.i--; this.fail("Expecting ',' or '}'"); }
    }
  }
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * Parse JSON as Python writes it: NaN/Infinity, integers exact (bigint beyond 2^53), kombu's tags
 * (unless opts.tags is false: Celery 5.2), floats with a whole value as Float if opts.exactFloats.
 * Throws SyntaxError on text that is not JSON.
 */
export function loads(text: string, opts?: JsonOptions): unknown {
  const tags = opts?.tags !== false;
  const exact = opts?.exactFloats === true;
  // JSON.parse reads most texts; the parser reads those with a bare NaN/Infinity (a SyntaxError for
  // JSON.parse), an integer beyond 2^53 (found in JSON.parse's result), or floats to keep exact.
  if (!exact) {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      return new Parser(text, tags, exact).parse();
    }
    try {
      if (typeof v === 'object' && v !== null) return settle(v, tags);
      if (typeof v !== 'number' || (v <= MAX && v >= -MAX)) return v;
    } catch (err) {
      if (err !== UNSAFE) throw err;
    }
  }
  return new Parser(text, tags, exact).parse();
}
