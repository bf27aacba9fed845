// The RabbitMQ broker against the real server: topology flags, confirms, prefetch, ack/reject, restore,
// header typing, URL parsing and the error messages for login / vhost / permission problems.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import amqplib, { toleratesLongHeaders } from '../../src/brokers/amqp/amqplib.js';
import { createBroker } from '../../src/brokers/amqp/index.js';
import { parseAmqpUrl } from '../../src/brokers/amqp/url.js';
import { toFieldTable, decodeFieldTable } from '../../src/brokers/amqp/field-table.js';
import type { Broker, Delivery } from '../../src/brokers/types.js';
import { createSettings } from '../../src/app/settings.js';
import { createLogger } from '../../src/app/log.js';
import { Celeriac } from '../../src/index.js';
import { encodeTaskV2, decodeTask } from '../../src/protocol/index.js';
import { ensureSeedAccount, ensureUserWithoutPermission, SEED, rabbitmqctl } from '../helpers/rabbit-node.js';
import { eventually, sleep, uniqueName } from '../helpers/services.js';

let url: string;
const lines: string[] = [];
const logger = createLogger('info', (l) => { lines.push(l); });
const brokers: Broker[] = [];
const queues: string[] = [];

async function broker(settings: Record<string, unknown> = {}, u = url): Promise<Broker> {
  const b = createBroker(u, { settings: createSettings({ broker_connection_retry_on_startup: false, ...settings }), logger });
  brokers.push(b);
  return b;
}

function q(prefix = 'amqp-it'): string {
  const name = uniqueName(prefix);
  queues.push(name);
  return name;
}

before(async () => {
  url = await ensureSeedAccount();
});

after(async () => {
  for (const b of brokers) await b.close().catch(() => undefined);
  const c = await amqplib.connect(url);
  const ch = await c.createChannel();
  for (const name of queues) {
    await ch.deleteQueue(name).catch(() => undefined);
    await ch.deleteExchange(name).catch(() => undefined);
  }
  await c.close();
});

test('URL forms: vhost percent-decoded, "//" and "/" and no path mean "/", amqps defaults to 5671', () => {
  const s = createSettings({});
  assert.equal(parseAmqpUrl('amqp://u:p@h:5672/myvhost', s).vhost, 'myvhost');
  assert.equal(parseAmqpUrl('amqp://u:p@h:5672//', s).vhost, '/');
  assert.equal(parseAmqpUrl('amqp://u:p@h:5672/', s).vhost, '/');
  assert.equal(parseAmqpUrl('amqp://u:p@h:5672', s).vhost, '/');
  assert.equal(parseAmqpUrl('amqp://u:p@h/%2Fprod%20a', s).vhost, '/prod a');
  const ep = parseAmqpUrl('amqps://us%40r:p%3Ass@h/v', s);
  assert.deepEqual([ep.username, ep.password, ep.port, ep.tls], ['us@r', 'p:ss', 5671, true]);
  assert.equal(ep.displayUrl, 'amqps://us%40r:**@h/v');
  const def = parseAmqpUrl('amqp://h', createSettings({ broker_heartbeat: 7, broker_connection_timeout: 2 }));
  assert.deepEqual([def.username, def.password, def.heartbeat, def.connectTimeout], ['guest', 'guest', 7, 2]);
});

test('declares Celery\'s exact topology: durable direct exchange, durable queue, binding; Python-style redeclare succeeds', async () => {
  const b = await broker();
  await b.connect();
  const name = q();
  await b.publish(encodeTaskV2('t.topology', [1], {}), { exchange: '', routingKey: name });
  const out = await rabbitmqctl(['list_queues', '-p', SEED.vhost, 'name', 'durable', 'auto_delete', 'arguments', 'messages']);
  const row = out.split('\n').find((l) => l.startsWith(name + '\t'));
  assert.ok(row, `queue ${name} declared`);
  assert.deepEqual(row!.split('\t'), [name, 'true', 'false', '[]', '1']);
  const ex = await rabbitmqctl(['list_exchanges', '-p', SEED.vhost, 'name', 'type', 'durable', 'auto_delete']);
  assert.ok(ex.split('\n').includes(`${name}\tdirect\ttrue\tfalse`), 'exchange direct durable');
  const bind = await rabbitmqctl(['list_bindings', '-p', SEED.vhost, 'source_name', 'destination_name', 'routing_key']);
  assert.ok(bind.split('\n').includes(`${name}\t${name}\t${name}`), 'binding exchange→queue with rk = queue');
  // A kombu-style declaration with the same flags must not be refused.
  const c = await amqplib.connect(url);
  const ch = await c.createChannel();
  await ch.assertQueue(name, { durable: true, autoDelete: false, exclusive: false });
  await c.close();
});

