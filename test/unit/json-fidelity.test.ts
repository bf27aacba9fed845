// The lossless JSON layer: integers of any size, floats, bytes, datetimes, kombu's tags per peer
// version, NUL-prefixed strings; and the msgpack codec's type mapping. Python's own bytes are the reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dumps, loads } from '../../src/protocol/json.js';
import { packb, unpackb } from '../../src/protocol/msgpack.js';
import { CeleryDate, CeleryDateTime, CeleryTime, Decimal, Float, UUID } from '../../src/protocol/values.js';
import { EncodeError } from '../../src/protocol/errors.js';
import { decodeTask, encodeTaskV2 } from '../../src/protocol/message.js';
import { jsonTagsFor } from '../../src/protocol/serializers.js';

test('integers beyond 2^53 are exact both ways: bigint in, JSON integer out', () => {
  const big = loads('[9007199254740993, 12345678901234567890, -18446744073709551617, 1000000000000000000000000000000, 9007199254740991]') as unknown[];
  assert.deepEqual(big, [9007199254740993n, 12345678901234567890n, -18446744073709551617n, 10n ** 30n, 9007199254740991]);
  assert.equal(dumps(big), '[9007199254740993, 12345678901234567890, -18446744073709551617, 1000000000000000000000000000000, 9007199254740991]');
  assert.equal(dumps(2n ** 64n + 1n), '18446744073709551617');
  assert.equal(typeof loads('9007199254740992'), 'bigint', '2^53 is beyond the safe range');
  assert.deepEqual(loads('[1234567890123456]'), [1234567890123456]);
});

test('floats: a JS number that is not a safe integer goes out as a float; -0.0, NaN and ±inf survive', () => {
  assert.equal(dumps([2 ** 53, -0, 1.5, 1e21, NaN, Infinity, -Infinity, 2]), '[9007199254740992.0, -0.0, 1.5, 1e+21, NaN, Infinity, -Infinity, 2]');
  const v = loads('[-0.0, 2.0, NaN]') as number[];
  assert.ok(Object.is(v[0], -0));
  assert.equal(v[1], 2);
  assert.equal(dumps(loads('[-0.0, 1e+300, 0.1]')), '[-0.0, 1e+300, 0.1]');
});

test('exactFloats: 2.0 arrives as Float and goes back as 2.0; Float can be sent on its own', () => {
  const v = loads('[2.0, 2, 1.5, -0.0, 3e0]', { exactFloats: true }) as unknown[];
  assert.ok(v[0] instanceof Float && (v[0] as Float).value === 2);
  assert.equal(v[1], 2);
  assert.equal(v[2], 1.5);
  assert.ok(Object.is(v[3], -0));
  assert.equal(dumps(v), '[2.0, 2, 1.5, -0.0, 3.0]');
  assert.equal(dumps(new Float(7)), '7.0');
  assert.equal(+new Float(7) + 1, 8);
});

test("a NUL-prefixed string is never taken for NaN, even beside a real NaN", () => {
  const v = loads('["\\u0000NaN", NaN, "\\u0000Infinity", -Infinity, "\\u0000-Infinity"]') as unknown[];
  assert.equal(v[0], '\u0000NaN');
  assert.ok(Number.isNaN(v[1]));
  assert.equal(v[2], '\u0000Infinity');
  assert.equal(v[3], -Infinity);
  assert.equal(v[4], '\u0000-Infinity');
  assert.equal(dumps(v), '["\\u0000NaN", NaN, "\\u0000Infinity", -Infinity, "\\u0000-Infinity"]');
});

test('bytes: kombu ≥ 5.3 bytes tag for UTF-8, base64 tag otherwise; both decode; 5.2 peers get UTF-8 text or EncodeError', () => {
  const bad = Buffer.from('ff008041', 'hex');
  assert.equal(dumps(bad), '{"__type__": "base64", "__value__": "/wCAQQ=="}');
  assert.equal(dumps(Buffer.from('héllo')), '{"__type__": "bytes", "__value__": "h\\u00e9llo"}');
  assert.equal(dumps(new Uint8Array([104, 105])), '{"__type__": "bytes", "__value__": "hi"}');
  assert.deepEqual(loads('{"__type__": "base64", "__value__": "/wCAQQ=="}'), bad);
  assert.deepEqual(loads('{"__type__": "bytes", "__value__": "h\\u00e9llo"}'), Buffer.from('héllo'));
  assert.equal(dumps(Buffer.from('hi'), { tags: false }), '"hi"');
  assert.throws(() => dumps(bad, { tags: false }), (e: Error) => e instanceof EncodeError && /Celery 5\.2/.test(e.message));
});

