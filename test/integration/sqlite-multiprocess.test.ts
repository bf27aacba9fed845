// The embedded broker shared by several real processes on one database file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createBroker } from '../../src/brokers/sqlite/index.js';
import type { SqliteBroker } from '../../src/brokers/sqlite/broker.js';
import type { SqliteConsumer } from '../../src/brokers/sqlite/consumer.js';
import type { Delivery } from '../../src/brokers/types.js';
import { eventually, sleep } from '../helpers/services.js';
import { captureLogger, ctx, readLedger, spawnChild, tempDb, testMessage, type Child } from './sqlite-fixtures.js';

async function stopChild(c: Child): Promise<Record<string, number>> {
  c.proc.kill('SIGTERM');
  const code = await c.exited;
  assert.equal(code, 0, `child ${c.proc.pid} exited with ${code}; stderr: ${c.stderr}`);
  return JSON.parse(c.stdout.find((l) => l.startsWith('{')) ?? '{}') as Record<string, number>;
}

test('four processes producing and consuming on one file: every message claimed exactly once, none dies of SQLITE_BUSY', async () => {
  const { dir, url } = tempDb();
  const PER_CHILD = 1500;
  const children = [0, 1, 2, 3].map((i) =>
    spawnChild(['consume', url, 'q', '8', path.join(dir, `ledger-${i}.txt`), String(PER_CHILD)]),
  );
  const total = 4 * PER_CHILD;
  const allIds = () => children.flatMap((_, i) => readLedger(path.join(dir, `ledger-${i}.txt`)));
  await eventually(() => allIds().length >= total, `${total} claims`, 60_000, 200);
  await sleep(500); // any duplicate claim would show up now
  const stats = await Promise.all(children.map(stopChild));
  const ids = allIds();
  const unique = new Set(ids);
  assert.equal(unique.size, total, 'every published message was claimed');
  assert.equal(ids.length, total, `duplicates: ${ids.length - unique.size}`);
  for (const c of children) for (let j = 0; j < PER_CHILD; j++) assert.ok(unique.has(`${c.proc.pid}-${j}`));
  assert.equal(stats.reduce((n, s) => n + (s.fencedFailures ?? 0), 0), 0);
  assert.ok(stats.every((s) => s.claimed > 0), `every process got work: ${JSON.stringify(stats.map((s) => s.claimed))}`);
  const b = createBroker(url, ctx()) as SqliteBroker;
  await b.connect();
  assert.equal(await b.queueLength('q'), 0);
  await b.close();
  console.log(`claims per process ${stats.map((s) => s.claimed).join('/')}, busy retries ${stats.map((s) => s.busyRetries).join('/')}`);
});

test('a SIGKILLed holder: its messages stay held while the lease runs, then come back marked redelivered', async () => {
  const { dir, url } = tempDb();
  const b = createBroker(url, ctx({ visibility_timeout: 1 })) as SqliteBroker;
  await b.connect();
  for (let i = 0; i < 8; i++) await b.publish(testMessage(`m${i}`), { exchange: '', routingKey: 'q' });
  const ledger = path.join(dir, 'holder.txt');
  const holder = spawnChild(['hold', url, 'q', '5', ledger], { CELERIAC_TEST_LEASE_S: '1.5' });
  await holder.waitFor('ready');
  await eventually(() => readLedger(ledger).length === 5, 'the holder claims five');
  assert.equal(await b.queueLength('q'), 3);
  await sleep(2000); // longer than the lease: renewal must keep them held
  assert.equal(await b.queueLength('q'), 3, 'a live holder keeps its messages');
  holder.proc.kill('SIGKILL');
  await holder.exited;
  const killedAt = Date.now();
  const got: Delivery[] = [];
  await b.consume(['q'], (d) => { got.push(d); void d.ack(); }, { prefetch: 10 });
  await eventually(() => got.length === 8, 'all eight after the lease expired', 10_000);
  const back = got.filter((d) => readLedger(ledger).includes(String(d.message.headers.id)));
  assert.equal(back.length, 5);
  assert.ok(back.every((d) => d.redelivered), 'a message whose lease expired is redelivered');
  assert.ok(Date.now() - killedAt < 1500 + 1000, 'recovered within the lease plus a poll');
  assert.equal(await b.queueLength('q'), 0);
  await b.close();
});

test('a fenced ack after the lease expired and another process ran the message is detected and logged', async () => {
  const { dir, url } = tempDb();
  const log = captureLogger();
  const b = createBroker(url, ctx({ visibility_timeout: 1 }, {}, log)) as SqliteBroker;
  await b.connect();
  const ledger = path.join(dir, 'other.txt');
  const held: Delivery[] = [];
  const c = (await b.consume(['q'], (d) => held.push(d), { prefetch: 1 })) as SqliteConsumer;
  await b.publish(testMessage('victim'), { exchange: '', routingKey: 'q' });
  await eventually(() => held.length === 1, 'we hold it', 5000, 5);
  // The other process starts consuming only now: while our lease is renewed it cannot take the message.
  const other = spawnChild(['consume', url, 'q', '4', ledger], { CELERIAC_TEST_LEASE_S: '1' });
  try {
    await other.waitFor('ready');
    assert.deepEqual(readLedger(ledger), []);
    // Block this event loop past the lease: renewal cannot run, as with a task that never yields.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2500);
    await eventually(() => readLedger(ledger).includes('victim'), 'the other process takes the expired message', 5000);
    await held[0]!.ack();
    assert.equal(c.stats.fencedFailures, 1);
    assert.equal(c.stats.acked, 0);
    assert.ok(log.lines.some((l) => l.includes('possible_duplicate') && l.includes(held[0]!.deliveryTag)), log.lines.join(''));
    await stopChild(other);
    assert.equal(await b.queueLength('q'), 0, 'the other process acked it');
  } finally {
    other.proc.kill('SIGKILL');
    await b.close();
  }
});
