// The embedded broker on real SQLite files: queue semantics within one process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { createBroker } from '../../src/brokers/sqlite/index.js';
import type { SqliteBroker } from '../../src/brokers/sqlite/broker.js';
import type { SqliteConsumer } from '../../src/brokers/sqlite/consumer.js';
import type { Delivery } from '../../src/brokers/types.js';
import { eventually, sleep } from '../helpers/services.js';
import { captureLogger, ctx, tempDb, testMessage } from './sqlite-fixtures.js';

async function open(url: string, transportOptions: Record<string, unknown> = {}, log = captureLogger()): Promise<SqliteBroker> {
  const b = createBroker(url, ctx(transportOptions, {}, log)) as SqliteBroker;
  await b.connect();
  return b;
}

const idOf = (d: Delivery) => String(d.message.headers.id);

test('connect creates the parent directory and a WAL database; messages survive a reopen', async () => {
  const { file, url } = tempDb();
  assert.equal(fs.existsSync(path.dirname(file)), false);
  const b = await open(url);
  await b.publish(testMessage('m1'), { exchange: '', routingKey: 'celery' });
  await b.close();
  const raw = new BetterSqlite3(file, { readonly: true });
  assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
  raw.close();
  const again = await open(url);
  assert.equal(await again.queueLength('celery'), 1);
  const got: Delivery[] = [];
  await again.consume(['celery'], (d) => got.push(d), { prefetch: 1 });
  await eventually(() => got.length === 1, 'the message after reopening');
  assert.equal(idOf(got[0]!), 'm1');
  assert.deepEqual(JSON.parse(got[0]!.message.body.toString())[0], ['m1']);
  assert.equal(got[0]!.message.properties.correlation_id, 'm1');
  assert.equal(got[0]!.redelivered, false);
  await got[0]!.ack();
  assert.equal(await again.queueLength('celery'), 0);
  await again.close();
});

test('prefetch credit: no more than prefetch unacked deliveries; an ack frees one slot; setPrefetch raises it', async () => {
  const { url } = tempDb();
  const b = await open(url);
  for (let i = 0; i < 10; i++) await b.publish(testMessage(`m${i}`), { exchange: '', routingKey: 'q' });
  const got: Delivery[] = [];
  const c = await b.consume(['q'], (d) => got.push(d), { prefetch: 3 });
  await eventually(() => got.length === 3, '3 deliveries');
  await sleep(300);
  assert.equal(got.length, 3, 'must not exceed the prefetch credit');
  assert.deepEqual(got.map(idOf), ['m0', 'm1', 'm2'], 'FIFO within a priority');
  await got[0]!.ack();
  await eventually(() => got.length === 4, 'one more after an ack');
  await sleep(200);
  assert.equal(got.length, 4);
  c.setPrefetch(6);
  await eventually(() => got.length === 7, 'three more after setPrefetch(6)');
  assert.equal(await b.queueLength('q'), 3, 'held deliveries are not counted as waiting');
  await b.close();
});

test('reject(false) drops, reject(true) requeues marked redelivered; ack and reject are idempotent', async () => {
  const { url } = tempDb();
  const log = captureLogger();
  const b = await open(url, {}, log);
  await b.publish(testMessage('drop'), { exchange: '', routingKey: 'q' });
  await b.publish(testMessage('again'), { exchange: '', routingKey: 'q' });
  const got: Delivery[] = [];
  await b.consume(['q'], (d) => got.push(d), { prefetch: 2 });
  await eventually(() => got.length === 2, 'two deliveries');
  await got[0]!.reject(false);
  await got[0]!.reject(false);
  await got[1]!.reject(true);
  await got[1]!.ack(); // already settled: must not delete the requeued row
  await eventually(() => got.length === 3, 'the requeued message again');
  assert.equal(idOf(got[2]!), 'again');
  assert.equal(got[2]!.redelivered, true);
  await got[2]!.ack();
  assert.equal(await b.queueLength('q'), 0);
  assert.equal(log.lines.filter((l) => l.includes('possible_duplicate')).length, 0);
  await b.close();
});

test('priority: a higher priority property is delivered first, FIFO within one priority', async () => {
  const { url } = tempDb();
  const b = await open(url);
  const plan: [string, number | undefined][] = [['a0', 0], ['b5', 5], ['c', undefined], ['d9', 9], ['e5', 5], ['f0', 0]];
  for (const [id, p] of plan) await b.publish(testMessage(id, p), { exchange: '', routingKey: 'q' });
  const order: string[] = [];
  await b.consume(['q'], (d) => { order.push(idOf(d)); void d.ack(); }, { prefetch: 1 });
  await eventually(() => order.length === plan.length, 'all messages');
  assert.deepEqual(order, ['d9', 'b5', 'e5', 'a0', 'c', 'f0']);
  await b.close();
});

