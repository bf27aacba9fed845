// AMQP field tables (message headers) as py-amqp writes and reads them.
//
// Outbound: amqplib guesses integer types ('b' for -128..127, 's' for int16), and py-amqp reads 'b' as
// unsigned (-5 arrives as 251) and 's' as a short string. So every integer is tagged explicitly: 'I'
// (int32) when it fits, 'l' (int64, which py-amqp reads as unsigned) for larger positive values.
//
// Inbound: py-amqp writes ints beyond ±2^31 with the 'L' tag, which amqplib 2.3.1's decoder does not know:
// it throws while parsing the frame and the whole connection dies. decodeFieldTable is a complete field-table
// decoder with amqplib's semantics plus 'L' and 'U'; amqplib.ts installs it before amqplib loads.

type Tagged = { '!': string; value: unknown };

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;

/** Convert a header value so amqplib writes types py-amqp reads back unchanged. */
export function toFieldValue(v: unknown): unknown {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) return v; // amqplib writes non-integers as 'd' (double), as py-amqp does
    if (v >= INT32_MIN && v <= INT32_MAX) return { '!': 'int', value: v };
    // 'l' is read as unsigned 64-bit by py-amqp, so only positive values survive it; negatives go as doubles.
    return v > 0 ? { '!': 'long', value: v } : { '!': 'double', value: v };
  }
  if (typeof v === 'bigint') {
    return v >= 0n ? { '!': 'long', value: v } : { '!': 'double', value: Number(v) };
  }
  if (v === undefined) return null;
  if (v === null || typeof v !== 'object') return v;
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(toFieldValue);
  if (Object.hasOwn(v, '!')) return v; // already typed by the caller
  return toFieldTable(v as Record<string, unknown>);
}

/** Headers → an amqplib field table with explicit integer types. Undefined values are left out. */
export function toFieldTable(headers: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = toFieldValue(v);
  return out;
}

/**
 * amqplib's tagged inbound values (timestamps, decimals) → plain JSON values for the protocol layer.
 * Tables and arrays are the decoder's own fresh objects, so they are converted in place.
 */
export function fromFieldValue(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = fromFieldValue(v[i]);
    return v;
  }
  if (Object.hasOwn(v, '!')) {
    const t = v as Tagged;
    if (t['!'] === 'timestamp') return t.value;
    if (t['!'] === 'decimal') {
      const d = t.value as { places: number; digits: number };
      return d.digits / 10 ** d.places;
    }
    return t.value;
  }
  const o = v as Record<string, unknown>;
  for (const k in o) {
    const x = o[k];
    if (x !== null && typeof x === 'object') o[k] = fromFieldValue(x);
  }
  return o;
}

function int64(n: bigint): number {
  return Number(n); // beyond 2^53 this rounds, as any JS number would
}

/** Decode a field table (the bytes after its 4-byte length). Same results as amqplib's decoder, plus 'L' and 'U'. */
export function decodeFieldTable(slice: Buffer): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  let offset = 0;

  function value(): unknown {
    const tag = slice[offset]!;
    offset++;
    let v: unknown;
    switch (tag) {
      case 0x53: { // 'S' long string: most header values
        const len = slice.readUInt32BE(offset);
        offset += 4;
        v = slice.toString('utf8', offset, offset + len);
        offset += len;
        return v;
      }
      case 0x49: v = slice.readInt32BE(offset); offset += 4; return v; // 'I'
      case 0x56: return null; // 'V'
      case 0x74: v = slice[offset] !== 0; offset += 1; return v; // 't'
      default: return other(String.fromCharCode(tag));
    }
  }

  function other(tag: string): unknown {
    let v: unknown;
    switch (tag) {
      case 'b': v = slice.readInt8(offset); offset += 1; break;
      case 'B': v = slice.readUInt8(offset); offset += 1; break;
      case 's': case 'U': v = slice.readInt16BE(offset); offset += 2; break;
      case 'u': v = slice.readUInt16BE(offset); offset += 2; break;
      case 'i': v = slice.readUInt32BE(offset); offset += 4; break;
      case 'l': case 'L': v = int64(slice.readBigInt64BE(offset)); offset += 8; break;
      case 'f': v = slice.readFloatBE(offset); offset += 4; break;
      case 'd': v = slice.readDoubleBE(offset); offset += 8; break;
      case 'D': {
        const places = slice[offset]!;
        const digits = slice.readUInt32BE(offset + 1);
        offset += 5;
        v = { '!': 'decimal', value: { places, digits } };
        break;
      }
      case 'T': v = { '!': 'timestamp', value: Number(slice.readBigUInt64BE(offset)) }; offset += 8; break;
      case 'S': case 'x': {
        const len = slice.readUInt32BE(offset);
        offset += 4;
        v = tag === 'S' ? slice.toString('utf8', offset, offset + len) : slice.subarray(offset, offset + len);
        offset += len;
        break;
      }
      case 'F': {
        const len = slice.readUInt32BE(offset);
        offset += 4;
        v = decodeFieldTable(slice.subarray(offset, offset + len));
        offset += len;
        break;
      }
      case 'A': {
        const len = slice.readUInt32BE(offset);
        offset += 4;
        const end = offset + len;
        const items: unknown[] = [];
        while (offset < end) items.push(value());
        v = items;
        break;
      }
      default:
        throw new TypeError(`Unexpected type tag "${tag}" in an AMQP field table`);
    }
    return v;
  }

  while (offset < slice.length) {
    const keyLen = slice.readUInt8(offset);
    offset++;
    const key = slice.toString('utf8', offset, offset + keyLen);
    offset += keyLen;
    fields[key] = value();
  }
  return fields;
}