test('x-max-priority and quorum queues follow the settings, with Python\'s argument types', async () => {
  const b = await broker({ task_queue_max_priority: 10 });
  const name = q();
  await b.publish(encodeTaskV2('t.prio', [], {}, { priority: 5 }), { exchange: '', routingKey: name });
  const c = await amqplib.connect(url);
  let ch = await c.createChannel();
  // py-amqp sends x-max-priority as a signed int ('I'): declaring it the same way must be accepted.
  await ch.assertQueue(name, { durable: true, arguments: toFieldTable({ 'x-max-priority': 10 }) });
  // ... and a different value must be refused, proving the argument is really there.
  let ch2 = await c.createChannel();
  ch2.on('error', () => undefined);
  await assert.rejects(ch2.assertQueue(name, { durable: true, arguments: toFieldTable({ 'x-max-priority': 5 }) }), /PRECONDITION_FAILED/);
  const bq = await broker({ task_default_queue_type: 'quorum' });
  const qq = q();
  await bq.publish(encodeTaskV2('t.quorum', [], {}), { exchange: '', routingKey: qq });
  const out = await rabbitmqctl(['list_queues', '-p', SEED.vhost, 'name', 'type']);
  assert.ok(out.split('\n').includes(`${qq}\tquorum`), 'quorum queue');
  ch = await c.createChannel();
  await ch.checkQueue(name);
  await c.close();
  void ch2;
});

test('publish resolves after the confirm; consume honours prefetch; ack removes, reject(false) drops, reject(true) requeues', async () => {
  const b = await broker();
  const name = q();
  for (let i = 0; i < 5; i++) await b.publish(encodeTaskV2('t.n', [i], {}), { exchange: '', routingKey: name });
  assert.equal(await b.queueLength(name), 5);
  const got: Delivery[] = [];
  const consumer = await b.consume([name], (d) => got.push(d), { prefetch: 2 });
  await eventually(() => got.length === 2, '2 deliveries');
  await sleep(300);
  assert.equal(got.length, 2, 'prefetch 2 holds back the rest');
  const first = decodeTask(got[0]!.message);
  assert.equal(first.task, 't.n');
  assert.deepEqual(first.args, [0]);
  assert.equal(got[0]!.queue, name);
  assert.equal(got[0]!.routingKey, name);
  await got[0]!.ack();
  await got[0]!.ack(); // idempotent
  await got[1]!.reject(false);
  await eventually(() => got.length === 4, '2 more after ack/reject');
  consumer.setPrefetch(10);
  await eventually(() => got.length === 5, 'all 5 after raising prefetch');
  await got[2]!.reject(true);
  await eventually(() => got.length === 6, 'requeued delivery comes back');
  assert.equal(got[5]!.redelivered, true);
  assert.deepEqual(decodeTask(got[5]!.message).args, [2]);
  for (const d of got.slice(3)) await d.ack();
  await consumer.stop();
  await eventually(async () => (await b.queueLength(name)) === 0, 'queue empty');
});

test('restoreUnacked puts unstarted deliveries back for another consumer; stop() keeps held deliveries ackable', async () => {
  const b = await broker();
  const name = q();
  for (let i = 0; i < 3; i++) await b.publish(encodeTaskV2('t.r', [i], {}), { exchange: '', routingKey: name });
  const held: Delivery[] = [];
  const c1 = await b.consume([name], (d) => held.push(d), { prefetch: 3 });
  await eventually(() => held.length === 3, '3 held');
  await c1.stop();
  await held[0]!.ack();
  assert.equal(await c1.restoreUnacked(), 2);
  const again: Delivery[] = [];
  const c2 = await b.consume([name], (d) => again.push(d), { prefetch: 5 });
  await eventually(() => again.length === 2, 'two restored');
  assert.deepEqual(again.map((d) => decodeTask(d.message).args[0]).sort(), [1, 2]);
  for (const d of again) await d.ack();
  await c2.stop();
});

test('integer headers are tagged for py-amqp (I / l, never b / s) and an L-tagged header decodes', async () => {
  const typed = toFieldTable({ small: -5, mid: 300, big: 40000, huge: 5_000_000_000, f: 1.5, nested: { n: -1, list: [2, 'x'] } });
  assert.deepEqual(typed.small, { '!': 'int', value: -5 });
  assert.deepEqual(typed.mid, { '!': 'int', value: 300 });
  assert.deepEqual(typed.huge, { '!': 'long', value: 5_000_000_000 });
  assert.equal(typed.f, 1.5);
  assert.deepEqual(typed.nested, { n: { '!': 'int', value: -1 }, list: [{ '!': 'int', value: 2 }, 'x'] });
  const b = await broker();
  const name = q();
  await b.publish(encodeTaskV2('t.h', [], {}, { headers: { small: -5, huge: 5_000_000_000 } }), { exchange: '', routingKey: name });
  const got: Delivery[] = [];
  const consumer = await b.consume([name], (d) => got.push(d), { prefetch: 1 });
  await eventually(() => got.length === 1, 'delivery');
  assert.equal(got[0]!.message.headers.small, -5);
  assert.equal(got[0]!.message.headers.huge, 5_000_000_000);
  assert.equal(got[0]!.message.headers.retries, 0);
  await got[0]!.ack();
  await consumer.stop();
  // py-amqp writes ints beyond 2^31 with tag 'L', which amqplib 2.3.1 cannot decode (the Python interop test sends one for real).
  const t = Buffer.concat([Buffer.from([5]), Buffer.from('clock'), Buffer.from('L'), Buffer.alloc(8)]);
  t.writeBigInt64BE(-(2n ** 40n), 7);
  assert.deepEqual(decodeFieldTable(t), { clock: -(2 ** 40) });
  assert.equal(toleratesLongHeaders, true, 'the decoder is installed in amqplib');
});

