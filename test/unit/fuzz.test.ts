// Fuzzing the two readers of untrusted bytes: the message decoder (kombu envelope → task request, and
// AMQP-style messages straight to decodeTask) and the result-meta reader (what AsyncResult reads from a
// backend, then its exception decoding). 100,000 generated inputs each; nothing may throw out of them
// but the documented error types. Seeds that once failed are kept below and run first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import fc from 'fast-check';
import { decodeEnvelope, encodeEnvelope } from '../../src/protocol/envelope.js';
import { decodeTask, encodeTaskV2, type Message } from '../../src/protocol/message.js';
import { dumps } from '../../src/protocol/json.js';
import { packb } from '../../src/protocol/msgpack.js';
import { ContentDisallowed, DecodeError, InvalidTaskError } from '../../src/protocol/errors.js';
import { readMeta, resultCodec } from '../../src/backends/encode.js';
import { decodeException } from '../../src/app/exceptions.js';
import { createSettings } from '../../src/app/settings.js';

const RUNS = Number(process.env.CELERIAC_FUZZ_RUNS ?? 100_000);

/**
 * Inputs that once failed, kept as regression cases (with the fast-check seed that found each); they
 * run before the generated ones.
 */
const jsonMessage = (headers: Record<string, unknown>, body: string): Message => ({ headers, properties: {}, body: Buffer.from(body), contentType: 'application/json', contentEncoding: 'utf-8' });
const MESSAGE_REGRESSIONS: [Message, boolean][] = [
  // seed -422082629: kwargs a big integer; JSON.stringify(bigint) threw a TypeError while wording the InvalidTaskError
  [jsonMessage({}, '{"task": "", "id": [false], "args": [], "kwargs": 9007199254740992, "eta": ""}'), false],
  // seed 2062563750: an id header with no text form; String() threw a TypeError
  [jsonMessage({ task: '\u0000NaN', id: Object.create(null) }, '{}'), false],
];
const META_REGRESSIONS: [string | Buffer, number][] = [
  // seed 428341076: exc_module {"toString": null}; String() threw a TypeError in decodeException
  ['{"status": "SUCCESS", "result": {"exc_type": {}, "exc_message": {}, "exc_module": {"toString": null}}}', 0],
];

const TAGS = ['datetime', 'date', 'time', 'decimal', 'uuid', 'bytes', 'base64', 'widget'];
const tagged = fc.record({
  __type__: fc.constantFrom(...TAGS),
  __value__: fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.record({ hex: fc.string() }), fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.constant('2024-02-30T25:00:00')),
});

/** Values a peer might put in a body or a header: JSON, big integers, odd floats, tag-like dicts. */
const { value } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.jsonValue({ maxDepth: 2 }),
    fc.bigInt(),
    fc.double(),
    fc.constantFrom('\u0000NaN', 'NaN', '2024-01-02T03:04:05', '', '__proto__'),
    tagged,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor', 'task', 'args')), tie('value'), { maxKeys: 4 }),
  ),
}));

const HEADER_NAMES = ['task', 'id', 'eta', 'expires', 'retries', 'timelimit', 'group', 'group_index', 'root_id', 'parent_id', 'argsrepr', 'kwargsrepr', 'origin', 'stamps', 'stamped_headers', 'shadow', 'ignore_result', 'compression', 'lang'];
const headers = fc.dictionary(fc.oneof(fc.constantFrom(...HEADER_NAMES), fc.string()), value, { maxKeys: 8 });
const CONTENT_TYPES = ['application/json', 'application/x-msgpack', 'application/x-yaml', 'application/x-python-serialize', 'text/plain', ''];

/** A body: a plausible [args, kwargs, embed] or v1 dict, any value, or raw bytes, in JSON or msgpack. */
const bodyValue = fc.oneof(
  fc.tuple(fc.array(value, { maxLength: 3 }), value, value).map((t) => [...t]),
  fc.record({ task: fc.string(), id: value, args: value, kwargs: value, eta: value }),
  value,
);
function encodeBody(v: unknown, how: number): Buffer {
  try {
    if (how === 0) return Buffer.from(dumps(v, { tags: false }));
    if (how === 1) return packb(v);
  } catch {
    // a value our encoders refuse: send its bytes some other way
  }
  return Buffer.from('neither json nor msgpack');
}
const message = fc.record({
  headers,
  body: fc.oneof(fc.tuple(bodyValue, fc.integer({ min: 0, max: 2 })).map(([v, how]) => encodeBody(v, how)), fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b))),
  contentType: fc.constantFrom(...CONTENT_TYPES),
  compress: fc.constantFrom('none', 'zlib', 'garbage'),
}).map(({ headers: h, body, contentType, compress }): Message => {
  const out: Message = { headers: { ...h }, properties: {}, body, contentType, contentEncoding: 'utf-8' };
  if (compress === 'zlib') { out.headers.compression = 'application/x-gzip'; out.body = deflateSync(body); }
  if (compress === 'garbage') out.headers.compression = 'application/x-gzip';
  return out;
});

