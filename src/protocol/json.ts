// Python-compatible JSON: the bytes kombu's `json` serializer writes and the values it reads.
import { toEncodeError } from './errors.js';

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

function encodeNumber(n: number): string {
  if (Number.isFinite(n)) return JSON.stringify(n);
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

function encodeObject(o: Record<string, unknown>, depth: number, seen: Set<object> | null): string {
  let out = '{';
  let n = 0;
  let typed = false;
  for (const key in o) {
    if (!Object.prototype.hasOwnProperty.call(o, key)) continue;
    const v = o[key];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    if (key === '__type__' || key === '__value__') typed = true;
    out += (n++ === 0 ? '' : ', ') + quoteKey(key) + ': ' + encode(v, depth, seen);
  }
  if (typed && n === 2 && '__type__' in o && '__value__' in o) {
    throw new TypeError('An object with exactly the keys __type__ and __value__ would be read back by kombu as a tagged value; rename one of its keys.');
  }
  return out + '}';
}

function encodeArray(a: readonly unknown[], depth: number, seen: Set<object> | null): string {
  let out = '[';
  for (let i = 0; i < a.length; i++) out += (i === 0 ? '' : ', ') + encode(a[i], depth, seen);
  return out + ']';
}

function encode(v: unknown, depth: number, seen: Set<object> | null): string {
  switch (typeof v) {
    case 'string': return quote(v);
    case 'number': return encodeNumber(v);
    case 'boolean': return v ? 'true' : 'false';
    case 'bigint': return v.toString();
    case 'undefined': case 'function': case 'symbol': return 'null';
  }
  if (v === null) return 'null';
  const obj = v as object;
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new TypeError('Object of type Date is not JSON serializable: it is an Invalid Date');
    return quote(isoformat(v));
  }
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) {
    return '{"__type__": "bytes", "__value__": ' + quote(Buffer.from(v).toString('utf8')) + '}';
  }
  const track = depth >= TRACK_DEPTH;
  if (track) {
    seen ??= new Set();
    if (seen.has(obj)) throw Object.assign(new Error('Circular reference detected'), { name: 'ValueError' }); // Python's words
    seen.add(obj);
  }
  try {
    if (Array.isArray(v)) return encodeArray(v, depth + 1, seen);
    if (v instanceof Set) return encodeArray([...v], depth + 1, seen);
    if (v instanceof Map) return encodeObject(Object.fromEntries(v), depth + 1, seen);
    const withToJSON = v as { toJSON?: () => unknown };
    if (typeof withToJSON.toJSON === 'function') return encode(withToJSON.toJSON(), depth + 1, seen);
    return encodeObject(v as Record<string, unknown>, depth + 1, seen);
  } finally {
    if (track) seen!.delete(obj);
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
 * json.dumps(value) as Python writes it: ", " and ": " separators, ASCII only, NaN allowed.
 * Throws EncodeError for what JSON cannot carry (kombu raises the same).
 */
export function dumps(value: unknown): string {
  try {
    return encode(value, 0, null);
  } catch (err) {
    throw toEncodeError(err);
  }
}

const NAN = '\u0000NaN';
const POS_INF = '\u0000Infinity';
const NEG_INF = '\u0000-Infinity';

/** Replace bare NaN / Infinity / -Infinity tokens (outside strings) by sentinel strings. */
function quoteNonFinite(text: string): string {
  let out = '';
  let last = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) { inString = true; continue; }
    let token: string | null = null;
    let sentinel = '';
    if (c === 78 /* N */ && text.startsWith('NaN', i)) { token = 'NaN'; sentinel = NAN; }
    else if (c === 73 /* I */ && text.startsWith('Infinity', i)) { token = 'Infinity'; sentinel = POS_INF; }
    else if (c === 45 /* - */ && text.startsWith('-Infinity', i)) { token = '-Infinity'; sentinel = NEG_INF; }
    if (token) {
      out += text.slice(last, i) + JSON.stringify(sentinel);
      i += token.length - 1;
      last = i + 1;
    }
  }
  return out + text.slice(last);
}

function uuidFromHex(hex: string): string {
  const h = hex.replace(/-/g, '').toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** kombu ≥ 5.3 tagged values: {"__type__": T, "__value__": V}. */
function untag(type: string, value: unknown): unknown {
  switch (type) {
    case 'datetime': {
      const d = new Date(String(value).replace(/(\.\d{3})\d+/, '$1'));
      return Number.isNaN(d.getTime()) ? value : d;
    }
    case 'date': case 'time': case 'decimal': return String(value);
    case 'uuid': {
      const v = value as { hex?: string } | string;
      return uuidFromHex(typeof v === 'string' ? v : String(v?.hex ?? ''));
    }
    case 'bytes': return Buffer.from(String(value), 'utf8');
    case 'base64': return Buffer.from(String(value), 'base64');
    default: throw new SyntaxError(`Unknown kombu JSON tag __type__=${JSON.stringify(type)}`);
  }
}

function reviver(_key: string, value: unknown): unknown {
  if (typeof value === 'string' && value.charCodeAt(0) === 0) {
    if (value === NAN) return NaN;
    if (value === POS_INF) return Infinity;
    if (value === NEG_INF) return -Infinity;
    return value;
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const o = value as Record<string, unknown>;
    if ('__type__' in o && '__value__' in o && Object.keys(o).length === 2) return untag(String(o.__type__), o.__value__);
  }
  return value;
}

const NON_FINITE = /NaN|Infinity/;

/** Parse JSON as Python writes it: tolerates NaN/Infinity and decodes kombu's tagged types. */
export function loads(text: string): unknown {
  // Most texts have neither: plain JSON.parse, and a bare NaN/Infinity shows up as its syntax error.
  const tagged = text.includes('__type__');
  try {
    return tagged ? JSON.parse(text, reviver) : JSON.parse(text);
  } catch (err) {
    if (!NON_FINITE.test(text)) throw err;
    return JSON.parse(quoteNonFinite(text), reviver);
  }
}
