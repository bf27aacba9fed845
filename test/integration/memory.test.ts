// memory:// broker and backend: same semantics as the embedded ones, inside one process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBroker } from '../../src/brokers/memory/index.js';
import { createBackend } from '../../src/backends/memory.js';
import { createBroker as createFromRegistry } from '../../src/brokers/registry.js';
import { createBackend as createBackendFromRegistry } from '../../src/backends/registry.js';
import type { Delivery } from '../../src/brokers/types.js';
import type { ResultMeta } from '../../src/backends/types.js';
import { eventually, sleep, uniqueName } from '../helpers/services.js';
import { captureLogger, ctx, testMessage } from './sqlite-fixtures.js';

const idOf = (d: Delivery) => String(d.message.headers.id);
const memUrl = () => `memory://${uniqueName('t')}`;

test('a producer and a consumer opened separately with the same URL share the queues; other URLs do not', async () => {
  const url = memUrl();
  const producer = await createFromRegistry(url, ctx());
  const consumer = createBroker(url, ctx());
  const stranger = createBroker(memUrl(), ctx());
  await producer.publish(testMessage('m1'), { exchange: '', routingKey: 'celery' });
  assert.equal(await consumer.queueLength('celery'), 1);
  assert.equal(await stranger.queueLength('celery'), 0);
  const got: Delivery[] = [];
  await consumer.consume(['celery'], (d) => got.push(d), { prefetch: 1 });
  await eventually(() => got.length === 1, 'the delivery');
  assert.equal(idOf(got[0]!), 'm1');
  assert.deepEqual(JSON.parse(got[0]!.message.body.toString())[0], ['m1']);
  assert.equal(got[0]!.redelivered, false);
  await got[0]!.ack();
  assert.equal(await consumer.queueLength('celery'), 0);
  await Promise.all([producer.close(), consumer.close(), stranger.close()]);
});

test('prefetch credit, setPrefetch, priority order and FIFO within a priority', async () => {
  const b = createBroker(memUrl(), ctx());
  const plan: [string, number | undefined][] = [['a0', 0], ['b5', 5], ['c', undefined], ['d9', 9], ['e5', 5], ['f0', 0]];
  for (const [id, p] of plan) await b.publish(testMessage(id, p), { exchange: '', routingKey: 'q' });
  const got: Delivery[] = [];
  const c = await b.consume(['q'], (d) => got.push(d), { prefetch: 2 });
  await sleep(50);
  assert.deepEqual(got.map(idOf), ['d9', 'b5']);
  await got[0]!.ack();
  await sleep(20);
  assert.deepEqual(got.map(idOf), ['d9', 'b5', 'e5']);
  c.setPrefetch(10);
  await sleep(20);
  assert.deepEqual(got.map(idOf), ['d9', 'b5', 'e5', 'a0', 'c', 'f0']);
  await b.close();
});

test('reject(false) drops, reject(true) and restoreUnacked requeue in place marked redelivered; purge leaves held ones', async () => {
  const log = captureLogger();
  const b = createBroker(memUrl(), ctx({}, {}, log));
  for (let i = 0; i < 6; i++) await b.publish(testMessage(`m${i}`), { exchange: '', routingKey: 'q' });
  const got: Delivery[] = [];
  const c = await b.consume(['q'], (d) => got.push(d), { prefetch: 3 });
  await eventually(() => got.length === 3, 'three');
  await got[0]!.reject(false);
  await got[1]!.reject(true);
  await got[1]!.ack(); // already settled: no effect
  await eventually(() => got.length === 5, 'two more');
  assert.deepEqual(got.map(idOf), ['m0', 'm1', 'm2', 'm3', 'm1'], 'the freed slot went to m3 before m1 was requeued');
  assert.equal(got[4]!.redelivered, true);
  assert.equal(got[3]!.redelivered, false);
  await c.stop();
  assert.equal(await c.restoreUnacked(), 3);
  assert.ok(log.lines.some((l) => l.includes('Restoring 3 unacknowledged message(s)')));
  assert.equal(await b.queueLength('q'), 5);
  const again: Delivery[] = [];
  const c2 = await b.consume(['q'], (d) => again.push(d), { prefetch: 2 });
  await eventually(() => again.length === 2, 'two');
  assert.deepEqual(again.map(idOf), ['m1', 'm2'], 'restored messages keep their place');
  assert.ok(again.every((d) => d.redelivered));
  assert.equal(await b.purge('q'), 3);
  assert.equal(await b.queueLength('q'), 0);
  await again[0]!.ack();
  await c2.stop();
  assert.equal(await c2.restoreUnacked(), 1);
  assert.equal(await b.queueLength('q'), 1);
  await b.close();
});

test('two consumers on one queue never receive the same message', async () => {
  const b = createBroker(memUrl(), ctx());
  const seen: string[] = [];
  for (const _ of [1, 2]) await b.consume(['q'], (d) => { seen.push(idOf(d)); setTimeout(() => void d.ack(), 1); }, { prefetch: 4 });
  for (let i = 0; i < 500; i++) await b.publish(testMessage(`m${i}`), { exchange: '', routingKey: 'q' });
  await eventually(() => seen.length === 500, '500 deliveries');
  await sleep(50);
  assert.equal(new Set(seen).size, 500);
  assert.equal(seen.length, 500);
  await b.close();
});

function meta(taskId: string, status: string, result: unknown = null): ResultMeta {
  return { status, result, traceback: null, children: [], date_done: null, task_id: taskId };
}

test('memory backend: PENDING, SUCCESS final, wait wakes at once, TimeoutError, forget, result_expires, shared by URL', async () => {
  const url = memUrl();
  const a = await createBackendFromRegistry(url, ctx({}, { result_expires: 0.2 }));
  const b = createBackend(url, ctx({}, { result_expires: 0.2 }));
  assert.equal((await a.get('t')).status, 'PENDING');
  const t0 = Date.now();
  const waiting = b.wait('t', { timeout: 2000 });
  await a.store(meta('t', 'STARTED'));
  await a.store(meta('t', 'SUCCESS', 5));
  await a.store(meta('t', 'FAILURE'));
  assert.equal((await waiting).result, 5);
  assert.ok(Date.now() - t0 < 50, 'woken by the store, not by a poll');
  assert.equal((await b.get('t')).status, 'SUCCESS');
  await assert.rejects(b.wait('none', { timeout: 50 }), (e: Error) => e.name === 'TimeoutError');
  const stored = meta('m', 'SUCCESS', { n: 1 });
  await a.store(stored);
  (stored.result as { n: number }).n = 2;
  assert.deepEqual((await b.get('m')).result, { n: 1 }, 'stored by value');
  await b.forget('m');
  assert.equal((await a.get('m')).status, 'PENDING');
  await sleep(250);
  assert.equal((await a.get('t')).status, 'PENDING', 'expired after result_expires');
  assert.equal((await createBackend(memUrl(), ctx()).get('t')).status, 'PENDING');
});