/** Envelope texts: random strings, JSON, real envelopes, and real envelopes with bytes changed. */
const valid = encodeEnvelope(encodeTaskV2('t', [1, 'a', 2n ** 70n], { k: null }), { exchange: '', routing_key: 'celery' }, 'tag');
const envelopeText = fc.oneof(
  fc.string(),
  fc.json(),
  value.map((v) => { try { return dumps(v, { tags: false }); } catch { return '{}'; } }),
  message.map((m) => { try { return encodeEnvelope(m, { exchange: '', routing_key: 'q' }); } catch { return valid; } }),
  fc.tuple(fc.nat(valid.length - 1), fc.string({ minLength: 1, maxLength: 3 })).map(([i, s]) => valid.slice(0, i) + s + valid.slice(i + 1)),
);

function allowed(err: unknown, ...types: (new (...a: never[]) => Error)[]): void {
  if (!types.some((type) => err instanceof type)) throw err;
}

function decodeAny(m: Message, exactFloats: boolean): void {
  try {
    const req = decodeTask(m, { accept: ['json', 'msgpack'], exactFloats });
    assert.equal(typeof req.id, 'string');
    assert.ok(Array.isArray(req.args));
  } catch (err) {
    allowed(err, DecodeError, InvalidTaskError, ContentDisallowed);
  }
}

test(`message decoder: ${RUNS} envelopes and ${RUNS} AMQP-style messages throw only DecodeError, InvalidTaskError or ContentDisallowed`, { timeout: 600_000 }, () => {
  const envelopes = fc.property(envelopeText, fc.boolean(), (text, exact) => {
    let m: Message;
    try {
      m = decodeEnvelope(text).message;
    } catch (err) {
      allowed(err, DecodeError);
      return;
    }
    decodeAny(m, exact);
  });
  const direct = fc.property(message, fc.boolean(), (m, exact) => decodeAny(m, exact));
  fc.assert(envelopes, { numRuns: RUNS });
  fc.assert(direct, { numRuns: RUNS, examples: MESSAGE_REGRESSIONS });
});

const metaLike = fc.record({
  status: fc.oneof(fc.constantFrom('SUCCESS', 'FAILURE', 'REVOKED', 'RETRY', 'PENDING'), value),
  result: fc.oneof(value, fc.record({ exc_type: value, exc_message: value, exc_module: value })),
  traceback: value,
  task_id: value,
}, { requiredKeys: [] });

test(`result-meta reader: ${RUNS} stored metas throw only DecodeError or ContentDisallowed, and their exceptions decode`, { timeout: 600_000 }, () => {
  const codecs = [resultCodec(createSettings({ accept_content: ['json', 'msgpack'] })), resultCodec(createSettings({}))];
  const data = fc.oneof(
    fc.string(),
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
    fc.tuple(fc.oneof(metaLike, value), fc.boolean()).map(([m, asMsgpack]) => {
      try {
        return asMsgpack ? packb(m) : dumps(m, { tags: false });
      } catch {
        return '{"status": "SUCCESS"}';
      }
    }),
  );
  const reader = fc.property(data, fc.nat(1), (d, c) => {
    try {
      const meta = readMeta(d, codecs[c]!, 'fuzz-id');
      assert.equal(typeof meta.status, 'string');
      const err = decodeException(meta.result, typeof meta.traceback === 'string' ? meta.traceback : null);
      assert.equal(typeof err.message, 'string');
      assert.equal(typeof err.name, 'string');
    } catch (err) {
      allowed(err, DecodeError, ContentDisallowed);
    }
  });
  fc.assert(reader, { numRuns: RUNS, examples: META_REGRESSIONS });
});