test('wrong password, missing vhost and missing permission each give one actionable error line', async () => {
  const base = new URL(url);
  const bad = (user: string, pass: string, vhost: string) => `amqp://${user}:${pass}@${base.hostname}:${base.port || 5672}/${vhost}`;
  const e1 = await (await broker({}, bad(SEED.user, 'wrong-password', SEED.vhost))).connect().catch((e: Error) => e);
  assert.ok(e1 instanceof Error);
  assert.match(e1.message, /refused the login of user "myuser".*ACCESS_REFUSED/);
  assert.match(e1.message, /amqp:\/\/myuser:\*\*@/);
  assert.doesNotMatch(e1.message, /wrong-password/);
  assert.doesNotMatch(e1.message, /\n/);

  const e2 = await (await broker({}, bad(SEED.user, SEED.password, 'celeriac-no-such-vhost'))).connect().catch((e: Error) => e);
  assert.match((e2 as Error).message, /no virtual host "celeriac-no-such-vhost".*rabbitmqctl add_vhost celeriac-no-such-vhost/);

  await ensureUserWithoutPermission('celeriac_noperm', 'nopass');
  const e3 = await (await broker({}, bad('celeriac_noperm', 'nopass', SEED.vhost))).connect().catch((e: Error) => e);
  assert.match((e3 as Error).message, /User "celeriac_noperm" has no permission on RabbitMQ virtual host "myvhost"/);
  assert.ok((e3 as Error).message.includes('rabbitmqctl set_permissions -p myvhost celeriac_noperm ".*" ".*" ".*"'));

  // These are not retried even with broker_connection_retry_on_startup: it returns at once.
  const t0 = Date.now();
  const e4 = await (await broker({ broker_connection_retry_on_startup: true }, bad(SEED.user, 'wrong', SEED.vhost))).connect().catch((e: Error) => e);
  assert.match((e4 as Error).message, /ACCESS_REFUSED/);
  assert.ok(Date.now() - t0 < 3000);
});

test("a refused connection is retried on a worker's start-up, then fails with how to fix it; a producer fails at once", async () => {
  const app = new Celeriac('a', { broker: 'amqp://guest:guest@127.0.0.1:1/', broker_connection_max_retries: 1, logger });
  const t0 = Date.now();
  const err = await app.broker({ retryOnStartup: true }).catch((e: Error) => e);
  assert.match((err as Error).message, /connection refused \(is rabbitmq-server running on 127\.0\.0\.1:1\?\).*Gave up after 2 attempts/);
  assert.ok(Date.now() - t0 >= 900, 'waited before the retry');
  assert.ok(lines.some((l) => l.includes('Trying again in 1.00 seconds... (1/1)')));
  const before = lines.length;
  await assert.rejects(app.sendTask('tasks.add', [1, 1]), /connection refused/);
  assert.equal(lines.slice(before).filter((l) => l.includes('Trying again')).length, 0, 'a producer does not retry the connection');
  await app.close();
});

test('a consumer whose queue is deleted redeclares it and resumes; an ack for the dead channel is a logged no-op', async () => {
  const b = await broker();
  const name = q();
  await b.publish(encodeTaskV2('t.gone', [1], {}), { exchange: '', routingKey: name });
  const got: Delivery[] = [];
  const consumer = await b.consume([name], (d) => got.push(d), { prefetch: 5 });
  await eventually(() => got.length === 1, 'first delivery');
  const c = await amqplib.connect(url);
  const ch = await c.createChannel();
  await ch.deleteQueue(name);
  await c.close();
  await eventually(() => lines.some((l) => l.includes(`Resumed consuming from ${name}`)), 'consumer resumed', 10_000);
  await got[0]!.ack(); // its channel is gone: must not throw, must not close the new channel
  assert.ok(lines.some((l) => l.includes('Not sending ack') && l.includes('possible duplicate')));
  await b.publish(encodeTaskV2('t.gone', [2], {}), { exchange: '', routingKey: name });
  await eventually(() => got.length === 2, 'delivery on the recovered channel');
  assert.deepEqual(decodeTask(got[1]!.message).args, [2]);
  await got[1]!.ack();
  await consumer.stop();
  await eventually(async () => (await b.queueLength(name)) === 0, 'acked on the new channel');
});
