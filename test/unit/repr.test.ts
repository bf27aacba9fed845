// Python's repr for argsrepr/kwargsrepr and log lines: bounded (a huge value costs its first kilobyte),
// identical to the full repr cut at 1024 characters, and safe on values JSON can't express.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { repr, reprArgs, truncateRepr } from '../../src/protocol/repr.js';
import { encodeTaskV2 } from '../../src/protocol/message.js';

test('repr matches Python for common values', () => {
  assert.equal(reprArgs([2, 2]), '(2, 2)');
  assert.equal(reprArgs([1]), '(1,)');
  assert.equal(reprArgs([]), '()');
  assert.equal(repr({ y: 'é', n: null, t: true, f: 1.5, l: [1, 'a'] }), "{'y': 'é', 'n': None, 't': True, 'f': 1.5, 'l': [1, 'a']}");
  assert.equal(repr("it's"), '"it\'s"');
  assert.equal(repr('a\nb\x01'), "'a\\nb\\x01'");
  assert.equal(repr([Number.NaN, Infinity, -Infinity]), '[nan, inf, -inf]');
});

test('an invalid Date has a repr instead of throwing RangeError', () => {
  assert.equal(repr(new Date('garbage')), '<Invalid Date>');
  assert.equal(repr({ when: new Date('garbage') }), "{'when': <Invalid Date>}");
  assert.equal(repr(new Date(0)), "datetime.datetime.fromisoformat('1970-01-01T00:00:00.000Z')");
});

test('long values are cut at 1024 characters exactly as truncating the full repr would', () => {
  const values: unknown[] = [
    'x'.repeat(5000),
    Array.from({ length: 3000 }, (_, i) => i),
    Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`key${i}`, 'v'.repeat(i % 7)])),
    [['nested', { deep: 'q'.repeat(2000) }]],
    "it's \n".repeat(400),
  ];
  for (const v of values) {
    const out = repr(v);
    assert.equal(out.length, 1024);
    assert.ok(out.endsWith('...'));
    assert.equal(out, truncateRepr(fullRepr(v)));
  }
  assert.equal(reprArgs(['y'.repeat(3000)]).length, 1024);
  assert.equal(repr('short', 3), '...');
});

test('a 130 MB argument is represented in bounded time, and its message is built', () => {
  const big = 'a'.repeat(130 * 1024 * 1024);
  const huge = { items: Array.from({ length: 2_000_000 }, (_, i) => i) };
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 100; i++) {
    assert.equal(reprArgs([big]).length, 1024);
    assert.equal(repr(huge).length, 1024);
  }
  const perCallMs = Number(process.hrtime.bigint() - t0) / 1e6 / 200;
  // Concatenating the whole value takes seconds; bounded it is far under a millisecond (generous margin).
  assert.ok(perCallMs < 250, `repr of a 130 MB value took ${perCallMs.toFixed(2)} ms a call`);
  const m = encodeTaskV2('tasks.big', [big], {}, { id: 'big' });
  assert.equal((m.headers.argsrepr as string).length, 1024);
  assert.ok((m.headers.argsrepr as string).startsWith("('aaaa"));
});

/** The unbounded repr, written independently, to compare against. */
function fullRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') {
    const q = v.includes("'") && !v.includes('"') ? '"' : "'";
    return q + v.replace(/\\/g, '\\\\').replace(new RegExp(q, 'g'), '\\' + q).replace(/\n/g, '\\n') + q;
  }
  if (Array.isArray(v)) return '[' + v.map(fullRepr).join(', ') + ']';
  return '{' + Object.entries(v as object).map(([k, x]) => fullRepr(k) + ': ' + fullRepr(x)).join(', ') + '}';
}
