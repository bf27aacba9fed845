// The named Python types of values.ts across a structured clone (thread and process pools): the clone
// keeps a Date but drops every other class, so a Decimal would arrive as {value: '1.10'} and be sent back
// to Python as a dict, and a thread gets a Buffer as a Uint8Array. Before the clone each named value
// becomes a marked plain object; after it, itself again.
import { CeleryDate, CeleryDateTime, CeleryTime, Decimal, Float, UUID } from './values.js';

/** A key no JSON or msgpack peer can produce by accident in this position (it starts with NUL). */
const MARK = '\u0000celeriac';

type Marked = { [MARK]: string; v: string | number; us?: number; off?: number | null };

function mark(v: object): Marked | undefined {
  if (v instanceof CeleryDateTime) return { [MARK]: 'datetime', v: v.getTime(), us: v.microsecond, off: v.utcoffset };
  if (v instanceof Float) return { [MARK]: 'float', v: v.value };
  if (v instanceof Decimal) return { [MARK]: 'decimal', v: v.value };
  if (v instanceof UUID) return { [MARK]: 'uuid', v: v.hex };
  if (v instanceof CeleryDate) return { [MARK]: 'date', v: v.toString() };
  if (v instanceof CeleryTime) return { [MARK]: 'time', v: v.iso };
  return undefined;
}

function unmark(o: Record<string, unknown>): unknown {
  const v = o.v as string & number;
  switch (o[MARK]) {
    case 'datetime': return new CeleryDateTime(v, { microsecond: o.us as number, utcoffset: o.off as number | null });
    case 'float': return new Float(v);
    case 'decimal': return new Decimal(v);
    case 'uuid': return new UUID(v);
    case 'date': return new CeleryDate(v);
    case 'time': return new CeleryTime(v);
    default: return o;
  }
}

/** Arrays and plain objects are copied only where something inside them changes. */
function walk(v: unknown, f: (o: object) => unknown, seen: Set<object>): unknown {
  if (v === null || typeof v !== 'object' || seen.has(v)) return v;
  const replaced = f(v);
  if (replaced !== undefined) return replaced;
  const proto = Object.getPrototypeOf(v);
  if (!Array.isArray(v) && proto !== Object.prototype && proto !== null) return v;
  seen.add(v);
  let copy: Record<string, unknown> | unknown[] | undefined;
  const src = v as Record<string, unknown>;
  for (const k of Object.keys(src)) {
    const w = walk(src[k], f, seen);
    if (w !== src[k]) (copy ??= Array.isArray(v) ? [...v] : { ...src })[k as never] = w as never;
  }
  seen.delete(v);
  return copy ?? v;
}

/** Before a structured clone: the named types as marked plain objects (anything else unchanged). */
export function toCloneable<T>(value: T): T {
  try {
    return walk(value, mark, new Set()) as T;
  } catch {
    return value; // nested deeper than the stack: the clone or the encoder reports it
  }
}

/** After a structured clone: the marked objects as the named types again, bytes as a Buffer again. */
export function fromCloneable<T>(value: T): T {
  const revive = (o: object): unknown => {
    if (o instanceof Uint8Array) return Buffer.isBuffer(o) ? o : Buffer.from(o.buffer, o.byteOffset, o.byteLength); // a thread gets Uint8Array
    return MARK in o ? unmark(o as Record<string, unknown>) : undefined;
  };
  try {
    return walk(value, revive, new Set()) as T;
  } catch {
    return value;
  }
}
