// The fidelity matrix, TypeScript side: the TS values sent to a Python echo task, and what each row of
// both directions must give per profile (serializer and Celery version). docs/interop.md is this table.
import { CeleryDate, CeleryDateTime, CeleryTime, Decimal, Float, UUID } from '../../src/index.js';

export type ProfileKey = 'json 5.6' | 'json 5.2' | 'msgpack 5.6' | 'msgpack 5.2';
export type Outcome = 'exact' | 'as-python' | 'refused' | 'failed' | 'changed' | 'mapped';

/** What a row must give: the outcome, and for TS the type seen (Python → TS) or read back (TS → Python). */
export interface Expect {
  outcome: Outcome;
  ts?: string;
  /** For 'mapped' (TS → Python → TS): the value read back; for 'changed': what Python got, as repr. */
  value?: unknown;
}

const json = (k: ProfileKey) => k.startsWith('json');
const v52 = (k: ProfileKey) => k.endsWith('5.2');

/** The TS name of a value's type, as the tables print it. */
export function tsType(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v;
  if (Buffer.isBuffer(v)) return 'Buffer';
  for (const C of [CeleryDateTime, Date, Float, Decimal, UUID, CeleryDate, CeleryTime, Uint8Array, Map, Set]) {
    if (v instanceof C) return C.name;
  }
  return Array.isArray(v) ? 'Array' : 'object';
}

/** Equal in value and in type, all the way down (NaN equals NaN, -0 is not 0, microseconds and offsets count). */
export function same(a: unknown, b: unknown): boolean {
  const t = tsType(a);
  if (t !== tsType(b)) return false;
  if (typeof a === 'number') return Object.is(a, b);
  if (a === null || typeof a !== 'object') return a === b;
  if (a instanceof Uint8Array) return Buffer.compare(a, b as Uint8Array) === 0;
  if (a instanceof CeleryDateTime) { const c = b as CeleryDateTime; return a.getTime() === c.getTime() && a.microsecond === c.microsecond && a.utcoffset === c.utcoffset; }
  if (a instanceof Date) return a.getTime() === (b as Date).getTime();
  if (a instanceof Float) return Object.is(a.value, (b as Float).value);
  if (a instanceof Decimal || a instanceof UUID || a instanceof CeleryDate || a instanceof CeleryTime) return String(a) === String(b);
  if (Array.isArray(a)) return a.length === (b as unknown[]).length && a.every((x, i) => same(x, (b as unknown[])[i]));
  const ka = Object.keys(a);
  const o = b as Record<string, unknown>;
  return ka.length === Object.keys(o).length && ka.every((k) => k in o && same((a as Record<string, unknown>)[k], o[k]));
}

/** Python → TS echo → Python: each row of fidelity.py (same names), with the TS type the echo task saw. */
export function expectFromPython(row: string, k: ProfileKey): Expect {
  const exact = (ts: string): Expect => ({ outcome: 'exact', ts });
  switch (row) {
    case 'int small': case 'int negative': case 'int 2^53-1': return exact('number');
    case 'int 2^53+1': case 'int -(2^53+1)': return exact('bigint');
    case 'int 2^64+1': case 'int -2^70': case 'int 10^30': return json(k) ? exact('bigint') : { outcome: 'refused' }; // msgpack: OverflowError in Python
    case 'float 2.0': return json(k) ? exact('Float') : { outcome: 'changed', ts: 'number', value: '2' }; // msgpackr reads a double as a number
    case 'float 1.5': case 'float 0.1': case 'float -0.0': case 'float 1e16': case 'float nan': case 'float inf': case 'float -inf': return exact('number');
    case 'str lone surrogate': return json(k) ? exact('string') : { outcome: 'refused' }; // msgpack: UnicodeEncodeError in Python
    case 'str ascii': case 'str non-BMP': case 'str NUL': case 'str 1 MB': return exact('string');
    case 'str NUL-prefixed NaN beside NaN': return exact('Array');
    case 'bytes UTF-8': case 'bytes not UTF-8': case 'bytes empty': return json(k) && v52(k) ? { outcome: 'refused' } : exact('Buffer'); // kombu 5.2 JSON has no bytes
    case 'datetime naive us': case 'datetime UTC us': case 'datetime +05:30': return !json(k) ? { outcome: 'refused' } : v52(k) ? { outcome: 'as-python', ts: 'string' } : exact('CeleryDateTime');
    case 'date': return !json(k) ? { outcome: 'refused' } : v52(k) ? { outcome: 'as-python', ts: 'string' } : exact('CeleryDate');
    case 'time': return !json(k) ? { outcome: 'refused' } : v52(k) ? { outcome: 'as-python', ts: 'string' } : exact('CeleryTime');
    case 'Decimal': return !json(k) ? { outcome: 'refused' } : v52(k) ? { outcome: 'as-python', ts: 'string' } : exact('Decimal');
    case 'UUID': return !json(k) ? { outcome: 'refused' } : v52(k) ? { outcome: 'as-python', ts: 'string' } : exact('UUID');
    case 'tuple': return { outcome: 'as-python', ts: 'Array' };
    // kombu >= 5.3 reads such a dict as a tag, so it cannot carry it either: the result is FAILURE/EncodeError.
    case 'dict with __type__/__value__ only': return json(k) && !v52(k) ? { outcome: 'failed', ts: 'object', value: 'EncodeError' } : exact('object');
    case 'nested list and dict': case 'dict with __type__ and more': return exact('object');
    case 'None': return exact('null');
    case 'True': case 'False': return exact('boolean');
    case 'list of mixed': return exact('Array');
    default: throw new Error(`No expectation for the Python row ${JSON.stringify(row)}`);
  }
}

