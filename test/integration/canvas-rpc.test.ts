// rpc:// and canvases (RabbitMQ): chords are refused with Celery's words before anything is sent (results
// go to one client, so no worker can join them); chains and groups work, every step replying to the client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, createLogger } from '../../src/index.js';
import { chain, chord, group, type AnySignature } from '../../src/canvas/index.js';
import { AMQP_URL, requireRabbit, uniqueName } from '../helpers/services.js';

test('rpc:// refuses a chord (also one made from a group followed by a step) and sends nothing; chains and groups reply to the client', async () => {
  await requireRabbit();
  const queue = uniqueName('canvas-rpc');
  const logger = createLogger('critical');
  const app = new Celeriac('rpc', { broker: AMQP_URL, backend: 'rpc://', task_default_queue: queue, logger });
  const add = app.task('r.add', (x: number, y: number) => x + y);
  const tsum = app.task('r.tsum', (xs: number[]) => xs.reduce((a, b) => a + b, 0));
  const refused: (() => AnySignature)[] = [() => chord([add.s(1, 1)], tsum.s()), () => chain(add.s(1, 1), group(add.s(1), add.s(2)), tsum.s())];
  try {
    for (const make of refused) {
      await assert.rejects(make().applyAsync(), (e: Error) => e.name === 'NotImplementedError' && /The "rpc" result backend does not support chords!/.test(e.message));
    }
    assert.equal(await (await app.broker()).queueLength(queue), 0, 'nothing was published');
    const worker = app.worker({ queues: [queue], concurrency: 2, logger });
    await worker.start();
    try {
      const c = await chain(add.s(1, 2), add.s(10)).applyAsync();
      assert.equal(await c.get({ timeout: 10_000 }), 13);
      assert.deepEqual(await (await group(add.s(1, 1), add.s(2, 2)).applyAsync()).get({ timeout: 10_000 }), [2, 4]);
    } finally {
      await worker.close();
    }
  } finally {
    await app.close();
  }
});
