// task_serializer, result_serializer, accept_content and result_accept_content, honoured for json and
// msgpack; pickle and yaml refused at start with kombu's words. (Python interop: the fidelity matrix.)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, ContentDisallowed, EncodeError, SerializerNotInstalled, type Worker } from '../../src/index.js';
import type { RedisBackend } from '../../src/backends/redis.js';
import { eventually, redisDb, requireRedis, uniqueName } from '../helpers/services.js';
import { captureLogger } from './sqlite-fixtures.js';

const open: { app: Celeriac; worker?: Worker }[] = [];
after(async () => {
  for (const o of open) {
    await o.worker?.close().catch(() => undefined);
    await o.app.close().catch(() => undefined);
  }
});

function memoryApp(settings: Record<string, unknown>): Celeriac {
  const url = `memory://${uniqueName('ser')}`;
  const app = new Celeriac('ser', { broker: url, backend: url, ...settings });
  app.task('s.echo', (v: unknown) => v);
  open.push({ app });
  return app;
}

test('pickle and yaml are refused at the first publish and at worker start, with kombu\'s SerializerNotInstalled', async () => {
  await assert.rejects(memoryApp({ task_serializer: 'pickle' }).sendTask('s.echo', [1]), (e: Error) => e instanceof SerializerNotInstalled && e.message.startsWith('No encoder installed for pickle (task_serializer'));
  await assert.rejects(memoryApp({ result_serializer: 'yaml' }).sendTask('s.echo', [1]), (e: Error) => e instanceof SerializerNotInstalled && e.message.startsWith('No encoder installed for yaml (result_serializer'));
  const app = memoryApp({ accept_content: ['json', 'pickle'] });
  const worker = app.worker({ loglevel: 'critical' });
  await assert.rejects(worker.start(), (e: Error) => e instanceof SerializerNotInstalled && e.message.startsWith('No encoder/decoder installed for pickle (accept_content'));
});

test('msgpack for tasks and results on Redis: the stored meta is msgpack, and values come back exactly', async () => {
  await requireRedis();
  const queue = uniqueName('ser');
  const app = new Celeriac('ser', {
    broker: redisDb(12), backend: redisDb(13), task_default_queue: queue,
    task_serializer: 'msgpack', result_serializer: 'msgpack', accept_content: ['json', 'msgpack'],
  });
  app.task('s.echo', (v: unknown) => v);
  const worker = app.worker({ concurrency: 2, loglevel: 'critical', hostname: `${queue}@test` });
  open.push({ app, worker });
  await worker.start();
  const value = { big: 2n ** 63n + 5n, bytes: Buffer.from('ff00', 'hex'), neg: -0, list: [1, 'x', null], when: new Date('2024-01-02T03:04:05.678Z') };
  const r = await app.sendTask('s.echo', [value]);
  const got = (await r.get({ timeout: 15_000 })) as typeof value;
  assert.equal(got.big, value.big);
  assert.deepEqual(got.bytes, value.bytes);
  assert.ok(Object.is(got.neg, -0));
  assert.deepEqual(got.list, value.list);
  assert.equal(got.when.getTime(), value.when.getTime());
  const raw = await (await (app.backend() as Promise<RedisBackend>)).commandClient().then((c) => c.getBuffer(`celery-task-meta-${r.id}`));
  assert.ok(raw && raw[0]! >= 0x80 && raw[0]! <= 0x8f, 'a msgpack map, not JSON text');
  await assert.rejects(app.sendTask('s.echo', [2n ** 64n]), EncodeError, 'msgpack has no integer beyond 64 bits');
});

test('a worker whose accept_content lacks msgpack rejects a msgpack task unrun; a client whose result_accept_content lacks it refuses the result', async () => {
  const url = `memory://${uniqueName('ser')}`;
  const log = captureLogger();
  const jsonOnly = new Celeriac('ser', { broker: url, backend: url, accept_content: ['json'] });
  let ran = 0;
  jsonOnly.task('s.echo', (v: unknown) => { ran++; return v; });
  const worker = jsonOnly.worker({ concurrency: 1, logger: log.logger });
  open.push({ app: jsonOnly, worker });
  await worker.start();
  const producer = new Celeriac('ser', { broker: url, backend: url, task_serializer: 'msgpack', result_serializer: 'msgpack', accept_content: ['json', 'msgpack'], result_accept_content: ['json'] });
  open.push({ app: producer });
  await producer.sendTask('s.echo', [1]);
  await eventually(() => log.lines.some((l) => /Refusing to deserialize untrusted content of type msgpack \(application\/x-msgpack\)/.test(l)), 'the refusal in the log');
  assert.equal(ran, 0);
  // A msgpack result read by a client that accepts only json.
  const both = new Celeriac('ser', { broker: url, backend: url, result_serializer: 'msgpack', accept_content: ['json', 'msgpack'] });
  both.task('s.echo', (v: unknown) => v);
  const w2 = both.worker({ concurrency: 1, loglevel: 'critical', queues: ['other'] });
  open.push({ app: both, worker: w2 });
  await w2.start();
  const r = await producer.sendTask('s.echo', [7], {}, { queue: 'other', serializer: 'json' });
  await assert.rejects(r.get({ timeout: 10_000 }), (e: Error) => e instanceof ContentDisallowed);
});

test('an argument that cannot be encoded rejects applyAsync with EncodeError and nothing is published', async () => {
  const app = memoryApp({});
  const loop: Record<string, unknown> = {};
  loop.loop = loop;
  for (const bad of [loop, new Date('nope'), { __type__: 'widget', __value__: 3 }]) {
    await assert.rejects(app.sendTask('s.echo', [bad]), (e: Error) => e instanceof EncodeError && e.name === 'EncodeError');
  }
  assert.equal(await (await app.broker()).queueLength('celery'), 0);
});
