// Bulk publishing (task.applyBulk → AmqpBroker.publishMany) across a RabbitMQ stop_app / start_app, on a
// private node started for this test (never the shared server): every bulk call that resolved ran at least
// once, none failed, and the restart really hit publishing (the broker retried unconfirmed messages).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import { startRabbitNode, type RabbitNode } from '../helpers/rabbit-node.js';
import { eventually, sleep, uniqueName } from '../helpers/services.js';

let node: RabbitNode;

before(async () => {
  node = await startRabbitNode(`celeriac-bulk-fault-${process.pid}`);
});

after(async () => {
  await node?.stop();
});

test('stop_app/start_app during bulk publishes: every resolved applyBulk ran, unconfirmed messages are resent', { timeout: 120_000 }, async () => {
  const queue = uniqueName('fault-bulk');
  const logLines: string[] = [];
  const logger = createLogger('info', (l) => { logLines.push(l); });
  const runs = new Map<number, number>();

  const workerApp = new Celeriac('bulk-worker', { broker: node.url, task_default_queue: queue, task_acks_late: true, broker_heartbeat: 5, logger });
  workerApp.task('fault.record', (n: number) => {
    runs.set(n, (runs.get(n) ?? 0) + 1);
  });
  const worker = workerApp.worker({ queues: [queue], concurrency: 20, hostname: 'bulk@local', loglevel: 'warning' });
  await worker.start();

  const producer = new Celeriac('bulk-producer', {
    broker: node.url,
    task_default_queue: queue,
    task_ignore_result: true,
    task_publish_retry_policy: { max_retries: 40, interval_start: 0.2, interval_step: 0.2, interval_max: 1 },
    broker_heartbeat: 5,
    logger,
  });
  const record = producer.task('fault.record', (_n: number) => undefined);

  const CHUNK = 500;
  const confirmed: number[] = [];
  const failures: string[] = [];
  let next = 0;
  let stopPublishingAt = Infinity;
  const publishing = (async () => {
    while (Date.now() < stopPublishingAt) {
      const first = next;
      next += CHUNK;
      try {
        await record.applyBulk(Array.from({ length: CHUNK }, (_, i) => ({ args: [first + i] })));
        for (let i = 0; i < CHUNK; i++) confirmed.push(first + i);
      } catch (err) {
        failures.push((err as Error).message);
      }
      await sleep(10);
    }
  })();
  const restart = (async () => {
    await eventually(() => confirmed.length >= 5 * CHUNK, `${5 * CHUNK} tasks confirmed`, 30_000);
    await node.stopApp();
    await sleep(1000);
    await node.startApp();
    stopPublishingAt = Date.now() + 1500;
  })();
  await Promise.all([publishing, restart]);

  await eventually(() => confirmed.every((n) => runs.has(n)), `every confirmed task ran (${confirmed.filter((n) => !runs.has(n)).length} missing)`, 60_000, 100);
  const retried = logLines.filter((l) => /Bulk publish of \d+ message\(s\) not confirmed: .*retrying/.test(l)).length;
  const duplicates = [...runs.values()].filter((c) => c > 1).length;
  console.log(`# bulk restart fault: ${next} published in chunks of ${CHUNK}, ${confirmed.length} confirmed, ${failures.length} failed calls, duplicates ${duplicates}, bulk publish retries ${retried}`);
  assert.deepEqual(failures, [], 'every bulk call eventually confirmed');
  assert.equal(confirmed.length, next, 'every task published');
  assert.ok(retried > 0, 'the restart really hit bulk publishing (the broker retried)');

  await worker.close();
  await workerApp.close();
  await producer.close();
});