test('datetimes: naive means UTC whatever TZ is; microseconds and offsets survive a round trip', () => {
  const naive = loads('{"__type__": "datetime", "__value__": "2024-01-02T03:04:05"}') as CeleryDateTime;
  assert.ok(naive instanceof CeleryDateTime && naive instanceof Date);
  assert.equal(naive.toISOString(), '2024-01-02T03:04:05.000Z');
  assert.equal(naive.utcoffset, null);
  assert.equal(dumps(naive), '{"__type__": "datetime", "__value__": "2024-01-02T03:04:05"}');
  const aware = loads('{"__type__": "datetime", "__value__": "2024-01-02T03:04:05.123456+05:30"}') as CeleryDateTime;
  assert.equal(aware.toISOString(), '2024-01-01T21:34:05.123Z');
  assert.equal(aware.microsecond, 123456);
  assert.equal(dumps(aware), '{"__type__": "datetime", "__value__": "2024-01-02T03:04:05.123456+05:30"}');
  assert.equal(dumps(new Date('2024-01-02T03:04:05.120Z')), '{"__type__": "datetime", "__value__": "2024-01-02T03:04:05.120000+00:00"}');
  assert.equal(dumps(new Date('2024-01-02T03:04:05Z'), { tags: false }), '"2024-01-02T03:04:05Z"', 'kombu 5.2 writes UTC as Z');
  assert.equal(CeleryDateTime.fromisoformat('0005-03-01T00:00:00')!.isoformat(), '0005-03-01T00:00:00');
  assert.equal(CeleryDateTime.fromisoformat('2023-02-29T00:00:00'), null);
});

test('a naive datetime is read as UTC in a process whose TZ is America/New_York', () => {
  const before = process.env.TZ;
  process.env.TZ = 'America/New_York';
  try {
    assert.equal(new Date(2024, 0, 2, 3).getTimezoneOffset(), 300, 'the time zone took effect');
    const d = loads('{"__type__": "datetime", "__value__": "2024-01-02T03:04:05.000001"}') as CeleryDateTime;
    assert.equal(d.toISOString(), '2024-01-02T03:04:05.000Z');
    assert.equal(dumps(d), '{"__type__": "datetime", "__value__": "2024-01-02T03:04:05.000001"}');
  } finally {
    if (before === undefined) delete process.env.TZ;
    else process.env.TZ = before;
  }
});

test('Decimal, UUID, date and time round trip as named types', () => {
  const text = '[{"__type__": "decimal", "__value__": "1.10"}, {"__type__": "uuid", "__value__": {"hex": "12345678123456781234567812345678"}}, {"__type__": "date", "__value__": "2024-02-29"}, {"__type__": "time", "__value__": "03:04:05.000006"}]';
  const [d, u, day, t] = loads(text) as [Decimal, UUID, CeleryDate, CeleryTime];
  assert.ok(d instanceof Decimal && d.value === '1.10');
  assert.ok(u instanceof UUID && String(u) === '12345678-1234-5678-1234-567812345678');
  assert.ok(day instanceof CeleryDate && day.year === 2024 && day.month === 2 && day.day === 29);
  assert.ok(t instanceof CeleryTime && t.iso === '03:04:05.000006');
  assert.equal(dumps([d, u, day, t]), text);
});

test('tags are decoded only when they are kombu\'s; any other dict passes through; 5.2 JSON has no tags', () => {
  assert.deepEqual(loads('{"__type__": "widget", "__value__": 3}'), { __type__: 'widget', __value__: 3 });
  assert.deepEqual(loads('{"__type__": "uuid", "__value__": 5}'), { __type__: 'uuid', __value__: 5 });
  assert.deepEqual(loads('{"__type__": "datetime", "__value__": "not a date"}'), { __type__: 'datetime', __value__: 'not a date' });
  assert.deepEqual(loads('{"__type__": "datetime", "__value__": "2024-01-02T03:04:05"}', { tags: false }), { __type__: 'datetime', __value__: '2024-01-02T03:04:05' });
  assert.throws(() => dumps({ __type__: 'widget', __value__: 3 }), EncodeError, 'kombu ≥ 5.3 would read it as a tag');
  assert.equal(dumps({ __type__: 'widget', __value__: 3 }, { tags: false }), '{"__type__": "widget", "__value__": 3}');
  assert.equal(jsonTagsFor(undefined), true);
  assert.equal(jsonTagsFor('5.2.6'), false);
  assert.equal(jsonTagsFor('5.6'), true);
});

