// A Celeriac worker SIGKILLed mid-task with acks_late loses nothing on RabbitMQ: the broker requeues its
// unacked deliveries when the connection drops, and the next worker runs them (marked redelivered).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac } from '../../src/index.js';
import amqplib from '../../src/brokers/amqp/amqplib.js';
import { redisDb, requireRedis, uniqueName } from '../helpers/services.js';
import { ensureSeedAccount } from '../helpers/rabbit-node.js';
import { startTsWorker, type ManagedProcess } from '../interop/harness.js';

const BACKEND = redisDb(9);
const QUEUE = uniqueName('amqp-sigkill');
let url: string;
let client: Celeriac;
const procs: ManagedProcess[] = [];

before(async () => {
  await requireRedis();
  url = await ensureSeedAccount();
  client = new Celeriac('sigkill-client', { broker: url, backend: BACKEND, task_default_queue: QUEUE });
});

after(async () => {
  for (const p of procs) await p.kill();
  await client?.close();
  const c = await amqplib.connect(url);
  const ch = await c.createChannel();
  await ch.deleteQueue(QUEUE).catch(() => undefined);
  await ch.deleteExchange(QUEUE).catch(() => undefined);
  await c.close();
});

test('SIGKILL mid-task with acks_late: every task is redelivered to the next worker and runs', { timeout: 90_000 }, async () => {
  // The first worker holds interop.slow forever: it starts 2 (concurrency) and prefetches the rest.
  const w1 = await startTsWorker({ broker: url, backend: BACKEND, queues: [QUEUE], concurrency: 2, acksLate: true, hold: true });
  procs.push(w1);
  const results = await Promise.all(Array.from({ length: 6 }, (_, i) => client.sendTask('interop.slow', [`t${i}`, 0.05])));
  await w1.waitForLines(/^prerun /, 2, 20_000, 'two tasks started on the first worker');
  const startedOnW1 = w1.logs.split('\n').filter((l) => l.startsWith('prerun ')).map((l) => l.split(' ')[1]!);
  await w1.kill();
  assert.equal(w1.count(/^postrun /), 0, 'nothing finished on the killed worker');

  const w2 = await startTsWorker({ broker: url, backend: BACKEND, queues: [QUEUE], concurrency: 4, acksLate: true });
  procs.push(w2);
  const values = (await Promise.all(results.map((r) => r.get({ timeout: 30_000 })))) as Array<{ lang: string; tag: string; redelivered: boolean }>;
  assert.deepEqual(values.map((v) => v.tag), ['t0', 't1', 't2', 't3', 't4', 't5']);
  for (const [i, r] of results.entries()) {
    if (startedOnW1.includes(r.id)) assert.equal(values[i]!.redelivered, true, `task ${r.id} that was running when killed came back redelivered`);
  }
  assert.ok(values.every((v) => v.redelivered), 'all six had been delivered to the killed worker (prefetch) and were redelivered');
  await w2.stop();
});
