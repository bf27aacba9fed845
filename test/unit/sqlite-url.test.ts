// Pure pieces of the embedded transport: URL parsing, SQLITE_BUSY backoff and retry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSqliteUrl } from '../../src/brokers/sqlite/url.js';
import { busyBackoff, isBusyError, retryBusy } from '../../src/brokers/sqlite/busy.js';
import { brokerOptionsFrom } from '../../src/brokers/sqlite/broker.js';
import { createSettings } from '../../src/app/settings.js';

test('three slashes are relative to the working directory, four are absolute', () => {
  assert.deepEqual(parseSqliteUrl('sqlite:///celeriac.db', '/srv/app'), { file: '/srv/app/celeriac.db', synchronous: 'normal' });
  assert.equal(parseSqliteUrl('sqlite:///data/q.db', '/srv/app').file, '/srv/app/data/q.db');
  assert.equal(parseSqliteUrl('sqlite:////var/lib/q.db', '/srv/app').file, '/var/lib/q.db');
  assert.equal(parseSqliteUrl('sqlite:////tmp/a%20b.db', '/').file, '/tmp/a b.db');
  assert.equal(parseSqliteUrl('sqlite:///q.db?synchronous=FULL', '/x').synchronous, 'full');
});

test('bad SQLite URLs are refused with what to write instead', () => {
  assert.throws(() => parseSqliteUrl('sqlite://q.db'), /sqlite:\/\/\/q\.db/);
  assert.throws(() => parseSqliteUrl('sqlite:///:memory:'), /memory:\/\//);
  assert.throws(() => parseSqliteUrl('sqlite:///q.db?synchronous=sometimes'), /off, normal, full or extra/);
  assert.throws(() => parseSqliteUrl('redis://x'), /sqlite:\/\/\/relative/);
});

test('busy backoff grows from ~2 ms to a 200 ms ceiling and is jittered in its upper half', () => {
  assert.equal(busyBackoff(0, () => 0), 1);
  assert.equal(busyBackoff(0, () => 1), 2);
  assert.equal(busyBackoff(3, () => 0), 8);
  assert.equal(busyBackoff(30, () => 1), 200);
  assert.equal(busyBackoff(30, () => 0), 100);
});

test('retryBusy retries SQLITE_BUSY until success, rethrows other errors at once, and gives up after the deadline', async () => {
  const busy = Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
  assert.ok(isBusyError(busy));
  assert.ok(isBusyError({ code: 'SQLITE_BUSY_SNAPSHOT' }));
  assert.ok(!isBusyError(new Error('x')));
  let calls = 0;
  const retries: number[] = [];
  const v = await retryBusy(() => { if (++calls < 4) throw busy; return 'done'; }, { deadlineMs: 10_000, onRetry: (a) => retries.push(a), sleep: async () => {} });
  assert.equal(v, 'done');
  assert.deepEqual(retries, [0, 1, 2]);
  let other = 0;
  await assert.rejects(retryBusy(() => { other++; throw new Error('constraint'); }, { deadlineMs: 10_000, sleep: async () => {} }), /constraint/);
  assert.equal(other, 1);
  await assert.rejects(retryBusy(() => { throw busy; }, { deadlineMs: 30 }), /database is locked/);
});

test('visibility_timeout is the lease and polling_interval the longest idle poll; defaults 30 s and 250 ms', () => {
  assert.deepEqual(brokerOptionsFrom(createSettings({})), { leaseMs: 30_000, minPollMs: 20, maxPollMs: 250 });
  const o = brokerOptionsFrom(createSettings({ brokerTransportOptions: { visibility_timeout: 5, polling_interval: 1 } }));
  assert.equal(o.leaseMs, 5000);
  assert.equal(o.maxPollMs, 1000);
});