test('a Celery 5.2 message (no stamping headers) is read without tags; a 5.3+ one with them', () => {
  const body = Buffer.from('[[{"__type__": "uuid", "__value__": 5}, {"__type__": "widget", "__value__": 3}, {"__type__": "date", "__value__": "2024-01-02"}], {}, {}]');
  const msg52 = { headers: { lang: 'py', task: 't', id: 'a', argsrepr: '()', origin: 'x' }, properties: {}, body, contentType: 'application/json', contentEncoding: 'utf-8' };
  const r52 = decodeTask(msg52);
  assert.deepEqual(r52.args, [{ __type__: 'uuid', __value__: 5 }, { __type__: 'widget', __value__: 3 }, { __type__: 'date', __value__: '2024-01-02' }]);
  assert.equal(r52.kombuTags, false);
  const r56 = decodeTask({ ...msg52, headers: { ...msg52.headers, stamped_headers: null, stamps: {} } });
  assert.ok(r56.args[2] instanceof CeleryDate);
  assert.equal(r56.kombuTags, true);
  const to52 = encodeTaskV2('t', [new Date(0)], {}, { tags: false });
  assert.ok(!('stamps' in to52.headers) && !('stamped_headers' in to52.headers), 'a 5.2 peer gets the headers 5.2 sends');
  assert.match(to52.body.toString(), /"1970-01-01T00:00:00Z"/);
});

test('EncodeError for what JSON cannot carry: circular, invalid Date, throwing toJSON, nesting deeper than the stack', () => {
  const loop: Record<string, unknown> = {};
  loop.loop = loop;
  let deep: unknown = 1;
  for (let i = 0; i < 200_000; i++) deep = [deep];
  for (const v of [loop, new Date('x'), { toJSON() { throw new Error('no'); } }, deep]) {
    assert.throws(() => dumps(v), (e: Error) => e instanceof EncodeError && e.permanent === true);
  }
  assert.throws(() => encodeTaskV2('t', [new Date('x')], {}), EncodeError, 'a call with such an argument fails before it is published');
});

test('msgpack: Python packb bytes, and each type read back as it was written', () => {
  // python3 -c "import msgpack; print(msgpack.packb([1, -1, 2**40, 2**64-1, -2**63, 1.5, -0.0, 2.0, 'é', b'\xff', None, True, {'a': [1]}], use_bin_type=True).hex())"
  const python = Buffer.from('9d01ffcf0000010000000000cfffffffffffffffffd38000000000000000cb3ff8000000000000cb8000000000000000cb4000000000000000a2c3a9c401ffc0c381a1619101', 'hex');
  const v = unpackb(python) as unknown[];
  assert.deepEqual(v.slice(0, 6), [1, -1, 2 ** 40, 2n ** 64n - 1n, -(2n ** 63n), 1.5]);
  assert.ok(Object.is(v[6], -0));
  assert.deepEqual(v.slice(7), [2, 'é', Buffer.from([0xff]), null, true, { a: [1] }]);
  const back = [1, -1, 2 ** 40, 2n ** 64n - 1n, -(2n ** 63n), 1.5, -0, new Float(2), 'é', Buffer.from([0xff]), null, true, { a: [1] }];
  assert.equal(packb(back).toString('hex'), python.toString('hex'), 'byte for byte what Python writes');
  assert.throws(() => packb(2n ** 64n), (e: Error) => e instanceof EncodeError && /out of range/.test(e.message));
  assert.throws(() => packb('\ud800'), EncodeError);
  assert.throws(() => packb(new Decimal('1.1')), EncodeError);
  const when = new Date('2024-01-02T03:04:05.678Z');
  assert.equal((unpackb(packb(when)) as Date).getTime(), when.getTime());
});
