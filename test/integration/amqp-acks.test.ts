// Batched acks on RabbitMQ (one basic.ack multiple=true per contiguous run): acks finishing out of order,
// mixed with rejects, settle every delivery exactly once, so nothing comes back after the worker stops.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, Reject } from '../../src/index.js';
import { AMQP_URL, eventually, requireRabbit, sleep, uniqueName } from '../helpers/services.js';

before(requireRabbit);

test('acks_late tasks finishing out of order, with rejects among them, are each settled once', { timeout: 60_000 }, async () => {
  const queue = uniqueName('amqp-acks');
  const runs = new Map<number, number>();
  const makeApp = () => {
    const app = new Celeriac('acks', { broker: AMQP_URL, task_default_queue: queue, task_acks_late: true, task_ignore_result: true });
    app.task('acks.work', async (i: number) => {
      runs.set(i, (runs.get(i) ?? 0) + 1);
      // Later deliveries often finish first, so acks arrive out of delivery order.
      await sleep((i * 7919) % 23);
      if (i % 25 === 0) throw new Reject('dropped on purpose', false);
      return i;
    });
    return app;
  };
  const app = makeApp();
  const N = 400;
  await app.tasks.get('acks.work')!.applyBulk(Array.from({ length: N }, (_, i) => ({ args: [i] })));
  const worker = app.worker({ queues: [queue], concurrency: 16, loglevel: 'error' });
  await worker.start();
  await eventually(() => runs.size === N, `all ${N} tasks to run`, 30_000);
  await sleep(300); // the last acks leave on the next turn of the event loop
  await worker.close();
  await app.close();

  // A second worker on the same queue: anything not acked (or rejected) would be redelivered to it.
  const again = makeApp();
  const w2 = again.worker({ queues: [queue], concurrency: 4, loglevel: 'error' });
  await w2.start();
  await sleep(1500);
  const broker = await again.broker();
  const left = await broker.queueLength(queue);
  await w2.close();
  await again.close();
  assert.equal(left, 0, 'queue is empty');
  const twice = [...runs].filter(([, n]) => n !== 1).map(([i]) => i);
  assert.deepEqual(twice, [], 'no task ran twice (an unsent or wrong ack would have been redelivered)');
  assert.equal(runs.size, N);
});
