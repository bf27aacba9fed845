import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { dumps, loads, quote, isoformat } from '../../src/protocol/json.js';
import { repr, reprArgs } from '../../src/protocol/repr.js';
import { encodeTaskV2, encodeTaskV1, decodeTask, parseIsoDate, type Message } from '../../src/protocol/message.js';
import { encodeEnvelope, decodeEnvelope, markRedelivered } from '../../src/protocol/envelope.js';
import { ContentDisallowed, DecodeError, InvalidTaskError } from '../../src/protocol/errors.js';

test('dumps writes JSON as Python json.dumps does', () => {
  assert.equal(dumps([[2, 2], {}, { callbacks: null, errbacks: null, chain: null, chord: null }]), '[[2, 2], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]');
  assert.equal(dumps({ y: 'é' }), '{"y": "\\u00e9"}');
  assert.equal(quote('😀'), '"\\ud83d\\ude00"');
  assert.equal(dumps([NaN, Infinity, -Infinity]), '[NaN, Infinity, -Infinity]');
  assert.equal(dumps({ a: undefined, b: 1 }), '{"b": 1}');
  assert.throws(() => dumps({ __type__: 'x', __value__: 1 }), /tagged value/);
});

test('dumps finds cycles at any depth, and encodes shared and deeply nested values', () => {
  const loop: Record<string, unknown> = { a: 1 };
  loop.self = loop;
  assert.throws(() => dumps(loop), /Circular reference/);
  let deep: Record<string, unknown> = { leaf: true };
  const top = deep;
  for (let i = 0; i < 200; i++) deep = (deep.next = { i }) as Record<string, unknown>;
  deep.next = top; // a cycle 200 levels long
  assert.throws(() => dumps(top), /Circular reference/);
  const arr: unknown[] = [];
  arr.push([arr]);
  assert.throws(() => dumps(arr), /Circular reference/);
  let nested: unknown = 'x';
  for (let i = 0; i < 300; i++) nested = [nested];
  assert.equal(dumps(nested), '['.repeat(300) + '"x"' + ']'.repeat(300));
  const shared = { k: 'v' };
  assert.equal(dumps({ a: shared, b: [shared, shared] }), '{"a": {"k": "v"}, "b": [{"k": "v"}, {"k": "v"}]}');
  assert.equal(dumps({ 'caf\u00e9': 1, 'a"b': 2 }), '{"caf\\u00e9": 1, "a\\"b": 2}');
});

test('loads tolerates NaN/Infinity and decodes kombu tagged values', () => {
  const v = loads('[NaN, Infinity, -Infinity, "NaN inside a string"]') as number[];
  assert.ok(Number.isNaN(v[0]));
  assert.equal(v[1], Infinity);
  assert.equal(v[2], -Infinity);
  assert.equal(v[3], 'NaN inside a string');
  const d = loads('{"__type__": "datetime", "__value__": "2030-01-01T00:00:00.123456+00:00"}');
  assert.ok(d instanceof Date);
  assert.equal((d as Date).toISOString(), '2030-01-01T00:00:00.123Z');
  assert.equal(String(loads('{"__type__": "uuid", "__value__": {"hex": "11112222333344445555666677778888"}}')), '11112222-3333-4444-5555-666677778888');
  assert.deepEqual(loads('{"__type__": "nope", "__value__": 1}'), { __type__: 'nope', __value__: 1 }); // not kombu's: unchanged
});

test('isoformat matches Python aware datetime.isoformat()', () => {
  assert.equal(isoformat(new Date('2026-11-24T18:30:57.235Z')), '2026-11-24T18:30:57.235000+00:00');
  assert.equal(parseIsoDate('2030-01-01T00:00:00').toISOString(), '2030-01-01T00:00:00.000Z'); // naive is UTC
  assert.equal(parseIsoDate('2026-11-24T18:30:57.235855+02:00').toISOString(), '2026-11-24T16:30:57.235Z');
});

