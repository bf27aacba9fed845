// One contract for every transport (as BullMQ's adapter-conformance): the Broker/Consumer primitives
// the worker relies on, run alike against memory, SQLite, Redis and RabbitMQ; and remote control
// (ping) answering on each.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createBroker } from '../../../src/brokers/registry.js';
import type { Broker, Consumer, Delivery } from '../../../src/brokers/types.js';
import type { Message } from '../../../src/protocol/message.js';
import { decodeEnvelope } from '../../../src/protocol/envelope.js';
import { Celeriac } from '../../../src/index.js';
import { eventually, sleep, uniqueName } from '../../helpers/services.js';
import { allTransports, type Transport } from '../../helpers/transports.js';
import { ctx, testMessage } from '../sqlite-fixtures.js';

// test-locks: redis-db-8
const TRANSPORTS = allTransports('conformance', 8);

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
});

async function open(t: Transport): Promise<Broker> {
  await t.check();
  // A connect gets 15 s instead of Celery's 4 s: CI runs many files at once on two cores, and this
  // file checks the primitives, not how fast a loaded machine connects.
  const b = await createBroker(t.url(), ctx({ visibility_timeout: 3600 }, { broker_connection_timeout: 15 }));
  await b.connect();
  cleanup.push(() => b.close());
  return b;
}

/** Consume `queue`, collecting deliveries; the consumer is stopped and its messages restored at the end. */
async function collect(b: Broker, queue: string, prefetch: number): Promise<{ got: Delivery[]; consumer: Consumer }> {
  const got: Delivery[] = [];
  const consumer = await b.consume([queue], (d) => got.push(d), { prefetch });
  cleanup.push(async () => {
    await consumer.stop();
    await consumer.restoreUnacked();
    await b.purge(queue);
  });
  return { got, consumer };
}

const idOf = (d: Delivery) => String(d.message.headers.id);
const publish = (b: Broker, queue: string, ...ids: string[]) => Promise.all(ids.map((id) => b.publish(testMessage(id), { exchange: '', routingKey: queue })));
/** Until the count has stayed put for a while: a transport must not hand out more than its credit. */
const settle = () => sleep(400);

