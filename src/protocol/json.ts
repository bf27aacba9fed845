// Python-compatible JSON: the bytes kombu's `json` serializer writes and the values it reads.
import { isUtf8 } from 'node:buffer';
import { toEncodeError } from './errors.js';
import { CeleryDate, CeleryTime, Decimal, Float, UUID, datetimeIsoformat } from './values.js';

const NON_ASCII = /[\u0080-\uffff]/g;
const HAS_NON_ASCII = /[\u0080-\uffff]/;
// Characters JSON must escape, or that Python's ensure_ascii escapes: none of them → quote as is.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u0080-\uffff]/;

function escapeNonAscii(s: string): string {
  return s.replace(NON_ASCII, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** Encode a JS string as Python's json.dumps does with ensure_ascii=True. */
export function quote(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return '"' + s + '"';
  const q = JSON.stringify(s);
  return HAS_NON_ASCII.test(q) ? escapeNonAscii(q) : q;
}

/** Python's datetime.isoformat() for an aware UTC datetime: microseconds and +00:00. */
export function isoformat(d: Date): string {
  // Results finished in the same millisecond share the string (a worker stores thousands a second).
  const ms = d.getTime();
  if (ms === lastIsoMs) return lastIso;
  const iso = d.toISOString(); // 2026-11-24T18:30:57.235Z
  lastIsoMs = ms;
  lastIso = iso.slice(0, 23) + '000+00:00';
  return lastIso;
}

let lastIsoMs = NaN;
let lastIso = '';

/** Options both ways: which Python the JSON is for, and what to keep exact. */
export interface JsonOptions {
  /**
   * kombu ≥ 5.3 tags (datetime, date, time, decimal, uuid, bytes, base64) as {"__type__", "__value__"};
   * false writes and reads what Celery 5.2 (kombu 5.2) does: no tags, datetimes as ISO strings.
   */
  tags?: boolean;
  /** Decode floats with a whole value (2.0) as Float, so they go back as floats (default: number). */
  exactFloats?: boolean;
}

/**
 * A number as Python's json writes the same value: a safe integer is an int, any other number is a
 * double and so a float (2 ** 53 → 9007199254740992.0, -0 → -0.0). A bigint is an int of any size.
 */
function encodeNumber(n: number): string {
  if (Number.isSafeInteger(n)) return n === 0 && 1 / n < 0 ? '-0.0' : String(n);
  if (Number.isFinite(n)) {
    const s = String(n);
    return s.includes('.') || s.includes('e') ? s : s + '.0';
  }
  if (Number.isNaN(n)) return 'NaN';
  return n > 0 ? 'Infinity' : '-Infinity';
}

// Object keys repeat from message to message (header and meta names): quote each once.
const quotedKeys = new Map<string, string>();

function quoteKey(key: string): string {
  let q = quotedKeys.get(key);
  if (q === undefined) {
    q = quote(key);
    if (quotedKeys.size < 10_000) quotedKeys.set(key, q);
  }
  return q;
}

// Below this depth a cycle cannot have closed yet, so no bookkeeping is needed; deeper values are
// tracked in a set, which finds a cycle within one more turn of it.
const TRACK_DEPTH = 64;

interface EncodeState {
  tags: boolean;
  seen: Set<object> | null;
}

function encodeObject(o: Record<string, unknown>, depth: number, st: EncodeState): string {
  let out = '{';
  let n = 0;
  let typed = false;
  for (const key in o) {
    if (!Object.prototype.hasOwnProperty.call(o, key)) continue;
    const v = o[key];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    if (key === '__type__' || key === '__value__') typed = true;
    out += (n++ === 0 ? '' : ', ') + quoteKey(key) + ': ' + encode(v, depth, st);
  }
  if (typed && st.tags && n === 2 && '__type__' in o && '__value__' in o) {
    throw new TypeError('An object with exactly the keys __type__ and __value__ would be read back by kombu >= 5.3 as a tagged value; rename one of its keys');
  }
  return out + '}';
}

function encodeArray(a: readonly unknown[], depth: number, st: EncodeState): string {
  let out = '[';
  for (let i = 0; i < a.length; i++) out += (i === 0 ? '' : ', ') + encode(a[i], depth, st);
  return out + ']';
}

function tagged(type: string, value: string): string {
  return '{"__type__": "' + type + '", "__value__": ' + value + '}';
}

/** A datetime: tagged for kombu ≥ 5.3; for 5.2 the ISO string kombu 5.2 writes (UTC as Z). */
function encodeDate(d: Date, tags: boolean): string {
  if (Number.isNaN(d.getTime())) throw new TypeError('Object of type Date is not JSON serializable: it is an Invalid Date');
  const iso = datetimeIsoformat(d);
  return tags ? tagged('datetime', quote(iso)) : quote(iso.endsWith('+00:00') ? iso.slice(0, -6) + 'Z' : iso);
}

/** bytes: kombu's bytes tag when the bytes are UTF-8, its base64 tag otherwise; for 5.2 UTF-8 text only. */
function encodeBytes(b: Uint8Array, tags: boolean): string {
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (isUtf8(buf)) return tags ? tagged('bytes', quote(buf.toString('utf8'))) : quote(buf.toString('utf8'));
  if (tags) return tagged('base64', quote(buf.toString('base64')));
  throw new TypeError('Bytes that are not UTF-8 cannot be sent to Celery 5.2 peers as JSON (kombu 5.2 has no base64 tag): use msgpack, or celery_peer_version 5.3 or later');
}

/** The Python values of protocol/values.ts and other classes; null when `v` is none of them. */
function encodeSpecial(v: object, depth: number, st: EncodeState): string | null {
  if (v instanceof Date) return encodeDate(v, st.tags);
  if (v instanceof Uint8Array) return encodeBytes(v, st.tags);
  if (v instanceof Float) return encodeNumber(v.value).replace(/^(-?\d+)$/, '$1.0');
  if (v instanceof Decimal) return st.tags ? tagged('decimal', quote(v.value)) : quote(v.value);
  if (v instanceof UUID) return st.tags ? tagged('uuid', '{"hex": "' + v.hex + '"}') : quote(v.toString());
  if (v instanceof CeleryDate) return st.tags ? tagged('date', quote(v.toString())) : quote(v.toString() + 'T00:00:00');
  if (v instanceof CeleryTime) return st.tags ? tagged('time', quote(v.iso)) : quote(v.iso);
  if (v instanceof Set) return encodeArray([...v], depth, st);
  if (v instanceof Map) return encodeObject(Object.fromEntries(v), depth, st);
  return null;
}

function encode(v: unknown, depth: number, st: EncodeState): string {
  switch (typeof v) {
    case 'string': return quote(v);
    case 'number': return encodeNumber(v);
    case 'boolean': return v ? 'true' : 'false';
    case 'bigint': return v.toString();
    case 'undefined': case 'function': case 'symbol': return 'null';
  }
  if (v === null) return 'null';
  const obj = v as object;
  const track = depth >= TRACK_DEPTH;
  if (track) {
    st.seen ??= new Set();
    if (st.seen.has(obj)) throw Object.assign(new Error('Circular reference detected'), { name: 'ValueError' }); // Python's words
    st.seen.add(obj);
  }
  try {
    if (Array.isArray(v)) return encodeArray(v, depth + 1, st);
    if (Object.getPrototypeOf(v) !== Object.prototype) {
      const special = encodeSpecial(obj, depth + 1, st);
      if (special !== null) return special;
    }
    const withToJSON = v as { toJSON?: () => unknown };
    if (typeof withToJSON.toJSON === 'function') return encode(withToJSON.toJSON(), depth + 1, st);
    return encodeObject(v as Record<string, unknown>, depth + 1, st);
  } finally {
    if (track) st.seen!.delete(obj);
  }
}

/**
 * Return `s` as one flat string. dumps() builds its result by concatenation, which V8 keeps as a tree
 * of string pieces until something reads the characters; a socket write or Buffer.byteLength then
 * flattens it anyway. A string that waits in a batch (a bulk publish, stores of one event-loop turn)
 * is cheaper flat: the pieces die young instead of being copied by every scavenge while it waits.
 * ToNumber reads the characters, so it flattens the string in place.
 */
export function flatten(s: string): string {
  void ((s as unknown as number) | 0);
  return s;
}

/**
 * json.dumps(value) as Python writes it: ", " and ": " separators, ASCII only, NaN allowed, integers
 * of any size, kombu's tags. Throws EncodeError for what JSON cannot carry (kombu raises the same).
 */
export function dumps(value: unknown, opts?: JsonOptions): string {
  try {
    return encode(value, 0, { tags: opts?.tags !== false, seen: null });
  } catch (err) {
    throw toEncodeError(err);
  }
}

export { loads } from './json-parse.js';