export interface TsRow {
  row: string;
  value: () => unknown;
  expect: (k: ProfileKey) => Expect;
}

const always = (e: Expect) => () => e;
const EXACT = always({ outcome: 'exact' });
const naive = CeleryDateTime.fromisoformat('2024-01-02T03:04:05.123456')!;
const ist = CeleryDateTime.fromisoformat('2024-01-02T03:04:05.120000+05:30')!;
/** A named type that Python's msgpack has no equivalent for: refused there; a string for Celery 5.2. */
const named = (as52: string) => (k: ProfileKey): Expect => (!json(k) ? { outcome: 'refused' } : v52(k) ? { outcome: 'mapped', ts: 'string', value: as52 } : { outcome: 'exact' });

/** TS → Python echo → TS: the values, and what each must read back as. */
export const TS_ROWS: TsRow[] = [
  { row: 'number 42', value: () => 42, expect: EXACT },
  { row: 'number -7', value: () => -7, expect: EXACT },
  { row: 'number 2^53-1', value: () => Number.MAX_SAFE_INTEGER, expect: EXACT },
  { row: 'number 2^53 (not safe: a float)', value: () => 2 ** 53, expect: EXACT },
  { row: 'bigint 2^53+1', value: () => 2n ** 53n + 1n, expect: EXACT },
  { row: 'bigint -(2^53+1)', value: () => -(2n ** 53n + 1n), expect: EXACT },
  { row: 'bigint 2^64+1', value: () => 2n ** 64n + 1n, expect: (k) => (json(k) ? { outcome: 'exact' } : { outcome: 'refused' }) },
  { row: 'bigint -2^70', value: () => -(2n ** 70n), expect: (k) => (json(k) ? { outcome: 'exact' } : { outcome: 'refused' }) },
  { row: 'bigint 10^30', value: () => 10n ** 30n, expect: (k) => (json(k) ? { outcome: 'exact' } : { outcome: 'refused' }) },
  { row: 'number 1.5', value: () => 1.5, expect: EXACT },
  { row: 'number 0.1', value: () => 0.1, expect: EXACT },
  { row: 'number -0', value: () => -0, expect: EXACT },
  { row: 'number NaN', value: () => NaN, expect: EXACT },
  { row: 'number Infinity', value: () => Infinity, expect: EXACT },
  { row: 'number -Infinity', value: () => -Infinity, expect: EXACT },
  { row: 'Float 2 (a Python float 2.0)', value: () => new Float(2), expect: always({ outcome: 'mapped', ts: 'number', value: 2 }) },
  { row: 'string ascii', value: () => 'hello', expect: EXACT },
  { row: 'string non-BMP', value: () => 'caf\u00e9 \u{1F600} \u{1D11E}', expect: EXACT },
  { row: 'string lone surrogate', value: () => 'a\udc80b', expect: (k) => (json(k) ? { outcome: 'exact' } : { outcome: 'refused' }) },
  { row: 'string NUL', value: () => 'a\u0000b', expect: EXACT },
  { row: 'NUL-prefixed NaN strings beside NaN', value: () => ['\u0000NaN', NaN, '\u0000Infinity', '\u0000-Infinity'], expect: EXACT },
  { row: 'string 1 MB', value: () => 'x\u00e9'.repeat(2 ** 19), expect: EXACT },
  { row: 'Buffer UTF-8', value: () => Buffer.from('hello \u00e9'), expect: (k) => (json(k) && v52(k) ? { outcome: 'mapped', ts: 'string', value: 'hello \u00e9' } : { outcome: 'exact' }) },
  { row: 'Buffer not UTF-8', value: () => Buffer.from('ff008041', 'hex'), expect: (k) => (json(k) && v52(k) ? { outcome: 'refused' } : { outcome: 'exact' }) },
  { row: 'Buffer empty', value: () => Buffer.alloc(0), expect: (k) => (json(k) && v52(k) ? { outcome: 'mapped', ts: 'string', value: '' } : { outcome: 'exact' }) },
  { row: 'Uint8Array', value: () => new Uint8Array([104, 105]), expect: (k) => (json(k) && v52(k) ? { outcome: 'mapped', ts: 'string', value: 'hi' } : { outcome: 'mapped', ts: 'Buffer', value: Buffer.from('hi') }) },
  { row: 'Date', value: () => new Date('2024-01-02T03:04:05.678Z'), expect: (k) => (!json(k) ? { outcome: 'exact' } : v52(k) ? { outcome: 'mapped', ts: 'string', value: '2024-01-02T03:04:05.678000Z' } : { outcome: 'mapped', ts: 'CeleryDateTime', value: new CeleryDateTime(Date.UTC(2024, 0, 2, 3, 4, 5, 678)) }) },
  { row: 'CeleryDateTime naive, microseconds', value: () => naive, expect: (k) => (!json(k) ? { outcome: 'mapped', ts: 'Date', value: new Date(naive.getTime()) } : v52(k) ? { outcome: 'mapped', ts: 'string', value: '2024-01-02T03:04:05.123456' } : { outcome: 'exact' }) },
  { row: 'CeleryDateTime +05:30, microseconds', value: () => ist, expect: (k) => (!json(k) ? { outcome: 'mapped', ts: 'Date', value: new Date(ist.getTime()) } : v52(k) ? { outcome: 'mapped', ts: 'string', value: '2024-01-02T03:04:05.120000+05:30' } : { outcome: 'exact' }) },
  { row: 'CeleryDate', value: () => new CeleryDate('2024-02-29'), expect: named('2024-02-29T00:00:00') },
  { row: 'CeleryTime', value: () => new CeleryTime('03:04:05.000006'), expect: named('03:04:05.000006') },
  { row: 'Decimal', value: () => new Decimal('1.10'), expect: named('1.10') },
  { row: 'UUID', value: () => new UUID('12345678-1234-5678-1234-567812345678'), expect: named('12345678-1234-5678-1234-567812345678') },
  { row: 'nested array and object', value: () => ({ a: [1, { b: [true, null] }], c: { d: {} }, e: [] }), expect: EXACT },
  { row: 'Map', value: () => new Map([['a', 1]]), expect: always({ outcome: 'mapped', ts: 'object', value: { a: 1 } }) },
  { row: 'Set', value: () => new Set([1, 2]), expect: always({ outcome: 'mapped', ts: 'Array', value: [1, 2] }) },
  { row: 'object with __type__/__value__ only', value: () => ({ __type__: 'widget', __value__: 3 }), expect: (k) => (json(k) && !v52(k) ? { outcome: 'refused' } : { outcome: 'exact' }) },
  { row: 'object with __type__ and more', value: () => ({ __type__: 'uuid', __value__: 5, x: 1 }), expect: EXACT },
  { row: 'null', value: () => null, expect: EXACT },
  { row: 'undefined', value: () => undefined, expect: always({ outcome: 'mapped', ts: 'null', value: null }) },
  { row: 'true', value: () => true, expect: EXACT },
  { row: 'false', value: () => false, expect: EXACT },
  { row: 'array of mixed', value: () => [1, 2.5, 'x', null, false], expect: EXACT },
];
