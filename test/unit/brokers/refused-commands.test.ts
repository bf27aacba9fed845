// How long a Redis client resends a command the server refuses (READONLY, NOREPLICAS, LOADING, MASTERDOWN):
// pure logic, with a clock the test holds. The same against a real server: test/integration/redis-connection.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refusedCommandPolicy, REFUSED_RESEND_MS } from '../../../src/brokers/redis/connection.js';

test('refused commands are resent for REFUSED_RESEND_MS, then failed until the refusals stop; other errors are not retried', () => {
  let now = 5_000_000;
  const policy = refusedCommandPolicy(REFUSED_RESEND_MS, () => now);
  assert.equal(policy(new Error('ERR wrong number of arguments')), false);
  assert.equal(policy(new Error('NOREPLICAS Not enough good replicas to write.')), 2);
  // A streak of refusals ~2 s apart (reconnect delays) is one outage.
  for (let t = 2000; t < REFUSED_RESEND_MS; t += 2000) {
    now += 2000;
    assert.equal(policy(new Error('READONLY You can\'t write against a read only replica.')), 2, `at ${t} ms`);
  }
  now += 2000;
  assert.equal(policy(new Error('NOREPLICAS Not enough good replicas to write.')), 1, 'still refused after the limit: fail');
  now += 2000;
  assert.equal(policy(new Error('LOADING Redis is loading the dataset in memory')), 1);
  // A quiet spell ends the outage: the next refusal starts a new one, resent again.
  now += 30_000;
  assert.equal(policy(new Error('MASTERDOWN Link with MASTER is down')), 2);
});
