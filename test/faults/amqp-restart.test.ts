// RabbitMQ restarts (stop_app / start_app) while tasks are flowing, on a private node started for this test
// (never the shared server). Every publish that was confirmed must run at least once, and the worker must
// resume consuming by itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import { startRabbitNode, type RabbitNode } from '../helpers/rabbit-node.js';
import { eventually, sleep, uniqueName } from '../helpers/services.js';

let node: RabbitNode;

before(async () => {
  node = await startRabbitNode(`celeriac-fault-${process.pid}`);
});

after(async () => {
  await node?.stop();
});

test('stop_app/start_app under load: confirmed tasks all run, publishes are retried, the worker resumes by itself', { timeout: 120_000 }, async () => {
  const queue = uniqueName('fault-restart');
  const logLines: string[] = [];
  const logger = createLogger('info', (l) => { logLines.push(l); });
  const runs = new Map<number, number>();

  const workerApp = new Celeriac('fault-worker', { broker: node.url, task_default_queue: queue, task_acks_late: true, broker_heartbeat: 5, logger });
  workerApp.task('fault.record', async (n: number) => {
    runs.set(n, (runs.get(n) ?? 0) + 1);
    await sleep(2);
    return n;
  });
  const worker = workerApp.worker({ queues: [queue], concurrency: 4, hostname: 'fault@local', loglevel: 'info' });
  await worker.start();

  const producer = new Celeriac('fault-producer', {
    broker: node.url,
    task_default_queue: queue,
    task_publish_retry_policy: { max_retries: 40, interval_start: 0.2, interval_step: 0.2, interval_max: 1 },
    broker_heartbeat: 5,
    logger,
  });

  const confirmed = new Set<number>();
  const failed = new Map<number, string>();
  let next = 0;
  let restartDone = false;
  let stopPublishingAt = Infinity;
  const publishOne = async (n: number) => {
    try {
      await producer.sendTask('fault.record', [n]);
      confirmed.add(n);
    } catch (err) {
      failed.set(n, (err as Error).message);
    }
  };
  // 4 publishers in parallel, each a steady stream, from before the restart until 1.5 s after it.
  const publishers = Array.from({ length: 4 }, async () => {
    while (Date.now() < stopPublishingAt) {
      const n = next++;
      await publishOne(n);
      await sleep(20);
    }
  });
  const restart = (async () => {
    await eventually(() => confirmed.size >= 150, '150 tasks confirmed', 30_000);
    const t0 = Date.now();
    await node.stopApp();
    await sleep(1000);
    await node.startApp();
    restartDone = true;
    stopPublishingAt = Date.now() + 1500;
    return Date.now() - t0;
  })();
  await Promise.all(publishers);
  const outageMs = await restart;
  assert.ok(restartDone);

  const t1 = Date.now();
  await eventually(() => [...confirmed].every((n) => runs.has(n)), `every confirmed task ran (${[...confirmed].filter((n) => !runs.has(n)).length} missing)`, 60_000, 100);
  const drainMs = Date.now() - t1;
  const lost = [...confirmed].filter((n) => !runs.has(n));
  const duplicates = [...runs.values()].filter((c) => c > 1).length;
  const retried = logLines.filter((l) => /not confirmed: .*retrying/.test(l)).length;
  console.log(`# restart fault: ${next} published, ${confirmed.size} confirmed, ${failed.size} failed, lost ${lost.length}, duplicates ${duplicates}, publish retries ${retried}, outage ${outageMs} ms, drain after publishing ${drainMs} ms`);
  assert.equal(lost.length, 0, 'no confirmed task lost');
  assert.equal(failed.size, 0, `every publish eventually confirmed: ${[...failed.values()].slice(0, 3).join(' | ')}`);
  assert.ok(retried > 0, 'the restart really hit publishing (some publishes were retried)');
  assert.ok(logLines.some((l) => /Lost the AMQP connection \(consumer\)/.test(l)), 'the consumer saw the connection drop');
  assert.ok(logLines.some((l) => /Resumed consuming from/.test(l)), 'the consumer resumed by itself');

  // And it keeps working after the restart: a fresh task runs.
  const after = next + 1;
  await producer.sendTask('fault.record', [after]);
  await eventually(() => runs.has(after), 'a task sent after the restart ran', 10_000);

  await worker.close();
  await workerApp.close();
  await producer.close();
});
