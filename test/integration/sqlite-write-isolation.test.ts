// One bad SQLite write fails alone: the unrelated writes batched with it in the same turn commit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase } from '../../src/brokers/sqlite/database.js';
import { parseSqliteUrl } from '../../src/brokers/sqlite/url.js';
import { createBackend } from '../../src/backends/sqlite.js';
import { createBroker } from '../../src/brokers/sqlite/index.js';
import { ctx, tempDb, testMessage } from './sqlite-fixtures.js';

test('writes queued in one turn: the one that throws is rejected, the others commit', async () => {
  const { url } = tempDb();
  const db = await openDatabase(parseSqliteUrl(url));
  await db.ensureSchema('isolation-test', 'CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');
  const writes = [
    db.write((d) => d.prepare('INSERT INTO t (k, v) VALUES (?, ?)').run('a', 1).changes),
    db.write((d) => {
      d.prepare('INSERT INTO t (k, v) VALUES (?, ?)').run('half', 1); // undone with the failure
      return d.prepare('INSERT INTO t (k, v) VALUES (?, ?)').run('b', null).changes; // NOT NULL fails
    }),
    db.write(() => { throw new Error('a write whose own code throws'); }),
    db.write((d) => d.prepare('INSERT INTO t (k, v) VALUES (?, ?)').run('c', 3).changes),
  ];
  const outcomes = await Promise.allSettled(writes);
  assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'rejected', 'rejected', 'fulfilled']);
  assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /NOT NULL/);
  const rows = db.read((d) => d.prepare('SELECT k FROM t ORDER BY k').all() as { k: string }[]).map((r) => r.k);
  assert.deepEqual(rows, ['a', 'c']);
  await db.release();
});

test('a result store and a publish batched with a failing write both commit', async () => {
  const { url } = tempDb();
  const backend = createBackend(url, ctx());
  await backend.connect();
  const broker = createBroker(url, ctx());
  await broker.connect();
  const db = await openDatabase(parseSqliteUrl(url));
  const [bad, stored, published] = await Promise.allSettled([
    db.write(() => { throw new Error('unrelated failure'); }),
    backend.store({ status: 'SUCCESS', result: 7, traceback: null, children: [], date_done: null, task_id: 'iso-1' }),
    broker.publish(testMessage('iso-m'), { exchange: '', routingKey: 'celery' }),
  ]);
  assert.equal(bad.status, 'rejected');
  assert.equal(stored.status, 'fulfilled');
  assert.equal(published.status, 'fulfilled');
  assert.equal((await backend.get('iso-1')).result, 7);
  assert.equal(await broker.queueLength('celery'), 1);
  await db.release();
  await backend.close();
  await broker.close();
});
