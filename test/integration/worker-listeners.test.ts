// Worker event listeners that throw (or reject) stop at the worker: each failure is logged once with
// what to do, the task's result is stored, its message settled, and the worker keeps serving.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Celeriac, type TaskEvent, type Worker } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import amqplib from '../../src/brokers/amqp/amqplib.js';
import { WORKER_TEST_BROKERS } from '../helpers/brokers.js';
import { eventually, redisDb, uniqueName } from '../helpers/services.js';

const BACKEND = redisDb(11);
const open: { app: Celeriac; worker: Worker }[] = [];
after(async () => {
  for (const o of open) {
    await o.worker.close().catch(() => undefined);
    await o.app.close().catch(() => undefined);
  }
});

async function setup(broker: string, settings: Record<string, unknown> = {}) {
  const queue = uniqueName('listeners');
  const prefix = `${queue}:`;
  const lines: string[] = [];
  const logger = createLogger('warning', (l) => void lines.push(l));
  const app = new Celeriac('listeners', {
    broker, backend: BACKEND, task_default_queue: queue, logger, broker_transport_options: { global_keyprefix: prefix }, ...settings,
  });
  app.task('l.add', (x: number, y: number) => x + y);
  app.task('l.async_add', async (x: number, y: number) => x + y);
  const worker = app.worker({ concurrency: 4, logger, hostname: `${queue}@test` });
  open.push({ app, worker });
  return { app, worker, queue, prefix, lines };
}

/** Messages the broker still counts for the queue: Redis' unacked entries, or RabbitMQ's ready messages after the worker left. */
async function leftOnBroker(b: (typeof WORKER_TEST_BROKERS)[number], queue: string, prefix: string): Promise<number> {
  if (b.name === 'redis') {
    const r = new Redis(b.url);
    try {
      return (await r.hlen(`${prefix}unacked`)) + (await r.llen(`${prefix}${queue}`));
    } finally {
      r.disconnect();
    }
  }
  const conn = await amqplib.connect(b.url);
  try {
    const ch = await conn.createChannel();
    return (await ch.checkQueue(queue)).messageCount;
  } finally {
    await conn.close();
  }
}

for (const b of WORKER_TEST_BROKERS) {
  test(`[${b.name}] taskSuccess and taskPostrun listeners that throw or reject: results stored, each failure logged once, the worker serves on`, async () => {
    await b.check();
    const { app, worker, lines } = await setup(b.url);
    let calls = 0;
    worker.on('taskSuccess', () => {
      calls++;
      throw new Error('listener bug');
    });
    worker.on('taskSuccess', () => void calls++); // still called after the one before threw
    worker.on('taskPostrun', async () => {
      calls++;
      throw new RangeError('async listener bug');
    });
    await worker.start();
    const results = await Promise.all([1, 2, 3].map(async (i) => (await app.sendTask(i === 2 ? 'l.async_add' : 'l.add', [i, i])).get({ timeout: 15_000 })));
    assert.deepEqual(results, [2, 4, 6]);
    await eventually(() => calls === 9, 'every listener called for every task');
    await eventually(() => lines.filter((l) => /listener threw/.test(l)).length === 6, 'one line per failure');
    const line = lines.find((l) => l.includes("A 'taskSuccess' listener threw for l.add["))!;
    assert.match(line, /Error: listener bug\. The worker carried on .*catch errors inside the listener/);
    assert.ok(lines.some((l) => l.includes("A 'taskPostrun' listener threw for l.async_add[") && l.includes('RangeError: async listener bug')));
    assert.equal(await (await app.sendTask('l.add', [20, 22])).get({ timeout: 15_000 }), 42, 'still serving');
  });

  test(`[${b.name}] acks_late: throwing listeners are logged, not swallowed, and every message is acknowledged`, async () => {
    await b.check();
    const { app, worker, lines, queue, prefix } = await setup(b.url, { task_acks_late: true });
    worker.on('taskSuccess', () => {
      throw new Error('late listener bug');
    });
    worker.on('taskPostrun', () => {
      throw new Error('late postrun bug');
    });
    await worker.start();
    const rs = await Promise.all([1, 2, 3, 4].map((i) => app.sendTask('l.add', [i, 1])));
    assert.deepEqual(await Promise.all(rs.map((r) => r.get({ timeout: 15_000 }))), [2, 3, 4, 5]);
    await eventually(() => lines.filter((l) => /late (listener|postrun) bug/.test(l)).length === 8, 'each failure logged once');
    if (b.name === 'redis') await eventually(async () => (await leftOnBroker(b, queue, prefix)) === 0, 'nothing left unacknowledged');
    await worker.close();
    assert.equal(await leftOnBroker(b, queue, prefix), 0, 'acknowledged, not put back at shutdown');
  });

  test(`[${b.name}] a taskReceived listener that throws: the task still runs and its message is settled`, async () => {
    await b.check();
    const { app, worker, lines, queue, prefix } = await setup(b.url);
    worker.on('taskReceived', (e: TaskEvent) => {
      throw new TypeError(`cannot handle ${e.name}`);
    });
    await worker.start();
    const r = await app.sendTask('l.add', [1, 2]);
    assert.equal(await r.get({ timeout: 15_000 }), 3);
    assert.ok(lines.some((l) => l.includes(`A 'taskReceived' listener threw for l.add[${r.id}]: TypeError: cannot handle l.add`)), lines.join(''));
    if (b.name === 'redis') await eventually(async () => (await leftOnBroker(b, queue, prefix)) === 0, 'nothing left unacknowledged');
    await worker.close();
    assert.equal(await leftOnBroker(b, queue, prefix), 0, 'settled, not held until shutdown');
  });
}
