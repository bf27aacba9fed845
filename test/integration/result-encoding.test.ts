// A result that cannot be encoded fails its own task with Celery's EncodeError, on every result
// backend, and never changes another task's result (stored in the same batch or not).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, type Worker } from '../../src/index.js';
import { AMQP_URL, redisDb, requireRabbit, requireRedis, uniqueName } from '../helpers/services.js';
import { tempDb } from './sqlite-fixtures.js';

interface Setup {
  name: string;
  check: () => Promise<void>;
  urls: () => { broker: string; backend: string };
}

const SETUPS: Setup[] = [
  { name: 'redis', check: requireRedis, urls: () => ({ broker: redisDb(12), backend: redisDb(13) }) },
  { name: 'rpc', check: requireRabbit, urls: () => ({ broker: AMQP_URL, backend: 'rpc://' }) },
  { name: 'sqlite', check: async () => undefined, urls: () => { const { url } = tempDb(); return { broker: url, backend: url }; } },
  { name: 'memory', check: async () => undefined, urls: () => { const url = `memory://${uniqueName('enc')}`; return { broker: url, backend: url }; } },
];

/** The kinds of value JSON cannot carry, as a task might return them. */
function unencodable(kind: number): unknown {
  switch (kind % 5) {
    case 0: { const o: Record<string, unknown> = { a: 1 }; o.self = o; return o; }
    case 1: return { when: new Date('not-a-date') };
    case 2: return { bad: { toJSON() { throw new Error('toJSON refused'); } } };
    case 3: return { __type__: 'widget', __value__: 3 };
    default: { let deep: unknown = 1; for (let i = 0; i < 20_000; i++) deep = [deep]; return deep; }
  }
}

const open: { app: Celeriac; worker: Worker }[] = [];
after(async () => {
  for (const o of open) {
    await o.worker.close({ cold: true }).catch(() => undefined);
    await o.app.close().catch(() => undefined);
  }
});

for (const s of SETUPS) {
  test(`[${s.name}] 1,000 results with every tenth unencodable: 900 SUCCESS and 100 FAILURE/EncodeError, checked by id; the worker keeps running`, { timeout: 180_000 }, async () => {
    await s.check();
    const { broker, backend } = s.urls();
    const queue = uniqueName('enc');
    const app = new Celeriac('enc', { broker, backend, task_default_queue: queue });
    app.task('enc.parse', (i: number) => (i % 10 === 0 ? unencodable(i / 10) : { i, when: new Date(Date.UTC(2024, 1, 1 + (i % 28))) }));
    const worker = app.worker({ concurrency: 10, loglevel: 'critical', hostname: `${queue}@test` });
    open.push({ app, worker });
    await worker.start();
    const calls = Array.from({ length: 1000 }, (_, i) => ({ name: 'enc.parse', args: [i] }));
    const results = await app.sendTasks(calls);
    for (const [i, r] of results.entries()) {
      await r.get({ timeout: 60_000, propagate: false });
      const meta = await r.meta();
      assert.equal(meta.task_id, r.id);
      if (i % 10 === 0) {
        assert.equal(meta.status, 'FAILURE', `task ${i} (${r.id}) should fail with EncodeError, got ${meta.status}`);
        const exc = meta.result as { exc_type: string; exc_module: string; exc_message: unknown[] };
        assert.equal(exc.exc_type, 'EncodeError');
        assert.equal(exc.exc_module, 'kombu.exceptions');
        assert.ok(Array.isArray(exc.exc_message) && typeof exc.exc_message[0] === 'string' && exc.exc_message[0].length > 0, `exc_message ${JSON.stringify(exc.exc_message)}`);
        await assert.rejects(r.get({ timeout: 1000 }), (err: Error) => err.name === 'EncodeError');
      } else {
        assert.equal(meta.status, 'SUCCESS', `task ${i} (${r.id}): ${JSON.stringify(meta.result)}`);
        const value = meta.result as { i: number; when: unknown };
        assert.equal(value.i, i, `task ${i} (${r.id}) holds the result of task ${value.i}`);
      }
    }
    // The worker is still serving.
    const again = await app.sendTask('enc.parse', [7]);
    assert.equal(((await again.get({ timeout: 30_000 })) as { i: number }).i, 7);
  });
}

test('[redis] updateState(PROGRESS, {status: SUCCESS}) then return 42: get() gives 42 (the write-once rule reads the status field)', async () => {
  await requireRedis();
  const queue = uniqueName('enc');
  const app = new Celeriac('enc', { broker: redisDb(12), backend: redisDb(13), task_default_queue: queue });
  app.task('enc.progress', async (task) => {
    await task.updateState('PROGRESS', { status: 'SUCCESS', done: 1 });
    return 42;
  }, { bind: true });
  const worker = app.worker({ concurrency: 2, loglevel: 'critical', hostname: `${queue}@test` });
  open.push({ app, worker });
  await worker.start();
  const r = await app.sendTask('enc.progress');
  assert.equal(await r.get({ timeout: 15_000 }), 42);
});

test('[redis] updateState with a state that cannot be encoded raises EncodeError in the task, as Celery: caught, the task goes on; uncaught, the task fails with it', async () => {
  await requireRedis();
  const queue = uniqueName('enc');
  const app = new Celeriac('enc', { broker: redisDb(12), backend: redisDb(13), task_default_queue: queue });
  app.task('enc.progress-caught', async (task) => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    try {
      await task.updateState('PROGRESS', circular);
    } catch (err) {
      return `caught ${(err as Error).name}`;
    }
    return 'not raised';
  }, { bind: true });
  app.task('enc.progress-uncaught', async (task) => {
    await task.updateState('PROGRESS', { when: new Date('garbage') });
    return 'not raised';
  }, { bind: true });
  const worker = app.worker({ concurrency: 2, loglevel: 'critical', hostname: `${queue}@test` });
  open.push({ app, worker });
  await worker.start();
  assert.equal(await (await app.sendTask('enc.progress-caught')).get({ timeout: 15_000 }), 'caught EncodeError');
  const failed = await app.sendTask('enc.progress-uncaught');
  await assert.rejects(failed.get({ timeout: 15_000 }), (err: Error) => err.name === 'EncodeError');
});