test('repr renders Python reprs for argsrepr/kwargsrepr', () => {
  assert.equal(reprArgs([2, 2]), '(2, 2)');
  assert.equal(reprArgs([1]), '(1,)');
  assert.equal(reprArgs([]), '()');
  assert.equal(repr({ y: 'é', n: null, t: true }), "{'y': 'é', 'n': None, 't': True}");
  assert.equal(repr("it's"), '"it\'s"');
});

test('encodeTaskV2 emits every Celery header in order, with Celery values', () => {
  const now = new Date('2026-11-24T18:30:47.235Z');
  const m = encodeTaskV2('tasks.add', [2, 2], {}, { id: 'abc', countdown: 10, expires: 60, timeLimit: 30, softTimeLimit: 20, priority: 7, shadow: 'alias.add', headers: { 'x-custom': 'v' }, now, replyTo: 'oid' });
  assert.deepEqual(Object.keys(m.headers), ['lang', 'task', 'id', 'shadow', 'eta', 'expires', 'group', 'group_index', 'retries', 'timelimit', 'root_id', 'parent_id', 'argsrepr', 'kwargsrepr', 'origin', 'ignore_result', 'replaced_task_nesting', 'stamped_headers', 'stamps', 'x-custom']);
  assert.equal(m.headers.eta, '2026-11-24T18:30:57.235000+00:00');
  assert.equal(m.headers.expires, '2026-11-24T18:31:47.235000+00:00');
  assert.deepEqual(m.headers.timelimit, [30, 20]);
  assert.equal(m.headers.root_id, 'abc');
  assert.equal(m.headers.argsrepr, '(2, 2)');
  assert.equal(m.headers.kwargsrepr, '{}');
  assert.match(String(m.headers.origin), /^gen\d+@/);
  assert.deepEqual(m.properties, { correlation_id: 'abc', reply_to: 'oid', delivery_mode: 2, priority: 7, expiration: '60000' });
  assert.equal(m.body.toString(), '[[2, 2], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]');
});

test('decodeTask reads v2, v1 and hybrid messages into one request shape', () => {
  const v2 = decodeTask(encodeTaskV2('tasks.add', [1, 2], { z: 3 }, { id: 'i2', timeLimit: 5, headers: { 'x-a': 1 } }));
  assert.equal(v2.task, 'tasks.add');
  assert.deepEqual(v2.args, [1, 2]);
  assert.deepEqual(v2.kwargs, { z: 3 });
  assert.deepEqual(v2.timelimit, [5, null]);
  assert.deepEqual(v2.headers, { 'x-a': 1 });
  assert.equal(v2.protocol, 2);
  const v1 = decodeTask(encodeTaskV1('tasks.add', [4, 5], {}, { id: 'i1', countdown: 1 }));
  assert.equal(v1.protocol, 1);
  assert.equal(v1.id, 'i1');
  assert.deepEqual(v1.args, [4, 5]);
  assert.ok(v1.eta instanceof Date);
  const hybrid: Message = { headers: { task: 'tasks.add', id: 'h' }, properties: {}, body: Buffer.from('{"args": [1], "kwargs": {}}'), contentType: 'application/json', contentEncoding: 'utf-8' };
  assert.deepEqual(decodeTask(hybrid).args, [1]);
  const minimal: Message = { headers: { task: 't', id: 'm' }, properties: {}, body: Buffer.from('[[2,3],{},null]'), contentType: 'application/json', contentEncoding: 'utf-8' };
  assert.equal(decodeTask(minimal).embed.chain, null);
});

