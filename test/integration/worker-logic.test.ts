// Pure logic of rate limits, retry backoff and the pidbox filter (no broker needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRate, TokenBucket } from '../../src/worker/rate-limit.js';
import { autoretryOptions, backoffInterval } from '../../src/worker/retry-policy.js';
import { decodeControlRequest, encodeControlRequest } from '../../src/control/pidbox.js';
import { isForNode } from '../../src/control/worker-control.js';

test('parseRate follows Celery: n/s, n/m, n/h, bare numbers per second', () => {
  assert.equal(parseRate('10/s'), 10);
  assert.equal(parseRate('120/m'), 2);
  assert.equal(parseRate('3600/h'), 1);
  assert.equal(parseRate('4'), 4);
  assert.equal(parseRate(null), 0);
  assert.throws(() => parseRate('10/d'), /Invalid rate limit/);
});

test('TokenBucket: capacity 1, refills at the rate', () => {
  let now = 0;
  const b = new TokenBucket(2, 1, () => now);
  assert.equal(b.take(), true);
  assert.equal(b.take(), false);
  assert.equal(Math.round(b.expectedWait()), 500);
  now = 500;
  assert.equal(b.take(), true);
});

test('backoff: factor * 2**retries, capped, full jitter within [0, countdown]', () => {
  assert.deepEqual([0, 1, 2, 3].map((r) => backoffInterval(1, r, 600, false)), [1, 2, 4, 8]);
  assert.equal(backoffInterval(3, 10, 600, false), 600);
  assert.equal(backoffInterval(1, 3, 600, true, () => 0.999), 8);
  assert.equal(backoffInterval(1, 3, 600, true, () => 0), 0);
});

test('autoretry matches by class or by name, and respects dont_autoretry_for', () => {
  class Boom extends Error { override name = 'Boom'; }
  assert.ok(autoretryOptions({ autoretry_for: [Boom] }, new Boom('x'), 0));
  assert.ok(autoretryOptions({ autoretry_for: ['Boom'] }, new Boom('x'), 0));
  assert.equal(autoretryOptions({ autoretry_for: [Boom] }, new TypeError('x'), 0), null);
  assert.equal(autoretryOptions({ autoretry_for: [Error], dont_autoretry_for: ['TypeError'] }, new TypeError('x'), 0), null);
  assert.equal(autoretryOptions({ autoretry_for: [Boom], retry_backoff: 2, retry_jitter: false }, new Boom('x'), 2)!.countdown, 8);
});

test('pidbox request: kombu body and headers; destination and glob filters', () => {
  const { message, ticket } = encodeControlRequest('revoke', { task_id: 'a', terminate: false, signal: 'SIGTERM' });
  assert.equal(ticket, null);
  assert.equal(message.body.toString(), '{"method": "revoke", "arguments": {"task_id": "a", "terminate": false, "signal": "SIGTERM"}, "destination": null, "pattern": null, "matcher": null}');
  assert.deepEqual(Object.keys(message.headers), ['clock', 'expires']);
  const req = decodeControlRequest(message)!;
  assert.equal(isForNode(req, 'w1@h'), true);
  assert.equal(isForNode({ ...req, destination: ['w2@h'] }, 'w1@h'), false);
  assert.equal(isForNode({ ...req, pattern: 'w*@h', matcher: 'glob' }, 'w1@h'), true);
  assert.equal(isForNode({ ...req, pattern: 'x*', matcher: 'glob' }, 'w1@h'), false);
});
