// The strategy (every decision before the pool) on memory://: unknown, revoked, expired, ETA, bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, type TaskEvent } from '../../../src/index.js';
import { encodeTaskV2 } from '../../../src/protocol/message.js';
import { eventually, uniqueName } from '../../helpers/services.js';

async function setup() {
  const url = `memory://${uniqueName('strategy')}`;
  const app = new Celeriac('strategy', { broker: url, backend: url, task_default_queue: 'q' });
  const ran: string[] = [];
  const echo = app.task('s.echo', (tag: string) => {
    ran.push(tag);
    return tag;
  });
  const worker = app.worker({ concurrency: 2, loglevel: 'critical', remoteControl: false });
  const events: TaskEvent[] = [];
  for (const e of ['taskFailure', 'taskRevoked', 'taskSuccess']) worker.on(e, (ev: TaskEvent) => events.push({ ...ev, state: ev.state ?? e }));
  await worker.start();
  const broker = await app.broker();
  return { app, echo, worker, ran, events, broker, close: async () => { await worker.close(); await app.close(); } };
}

test('an unregistered task is stored as FAILURE NotRegistered and dropped; the worker keeps serving', async () => {
  const s = await setup();
  const r = await s.app.sendTask('s.nobody', []);
  await assert.rejects(r.get({ timeout: 5000 }), (e: Error) => e.name === 'NotRegistered');
  assert.equal(await (await s.echo.delay('after')).get({ timeout: 5000 }), 'after');
  assert.equal(await s.broker.queueLength('q'), 0);
  await s.close();
});

test('undecodable and disallowed messages are settled and never run', async () => {
  const s = await setup();
  await s.broker.publish({ headers: { id: 'junk', task: 's.echo' }, properties: {}, body: Buffer.from('{not json'), contentType: 'application/json', contentEncoding: 'utf-8' }, { exchange: '', routingKey: 'q' });
  const yaml = encodeTaskV2('s.echo', ['yaml'], {});
  await s.broker.publish({ ...yaml, contentType: 'application/x-yaml' }, { exchange: '', routingKey: 'q' });
  assert.equal(await (await s.echo.delay('ok')).get({ timeout: 5000 }), 'ok');
  assert.deepEqual(s.ran, ['ok']);
  await s.close();
});

test('a revoked or expired task is stored REVOKED and never runs', async () => {
  const s = await setup();
  s.worker.revoked.add('revoked-id');
  const revoked = await s.echo.applyAsync(['no'], {}, { task_id: 'revoked-id' });
  const expired = await s.echo.applyAsync(['no'], {}, { expires: new Date(Date.now() - 1000) });
  await eventually(async () => (await revoked.state()) === 'REVOKED' && (await expired.state()) === 'REVOKED', 'both REVOKED');
  assert.deepEqual(s.ran, []);
  assert.equal(s.events.filter((e) => e.state === 'REVOKED').length, 2);
  await s.close();
});

test('an ETA task is held (counted against the consumer) until due, then runs; others run meanwhile', async () => {
  const s = await setup();
  const later = await s.echo.applyAsync(['later'], {}, { countdown: 1.5 });
  await eventually(() => s.worker.eta.size === 1, 'the ETA message held');
  assert.equal(await (await s.echo.delay('now')).get({ timeout: 5000 }), 'now');
  assert.deepEqual(s.ran, ['now']);
  assert.equal(await later.get({ timeout: 10_000 }), 'later');
  assert.equal(s.worker.eta.size, 0);
  await s.close();
});