test('decodeTask refuses what Celery refuses', () => {
  const base = encodeTaskV2('t', [], {});
  assert.throws(() => decodeTask({ ...base, contentType: 'application/x-python-serialize' }), ContentDisallowed);
  assert.throws(() => decodeTask({ ...base, body: Buffer.from('not json') }), DecodeError);
  assert.throws(() => decodeTask({ ...base, body: Buffer.from('[[], [1], {}]') }), InvalidTaskError);
  assert.throws(() => decodeTask({ ...base, headers: {}, body: Buffer.from('[[], {}, {}]') }), InvalidTaskError);
  assert.throws(() => decodeTask({ ...base, headers: { ...base.headers, eta: 'garbage' } }), InvalidTaskError);
});

test('zlib-compressed bodies (kombu application/x-gzip) round-trip', () => {
  const m = encodeTaskV2('t', ['x'.repeat(1000)], {}, { compression: 'zlib' });
  assert.equal(m.headers.compression, 'application/x-gzip');
  assert.equal(m.body[0], 0x78); // a zlib stream, as kombu writes it
  assert.equal(decodeTask(m).args[0], 'x'.repeat(1000));
  const py: Message = { headers: { task: 't', id: 'z', compression: 'application/x-gzip' }, properties: {}, body: deflateSync('[[1], {}, {}]'), contentType: 'application/json', contentEncoding: 'utf-8' };
  assert.deepEqual(decodeTask(py).args, [1]);
});

test('kombu envelope: base64 body, delivery_info and delivery_tag always present', () => {
  const m = encodeTaskV2('tasks.add', [2, 2], {}, { id: 'e1', replyTo: 'r' });
  const text = encodeEnvelope(m, { exchange: '', routing_key: 'celery' }, 'tag-1');
  const raw = JSON.parse(text);
  assert.deepEqual(Object.keys(raw), ['body', 'content-encoding', 'content-type', 'headers', 'properties']);
  assert.deepEqual(Object.keys(raw.properties), ['correlation_id', 'reply_to', 'delivery_mode', 'delivery_info', 'priority', 'body_encoding', 'delivery_tag']);
  assert.equal(Buffer.from(raw.body, 'base64').toString(), m.body.toString());
  const env = decodeEnvelope(text);
  assert.equal(env.deliveryTag, 'tag-1');
  assert.equal(decodeTask(env.message).id, 'e1');
  const again = decodeEnvelope(markRedelivered(env.raw));
  assert.equal(again.deliveryInfo.redelivered, true);
  assert.equal(again.message.headers.redelivered, true);
  assert.throws(() => decodeEnvelope('{not json'), DecodeError);
  assert.throws(() => decodeEnvelope('[1,2]'), DecodeError);
});

test('a base64 body: padded, unpadded, wrapped or URL-safe decodes; anything else is a DecodeError', () => {
  const text = (body: string) => JSON.stringify({ body, 'content-type': 'application/json', 'content-encoding': 'utf-8', headers: {}, properties: { body_encoding: 'base64', delivery_tag: 't', delivery_info: { exchange: '', routing_key: 'q' } } });
  const json = '[[1, 2], {}, {}]';
  const b64 = Buffer.from(json).toString('base64');
  assert.equal(decodeEnvelope(text(b64)).message.body.toString(), json);
  assert.equal(decodeEnvelope(text(b64.replace(/=+$/, ''))).message.body.toString(), json);
  assert.equal(decodeEnvelope(text(b64.slice(0, 8) + '\n' + b64.slice(8))).message.body.toString(), json, 'MIME line breaks');
  const urlSafe = Buffer.from([0xfb, 0xff, 0xfe]).toString('base64url');
  assert.deepEqual([...decodeEnvelope(text(urlSafe)).message.body], [0xfb, 0xff, 0xfe]);
  assert.throws(() => decodeEnvelope(text(b64.slice(0, 8) + '!*' + b64.slice(8))), (e: Error) => e instanceof DecodeError && /not valid base64/.test(e.message));
  assert.throws(() => decodeEnvelope(text('{"not": "base64"}')), (e: Error) => e instanceof DecodeError && /not valid base64/.test(e.message));
});
