// global_rate_limit: one token bucket per task name shared by every worker on the broker (Celery's
// rate_limit is per worker). Two workers on separate connections share a queue; 30 tasks at '10/s'
// must take about 2.9 s in total, while the same tasks without the limit finish far sooner.
// Redis (Lua bucket on the broker), RabbitMQ + Redis result backend, SQLite (a table in the embedded file),
// memory:// (in-process).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AMQP_URL, redisDb, requireRabbit, requireRedis, uniqueName } from '../helpers/services.js';
import { Celeriac, type Worker } from '../../src/index.js';

const BACKEND = redisDb(11);
const N = 30;

const open: { app: Celeriac; worker?: Worker }[] = [];
after(async () => {
  for (const o of open) {
    await o.worker?.close({ cold: true }).catch(() => undefined);
    await o.app.close().catch(() => undefined);
  }
});

/** An app whose `limited` task has a global limit of 10/s and whose `free` task has none. */
function makeApp(broker: string, backend: string | null, queue: string, names: { limited: string; free: string }): Celeriac {
  const app = new Celeriac('global-rate-limit-tests', { broker, ...(backend ? { backend } : {}), task_default_queue: queue });
  const stamp = (task: { request: { hostname?: string | null } }) => ({ at: Date.now(), worker: task.request.hostname });
  app.task(names.limited, stamp, { bind: true, globalRateLimit: '10/s' });
  app.task(names.free, stamp, { bind: true });
  return app;
}

async function twoWorkers(broker: string, backend: string | null) {
  const queue = uniqueName('wt-grl');
  const names = { limited: `g.limited.${queue}`, free: `g.free.${queue}` };
  const workers: Worker[] = [];
  for (const n of ['a', 'b']) {
    const app = makeApp(broker, backend, queue, names);
    const worker = app.worker({ concurrency: 4, prefetchMultiplier: 4, loglevel: 'critical', hostname: `${n}-${queue}@test` });
    open.push({ app, worker });
    await worker.start();
    workers.push(worker);
  }
  const client = makeApp(broker, backend, queue, names);
  open.push({ app: client });
  return { client, names, workers };
}

async function runAll(client: Celeriac, name: string): Promise<{ span: number; byWorker: Map<string, number> }> {
  const rs = [];
  for (let i = 0; i < N; i++) rs.push(await client.sendTask(name, []));
  const out = (await Promise.all(rs.map((r) => r.get({ timeout: 30_000 })))) as { at: number; worker: string }[];
  const at = out.map((o) => o.at).sort((x, y) => x - y);
  const byWorker = new Map<string, number>();
  for (const o of out) byWorker.set(o.worker, (byWorker.get(o.worker) ?? 0) + 1);
  return { span: at[at.length - 1]! - at[0]!, byWorker };
}

async function checkShared(broker: string, backend: string | null): Promise<void> {
  const { client, names } = await twoWorkers(broker, backend);
  const limited = await runAll(client, names.limited);
  // 30 tasks at 10/s, bucket of 1: 29 intervals of 100 ms. Per worker (no sharing) would be ~1.45 s.
  assert.ok(limited.span >= 2500, `${N} tasks at a global 10/s ran in ${limited.span} ms (expected >= ~2900 ms)`);
  assert.ok(limited.span < 15_000, `took ${limited.span} ms`);
  assert.equal(limited.byWorker.size, 2, `both workers must have run tasks: ${JSON.stringify([...limited.byWorker])}`);
  const free = await runAll(client, names.free);
  assert.ok(free.span < 2000, `${N} unlimited tasks took ${free.span} ms; the global limit must apply only to its task`);
}

test('[redis] global_rate_limit: two workers share one 10/s bucket (Lua on the broker)', async () => {
  await requireRedis();
  await checkShared(redisDb(10), BACKEND);
});

test('[amqp] global_rate_limit: two workers share one 10/s bucket through the Redis result backend', async () => {
  await requireRabbit();
  await requireRedis();
  await checkShared(AMQP_URL, BACKEND);
});

test('[sqlite] global_rate_limit: two workers share one 10/s bucket in the embedded database', async () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'celeriac-grl-')), 'broker.db');
  await checkShared(`sqlite:///${file}`, `sqlite:///${file}`);
});

test('[memory] global_rate_limit: two workers on one memory:// broker share one 10/s bucket in the process', async () => {
  await checkShared(`memory://${uniqueName('grl')}`, 'memory://');
});

test('[amqp] global_rate_limit without a Redis or SQLite result backend: the worker refuses to start and says what to configure', async () => {
  await requireRabbit();
  const queue = uniqueName('wt-grl');
  const app = makeApp(AMQP_URL, null, queue, { limited: `g.limited.${queue}`, free: `g.free.${queue}` });
  const worker = app.worker({ concurrency: 1, loglevel: 'critical' });
  open.push({ app, worker });
  await assert.rejects(worker.start(), (e: Error) => /global_rate_limit/.test(e.message) && /result_backend/.test(e.message) && e.message.includes(`g.limited.${queue}`));
});