for (const t of TRANSPORTS) {
  test(`[${t.name}] publish and consume: the message arrives intact with its queue, routing key and a delivery tag`, async () => {
    const b = await open(t);
    const queue = uniqueName('conf-pub');
    const { got } = await collect(b, queue, 4);
    const sent: Message = { ...testMessage('p1'), headers: { id: 'p1', task: 'tests.noop', lang: 'py', custom: 'ü€' } };
    await b.publish(sent, { exchange: '', routingKey: queue });
    await eventually(() => got.length === 1, 'the delivery');
    const d = got[0]!;
    assert.equal(d.message.headers.custom, 'ü€');
    assert.deepEqual(d.message.body, sent.body);
    assert.equal(d.message.contentType, 'application/json');
    assert.equal(d.queue, queue);
    assert.equal(d.routingKey, queue);
    assert.ok(d.deliveryTag.length > 0);
    assert.equal(d.redelivered, false);
    await d.ack();
  });

  test(`[${t.name}] prefetch bound: never more unacked deliveries than prefetch; an ack frees one; queueLength counts the waiting`, async () => {
    const b = await open(t);
    const queue = uniqueName('conf-prefetch');
    await publish(b, queue, 'a', 'b', 'c', 'd', 'e', 'f');
    await eventually(async () => (await b.queueLength(queue)) === 6, 'six waiting');
    const { got } = await collect(b, queue, 3);
    await eventually(() => got.length === 3, 'three deliveries');
    await settle();
    assert.equal(got.length, 3, 'no more than prefetch');
    await got[0]!.ack();
    await eventually(() => got.length === 4, 'one more after an ack');
    await settle();
    assert.equal(got.length, 4);
    assert.equal(await b.queueLength(queue), 2);
    assert.deepEqual(got.map(idOf), ['a', 'b', 'c', 'd'], 'FIFO');
  });

  test(`[${t.name}] held-ETA credit: setEtaHeld(n) lets n more deliveries through while the held ones stay unacked`, async () => {
    const b = await open(t);
    const queue = uniqueName('conf-eta');
    await publish(b, queue, 'h1', 'h2', 'r1', 'r2', 'r3');
    const { got, consumer } = await collect(b, queue, 1);
    await eventually(() => got.length === 1, 'one delivery');
    consumer.setEtaHeld(2);
    await eventually(() => got.length === 3, 'two more for the two held');
    await settle();
    assert.equal(got.length, 3, 'the window is still one');
    await got[2]!.ack();
    await eventually(() => got.length === 4, 'the window serves the rest while two are held');
    consumer.setEtaHeld(0);
    await got[3]!.ack();
    await settle();
    assert.equal(got.length, 4, 'held ones released: back to prefetch 1 with two unacked');
  });

  test(`[${t.name}] ack removes for good; reject(false) drops; reject(true) requeues marked redelivered`, async () => {
    const b = await open(t);
    const queue = uniqueName('conf-settle');
    await publish(b, queue, 'ack', 'drop', 'requeue');
    const { got, consumer } = await collect(b, queue, 3);
    await eventually(() => got.length === 3, 'three deliveries');
    const by = (id: string) => got.find((d) => idOf(d) === id)!;
    await by('ack').ack();
    await by('drop').reject(false);
    await by('requeue').reject(true);
    await eventually(() => got.length === 4, 'the requeued message again');
    assert.equal(idOf(got[3]!), 'requeue');
    assert.equal(got[3]!.redelivered, true);
    await got[3]!.ack();
    await by('ack').ack(); // idempotent
    await consumer.stop();
    assert.equal(await consumer.restoreUnacked(), 0, 'nothing left held');
    assert.equal(await b.queueLength(queue), 0, 'nothing came back');
  });

  test(`[${t.name}] restoreUnacked puts held deliveries back; purge empties the queue`, async () => {
    const b = await open(t);
    const queue = uniqueName('conf-restore');
    await publish(b, queue, 'r1', 'r2', 'r3');
    const { got, consumer } = await collect(b, queue, 2);
    await eventually(() => got.length === 2, 'two held');
    await consumer.stop();
    assert.equal(await consumer.restoreUnacked(), 2);
    await eventually(async () => (await b.queueLength(queue)) === 3, 'all three waiting again');
    const again = await collect(b, queue, 5);
    await eventually(() => again.got.length === 3, 'taken again');
    assert.deepEqual(new Set(again.got.map(idOf)), new Set(['r1', 'r2', 'r3']));
    assert.equal(again.got.filter((d) => d.redelivered).length, 2, 'the restored ones are marked redelivered');
    await again.consumer.stop();
    await again.consumer.restoreUnacked();
    await eventually(async () => (await b.queueLength(queue)) === 3, 'back again');
    assert.equal(await b.purge(queue), 3);
    assert.equal(await b.queueLength(queue), 0);
  });

  test(`[${t.name}] peek: the next waiting messages as stored, in fetch order, left in place`, async () => {
    const b = await open(t);
    assert.ok(b.peek, `${t.name} has peek`);
    const queue = uniqueName('conf-peek');
    for (const id of ['k1', 'k2', 'k3']) await publish(b, queue, id);
    await eventually(async () => (await b.queueLength(queue)) === 3, 'three waiting');
    const raws = await b.peek(queue, 2);
    assert.equal(raws.length, 2);
    // A virtual transport stores kombu's envelope; RabbitMQ keeps the body (headers are AMQP properties).
    const ids = raws.map((raw) => String(t.name === 'amqp' ? (JSON.parse(raw) as [string[]])[0][0] : decodeEnvelope(raw).message.headers.id));
    assert.deepEqual(ids, ['k1', 'k2']);
    assert.equal((await b.peek(queue, 10)).length, 3);
    await eventually(async () => (await b.queueLength(queue)) === 3, 'all three still waiting');
    const { got } = await collect(b, queue, 5);
    await eventually(() => got.length === 3, 'all three delivered after the peeks');
    assert.deepEqual(got.map(idOf), ['k1', 'k2', 'k3'], 'in their order');
    for (const d of got) await d.ack();
    assert.deepEqual(await b.peek(uniqueName('conf-peek-none'), 5), [], 'a queue that does not exist has none');
  });

  test(`[${t.name}] broadcast reaches every subscriber; replies reach only the client they are for`, async () => {
    const b = await open(t);
    const exchange = uniqueName('conf.pidbox');
    const seen: string[][] = [[], []];
    const subs = await Promise.all([0, 1].map((i) => b.subscribeBroadcast!(exchange, uniqueName(`node${i}`), (m) => seen[i]!.push(String(m.headers.id)))));
    cleanup.push(async () => { for (const s of subs) await s.close(); });
    await b.broadcast!(exchange, testMessage('hello'));
    await eventually(() => seen[0]!.length === 1 && seen[1]!.length === 1, 'both subscribers');
    assert.deepEqual(seen, [['hello'], ['hello']]);

    const replies: Record<string, string[]> = { c1: [], c2: [] };
    const replyExchange = uniqueName('conf.reply');
    for (const client of ['c1', 'c2']) {
      const s = await b.subscribeReplies!(replyExchange, client, (m) => replies[client]!.push(String(m.headers.id)));
      cleanup.push(() => s.close());
    }
    await b.sendReply!({ exchange: replyExchange, routingKey: 'c2' }, testMessage('for-c2'));
    await eventually(() => replies.c2!.length === 1, 'the reply');
    await settle();
    assert.deepEqual(replies, { c1: [], c2: ['for-c2'] });
  });

  test(`[${t.name}] remote control: a worker answers ping, and stats name its prefetch`, async () => {
    await t.check();
    const queue = uniqueName('conf-ping');
    const app = new Celeriac('conformance', { broker: t.url(), backend: 'memory://', task_default_queue: queue });
    const hostname = `${queue}@conformance`;
    const worker = app.worker({ concurrency: 2, hostname, loglevel: 'critical' });
    await worker.start();
    cleanup.push(async () => { await worker.close(); await app.close(); });
    const pong = await app.control.ping({ destination: [hostname], timeout: 10 });
    assert.deepEqual(pong, [{ [hostname]: { ok: 'pong' } }]);
    const [stats] = await app.control.call('stats', {}, { destination: [hostname], timeout: 10 });
    assert.equal((stats![hostname] as { prefetch_count: number }).prefetch_count, 8);
    const unknown = await app.control.call('no_such_command', {}, { destination: [hostname], timeout: 10 });
    assert.deepEqual(unknown, [{ [hostname]: { error: 'No such control command: no_such_command' } }]);
  });
}
