// Request: one task run, settled exactly once, through the outcome Celery would pick (memory://).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, Ignore, Reject, type TaskEvent } from '../../../src/index.js';
import { Request } from '../../../src/worker/request.js';
import type { Delivery } from '../../../src/brokers/types.js';
import { decodeTask, encodeTaskV2 } from '../../../src/protocol/message.js';
import { eventually, uniqueName } from '../../helpers/services.js';

async function setup(settings: Record<string, unknown> = {}) {
  const url = `memory://${uniqueName('request')}`;
  const app = new Celeriac('request', { broker: url, backend: url, task_default_queue: 'q', ...settings });
  const worker = app.worker({ concurrency: 1, loglevel: 'critical', remoteControl: false });
  const postrun: string[] = [];
  worker.on('taskPostrun', (e: TaskEvent) => postrun.push(`${e.name}:${e.state}`));
  return { app, worker, postrun, broker: () => app.broker(), close: async () => { await worker.close(); await app.close(); } };
}

test('acks_late outcomes: Reject(requeue) runs again, Reject drops, Ignore acks, a failure stores FAILURE and acks', async () => {
  const s = await setup({ task_acks_late: true });
  let calls = 0;
  s.app.task('r.requeue_once', () => {
    if (++calls === 1) throw new Reject('first time', true);
    return 'second';
  });
  s.app.task('r.drop', () => { throw new Reject('no', false); });
  s.app.task('r.ignore', () => { throw new Ignore(); });
  s.app.task('r.fail', () => { throw new RangeError('bad'); });
  await s.worker.start();
  const again = await s.app.sendTask('r.requeue_once');
  assert.equal(await again.get({ timeout: 5000 }), 'second');
  await s.app.sendTask('r.drop');
  await s.app.sendTask('r.ignore');
  const fail = await s.app.sendTask('r.fail');
  await assert.rejects(fail.get({ timeout: 5000 }), (e: Error) => e.name === 'RangeError');
  await eventually(() => s.postrun.length === 5, 'five outcomes');
  assert.deepEqual(s.postrun.sort(), ['r.drop:REJECTED', 'r.fail:FAILURE', 'r.ignore:IGNORED', 'r.requeue_once:REJECTED', 'r.requeue_once:SUCCESS']);
  assert.equal(await (await s.broker()).queueLength('q'), 0, 'nothing left to run again');
  await s.close();
});

test('settle() acknowledges a message once, however often it is called', async () => {
  const s = await setup();
  const task = s.app.task('r.once', () => 1);
  await s.worker.start();
  let acks = 0;
  let rejects = 0;
  const message = encodeTaskV2('r.once', [], {});
  const delivery: Delivery = {
    message, queue: 'q', exchange: '', routingKey: 'q', deliveryTag: 't1', redelivered: false,
    ack: async () => { acks++; },
    reject: async () => { rejects++; },
  };
  const request = new Request(s.worker.runtime, delivery, decodeTask(message), task);
  await Promise.all([request.settle('ack'), request.settle('reject'), request.settle('requeue')]);
  assert.equal(request.acknowledged, true);
  assert.deepEqual({ acks, rejects }, { acks: 1, rejects: 0 });
  await s.close();
});

test('an early-acked task is acknowledged before its handler runs, and its failure settles nothing twice', async () => {
  const s = await setup();
  let acks = 0;
  let acksSeenByHandler = -1;
  const task = s.app.task('r.boom', () => {
    acksSeenByHandler = acks;
    throw new Error('boom');
  });
  await s.worker.start();
  const message = encodeTaskV2('r.boom', [], {});
  const delivery: Delivery = {
    message, queue: 'q', exchange: '', routingKey: 'q', deliveryTag: 't2', redelivered: false,
    ack: async () => { acks++; },
    reject: async () => { throw new Error('an early-acked message is never rejected'); },
  };
  await new Request(s.worker.runtime, delivery, decodeTask(message), task).execute();
  await eventually(() => s.postrun.includes('r.boom:FAILURE'), 'the failure reported');
  assert.equal(acksSeenByHandler, 1, 'acked when the pool accepted it, before the handler ran');
  assert.equal(acks, 1, 'the failure did not settle it again');
  await s.close();
});
