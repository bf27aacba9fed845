// kombu's msgpack serializer (application/x-msgpack): Python's packb(use_bin_type=True) and
// unpackb(raw=False). Decoding is msgpackr's. Encoding is ours: msgpackr writes -0.0 as the int 0,
// a safe integer above 2^32 as a float, and has no way to write a whole-valued float (Float), and
// Python reads each of those back as another value.
import { Unpackr } from 'msgpackr';
import { toEncodeError } from './errors.js';
import { CeleryDate, CeleryDateTime, CeleryTime, Decimal, Float, UUID, isWellFormed } from './values.js';

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint' });

class Writer {
  buf = Buffer.allocUnsafe(256);
  pos = 0;

  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  byte(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }
  /** A type byte followed by an unsigned big-endian length or value of 1, 2 or 4 bytes. */
  head(type: number, n: number, size: 1 | 2 | 4): void {
    this.room(5);
    this.buf[this.pos++] = type;
    this.buf.writeUIntBE(n, this.pos, size);
    this.pos += size;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

function sized(w: Writer, n: number, fix: number | null, fixMax: number, t8: number | null, t16: number, t32: number): void {
  if (fix !== null && n <= fixMax) w.byte(fix | n);
  else if (t8 !== null && n < 0x100) w.head(t8, n, 1);
  else if (n < 0x10000) w.head(t16, n, 2);
  else w.head(t32, n, 4);
}

function writeInt(w: Writer, n: bigint | number): void {
  const v = BigInt(n);
  if (v >= 0n) {
    if (v < 0x80n) return w.byte(Number(v));
    if (v < 0x100n) return w.head(0xcc, Number(v), 1);
    if (v < 0x10000n) return w.head(0xcd, Number(v), 2);
    if (v < 0x100000000n) return w.head(0xce, Number(v), 4);
    if (v >= 1n << 64n) throw Object.assign(new Error('Integer value out of range'), { name: 'OverflowError' }); // Python's words
    w.byte(0xcf);
    w.room(8);
    w.pos = w.buf.writeBigUInt64BE(v, w.pos);
    return;
  }
  if (v >= -0x20n) return w.byte(0x100 + Number(v));
  w.room(9);
  if (v >= -0x80n) { w.buf[w.pos++] = 0xd0; w.pos = w.buf.writeInt8(Number(v), w.pos); }
  else if (v >= -0x8000n) { w.buf[w.pos++] = 0xd1; w.pos = w.buf.writeInt16BE(Number(v), w.pos); }
  else if (v >= -0x80000000n) { w.buf[w.pos++] = 0xd2; w.pos = w.buf.writeInt32BE(Number(v), w.pos); }
  else if (v >= -(1n << 63n)) { w.buf[w.pos++] = 0xd3; w.pos = w.buf.writeBigInt64BE(v, w.pos); }
  else throw Object.assign(new Error('Integer value out of range'), { name: 'OverflowError' });
}

function writeFloat(w: Writer, n: number): void {
  w.room(9);
  w.buf[w.pos++] = 0xcb;
  w.pos = w.buf.writeDoubleBE(n, w.pos);
}

function writeStr(w: Writer, s: string): void {
  if (!isWellFormed(s)) throw Object.assign(new Error("'utf-8' codec can't encode a lone surrogate: surrogates not allowed"), { name: 'UnicodeEncodeError' });
  const len = Buffer.byteLength(s, 'utf8');
  sized(w, len, 0xa0, 31, 0xd9, 0xda, 0xdb);
  w.room(len);
  w.pos += w.buf.write(s, w.pos, 'utf8');
}

/** msgpack's timestamp extension (type -1): Python's msgpack reads it as msgpack.Timestamp. */
function writeTimestamp(w: Writer, d: Date): void {
  const ms = d.getTime();
  if (Number.isNaN(ms)) throw new TypeError('Object of type Date is not msgpack serializable: it is an Invalid Date');
  const sec = Math.floor(ms / 1000);
  const micro = d instanceof CeleryDateTime ? d.microsecond : (ms - sec * 1000) * 1000;
  const nsec = micro * 1000;
  w.room(15);
  if (sec >= 0 && sec < 2 ** 34) {
    w.buf[w.pos++] = 0xd7; // fixext 8: nsec (30 bits) and sec (34 bits)
    w.buf[w.pos++] = 0xff;
    w.pos = w.buf.writeUInt32BE(((nsec * 4) + Math.floor(sec / 2 ** 32)) >>> 0, w.pos);
    w.pos = w.buf.writeUInt32BE(sec >>> 0, w.pos);
  } else {
    w.buf[w.pos++] = 0xc7; // ext 8, length 12: nsec (32 bits) and sec (signed 64 bits)
    w.buf[w.pos++] = 12;
    w.buf[w.pos++] = 0xff;
    w.pos = w.buf.writeUInt32BE(nsec, w.pos);
    w.pos = w.buf.writeBigInt64BE(BigInt(sec), w.pos);
  }
}

const TRACK_DEPTH = 64;

function pack(w: Writer, v: unknown, depth: number, seen: Set<object>): void {
  switch (typeof v) {
    case 'string': return writeStr(w, v);
    case 'number': return Number.isSafeInteger(v) && !(v === 0 && 1 / v < 0) ? writeInt(w, v) : writeFloat(w, v);
    case 'bigint': return writeInt(w, v);
    case 'boolean': return w.byte(v ? 0xc3 : 0xc2);
    case 'undefined': case 'function': case 'symbol': return w.byte(0xc0);
  }
  if (v === null) return w.byte(0xc0);
  const obj = v as object;
  if (depth >= TRACK_DEPTH) {
    if (seen.has(obj)) throw Object.assign(new Error('Circular reference detected'), { name: 'ValueError' });
    seen.add(obj);
  }
  try {
    if (Array.isArray(v) || v instanceof Set) {
      const items = Array.isArray(v) ? v : [...v];
      sized(w, items.length, 0x90, 15, null, 0xdc, 0xdd);
      for (const item of items) pack(w, item, depth + 1, seen);
    } else if (v instanceof Uint8Array) {
      sized(w, v.length, null, 0, 0xc4, 0xc5, 0xc6);
      w.bytes(v);
    } else if (v instanceof Float) writeFloat(w, v.value);
    else if (v instanceof Date) writeTimestamp(w, v);
    else if (v instanceof Decimal || v instanceof UUID || v instanceof CeleryDate || v instanceof CeleryTime) {
      throw new TypeError(`Object of type ${v.constructor.name} is not msgpack serializable (Python's msgpack has no such type): send it with the json serializer`);
    } else if (v instanceof Map) packMap(w, Object.fromEntries(v), depth, seen);
    else if (typeof (v as { toJSON?: unknown }).toJSON === 'function' && Object.getPrototypeOf(v) !== Object.prototype) {
      pack(w, (v as { toJSON: () => unknown }).toJSON(), depth + 1, seen);
    } else packMap(w, v as Record<string, unknown>, depth, seen);
  } finally {
    if (depth >= TRACK_DEPTH) seen.delete(obj);
  }
}

function packMap(w: Writer, o: Record<string, unknown>, depth: number, seen: Set<object>): void {
  const keys: string[] = [];
  for (const k in o) {
    if (!Object.prototype.hasOwnProperty.call(o, k)) continue;
    const t = typeof o[k];
    if (t !== 'undefined' && t !== 'function' && t !== 'symbol') keys.push(k);
  }
  sized(w, keys.length, 0x80, 15, null, 0xde, 0xdf);
  for (const k of keys) {
    writeStr(w, k);
    pack(w, o[k], depth + 1, seen);
  }
}

/** packb(value, use_bin_type=True). Throws EncodeError for what msgpack cannot carry, as kombu does. */
export function packb(value: unknown): Buffer {
  const w = new Writer();
  try {
    pack(w, value, 0, new Set());
  } catch (err) {
    throw toEncodeError(err);
  }
  return w.buf.subarray(0, w.pos);
}

/** Integers that fit a JS number exactly become numbers; bigger ones stay bigint (as in JSON). */
function settle(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array || v instanceof Date) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (x !== null && (typeof x === 'object' || typeof x === 'bigint')) v[i] = settle(x);
    }
    return v;
  }
  const o = v as Record<string, unknown>;
  for (const k in o) {
    const x = o[k];
    if (x !== null && (typeof x === 'object' || typeof x === 'bigint')) o[k] = settle(x);
  }
  return v;
}

/** unpackb(data, raw=False). Throws on bytes that are not msgpack. */
export function unpackb(data: Uint8Array): unknown {
  return settle(unpackr.unpack(data));
}