test('purge removes waiting messages only; queues are separate; consume takes several queues', async () => {
  const { url } = tempDb();
  const b = await open(url);
  for (let i = 0; i < 5; i++) await b.publish(testMessage(`a${i}`), { exchange: '', routingKey: 'a' });
  for (let i = 0; i < 4; i++) await b.publish(testMessage(`b${i}`), { exchange: 'celery', routingKey: 'b' });
  const held: Delivery[] = [];
  const first = await b.consume(['a'], (d) => held.push(d), { prefetch: 2 });
  await eventually(() => held.length === 2, 'two held');
  await first.stop();
  assert.equal(await b.purge('a'), 3);
  assert.equal(await b.queueLength('a'), 0);
  assert.equal(await b.queueLength('b'), 4);
  await held[0]!.ack();
  await held[1]!.reject(true);
  assert.equal(await b.queueLength('a'), 1, 'a held message survives purge and can be requeued');
  const both: Delivery[] = [];
  await b.consume(['b', 'a'], (d) => { both.push(d); void d.ack(); }, { prefetch: 10 });
  await eventually(() => both.length === 5, 'messages from both queues');
  assert.deepEqual(new Set(both.map((d) => d.queue)), new Set(['a', 'b']));
  assert.equal(both.find((d) => d.queue === 'b')!.exchange, 'celery');
  await b.close();
});

test('restoreUnacked puts unstarted deliveries back at once, marked redelivered', async () => {
  const { url } = tempDb();
  const log = captureLogger();
  const b = await open(url, {}, log);
  for (let i = 0; i < 8; i++) await b.publish(testMessage(`m${i}`), { exchange: '', routingKey: 'q' });
  const got: Delivery[] = [];
  const c = await b.consume(['q'], (d) => got.push(d), { prefetch: 5 });
  await eventually(() => got.length === 5, 'five held');
  await got[0]!.ack();
  await eventually(() => got.length === 6, 'credit refilled');
  await c.stop();
  assert.equal(await c.restoreUnacked(), 5);
  assert.equal(await b.queueLength('q'), 7);
  assert.ok(log.lines.some((l) => l.includes('Restoring 5 unacknowledged message(s)')));
  await got[1]!.ack(); // restored before: the late ack must not delete the row
  assert.equal(await b.queueLength('q'), 7);
  const again: Delivery[] = [];
  const b2 = await open(url);
  await b2.consume(['q'], (d) => { again.push(d); void d.ack(); }, { prefetch: 10 });
  await eventually(() => again.length === 7, 'all seven after the restore');
  assert.deepEqual(again.map(idOf), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7'], 'restored messages keep their place');
  assert.deepEqual(again.map((d) => d.redelivered), [true, true, true, true, true, false, false]);
  await b2.close();
  await b.close();
});

test('close() releases held deliveries so another consumer gets them without waiting for the lease', async () => {
  const { url } = tempDb();
  const b = await open(url, { visibility_timeout: 60 });
  for (let i = 0; i < 3; i++) await b.publish(testMessage(`m${i}`), { exchange: '', routingKey: 'q' });
  const got: Delivery[] = [];
  await b.consume(['q'], (d) => got.push(d), { prefetch: 3 });
  await eventually(() => got.length === 3, 'three held');
  await b.close();
  const b2 = await open(url, { visibility_timeout: 60 });
  assert.equal(await b2.queueLength('q'), 3);
  await b2.close();
});

test('lease renewal keeps a held message from being redelivered past its lease', async () => {
  const { url } = tempDb();
  const log = captureLogger();
  const holder = await open(url, { visibility_timeout: 0.6 }, log);
  const other = await open(url, { visibility_timeout: 0.6 });
  await holder.publish(testMessage('long'), { exchange: '', routingKey: 'q' });
  const held: Delivery[] = [];
  const hc = (await holder.consume(['q'], (d) => held.push(d), { prefetch: 1 })) as SqliteConsumer;
  await eventually(() => held.length === 1, 'the holder gets it');
  const stolen: Delivery[] = [];
  await other.consume(['q'], (d) => stolen.push(d), { prefetch: 1 });
  await sleep(3000); // five leases
  assert.equal(stolen.length, 0, 'redelivered while its holder was alive');
  assert.ok(hc.stats.renewals >= 5, `renewed ${hc.stats.renewals} times`);
  await held[0]!.ack();
  assert.equal(hc.stats.fencedFailures, 0);
  assert.equal(hc.stats.acked, 1);
  assert.equal(log.lines.filter((l) => l.includes('possible_duplicate')).length, 0);
  await other.close();
  await holder.close();
});

test('SQLITE_BUSY is retried in the application: a publish waits out a writer holding the lock', async () => {
  const { file, url } = tempDb();
  const b = await open(url);
  const locker = new BetterSqlite3(file);
  locker.exec('BEGIN IMMEDIATE');
  setTimeout(() => locker.exec('COMMIT'), 700); // seven times SQLite's own busy_timeout
  const t0 = Date.now();
  await b.publish(testMessage('m'), { exchange: '', routingKey: 'q' });
  assert.ok(Date.now() - t0 >= 600, 'the publish could not have committed while the lock was held');
  assert.ok(b.database.stats.busyRetries > 0, 'retried in the application');
  assert.equal(await b.queueLength('q'), 1);
  locker.close();
  await b.close();
});

test('a URL with a host part or no file is refused with the right form in the message', () => {
  assert.throws(() => createBroker('sqlite://celeriac.db', ctx()), /sqlite:\/\/\/celeriac\.db/);
  assert.throws(() => createBroker('sqlite://', ctx()), /names no file/);
});
