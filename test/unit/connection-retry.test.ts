// The retry count every consumer keeps (broker_connection_retry, broker_connection_max_retries): pure
// logic, with a clock and a log the test holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConsumerRetries, reconnectDelay } from '../../src/brokers/connection-retry.js';
import { createLogger } from '../../src/app/log.js';

function retries(settings: { broker_connection_retry?: boolean; broker_connection_max_retries?: number | null }) {
  let now = 1_000_000;
  const lines: string[] = [];
  const failures: Error[] = [];
  let stopped = 0;
  const r = new ConsumerRetries({
    settings, where: 'redis://h:6379/0', logger: createLogger('warning', (l) => void lines.push(l)),
    onFailure: (e) => void failures.push(e), stop: () => void stopped++, now: () => now,
  });
  return { r, lines, failures, stopped: () => stopped, advance: (ms: number) => void (now += ms) };
}

test('attempts count at most once per reconnect delay; after max retries the owner is told once, with the setting named', () => {
  const t = retries({ broker_connection_max_retries: 3 });
  assert.equal(t.r.failed('connect ECONNREFUSED', 'reconnecting'), false);
  assert.equal(t.r.failed('connect ECONNREFUSED', 'reconnecting'), false, 'a retry sooner than the delay does not count');
  assert.equal(t.r.count, 1);
  for (let i = 1; i <= 2; i++) {
    t.advance(reconnectDelay(i - 1));
    assert.equal(t.r.failed('connect ECONNREFUSED', 'reconnecting'), false);
  }
  assert.equal(t.r.count, 3);
  t.advance(reconnectDelay(2));
  assert.equal(t.r.failed('connect ECONNREFUSED', 'reconnecting'), true);
  assert.equal(t.r.failed('connect ECONNREFUSED', 'reconnecting'), true, 'stays given up');
  assert.equal(t.stopped(), 1);
  assert.equal(t.failures.length, 1);
  assert.equal(t.failures[0]!.message, 'Gave up consuming from redis://h:6379/0 after 3 retries (broker_connection_max_retries=3): connect ECONNREFUSED. Start the worker again once the broker answers, or raise broker_connection_max_retries (0 retries forever).');
  assert.equal(t.lines.length, 1, `the same failure is logged once:\n${t.lines.join('')}`);
  assert.match(t.lines[0]!, /WARNING.*Cannot consume from redis:\/\/h:6379\/0: connect ECONNREFUSED\. Reconnecting \(1\/3\); the same error is not logged again\./);
});

test('broker_connection_retry=False gives up at the first loss, with Celery\'s words', () => {
  const t = retries({ broker_connection_retry: false });
  assert.equal(t.r.failed('the connection was lost', ''), true);
  assert.match(t.failures[0]!.message, /^Retrying to re-establish a connection to the message broker after a connection loss has been disabled \(app\.conf\.broker_connection_retry=False\): the connection was lost\. Shutting down\.\.\.$/);
});

test('0 or null retries forever; a success starts the count over and a changed error is logged again', () => {
  for (const max of [0, null]) {
    const t = retries({ broker_connection_max_retries: max });
    for (let i = 0; i < 500; i++) {
      t.advance(5000);
      assert.equal(t.r.failed(i < 250 ? 'down' : 'NOPERM', 'retrying'), false);
    }
    assert.equal(t.r.progress(), '(500/∞)');
    assert.equal(t.lines.length, 2, 'one line per distinct failure');
    t.r.succeeded();
    assert.equal(t.r.count, 0);
    t.r.failed('down', 'retrying');
    assert.equal(t.lines.filter((l) => l.includes('Cannot consume')).length, 3, 'after a success the same failure is said again');
  }
});
