// Worker semantics on real brokers, the same tests on Redis and on RabbitMQ: eta/countdown, expires, retries,
// autoretry, acks_late + worker lost, time limits in every pool, max tasks per child, rate limits, revoke,
// track_started/ignore_result/result_extended, hooks, statedb.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AMQP_URL, eventually, redisDb, requireRabbit, requireRedis, sleep, uniqueName } from '../helpers/services.js';
import { WORKER_TEST_BROKERS } from '../helpers/brokers.js';
import { makeApp } from './worker-app.js';
import type { Celeriac, Worker, WorkerOptions, TaskEvent } from '../../src/index.js';

const MODULE = fileURLToPath(new URL('./worker-app.ts', import.meta.url));
const BACKEND = redisDb(11);
const BROKERS = WORKER_TEST_BROKERS;

const open: { app: Celeriac; worker?: Worker }[] = [];
after(async () => {
  for (const o of open) {
    await o.worker?.close({ cold: true }).catch(() => undefined);
    await o.app.close().catch(() => undefined);
  }
});

async function setup(broker: string, settings: Record<string, unknown> = {}, wopts: WorkerOptions = {}, start = true) {
  const queue = uniqueName('wt');
  const app = makeApp(broker, BACKEND, { task_default_queue: queue, ...settings });
  const worker = app.worker({ concurrency: 2, module: MODULE, loglevel: 'critical', hostname: `${queue}@test`, ...wopts });
  const events: (TaskEvent & { kind: string })[] = [];
  for (const kind of ['taskPrerun', 'taskSuccess', 'taskFailure', 'taskRetry', 'taskRevoked', 'taskPostrun']) {
    worker.on(kind, (e: TaskEvent) => events.push({ kind, ...e }));
  }
  open.push({ app, worker });
  if (start) await worker.start();
  return { app, worker, queue, events, runs: (id: string) => events.filter((e) => e.kind === 'taskPrerun' && e.id === id).length };
}

for (const b of BROKERS) {
  test(`[${b.name}] countdown: held until due, not run early`, async () => {
    await b.check();
    const { app } = await setup(b.url);
    const t0 = Date.now();
    const r = await app.sendTask('w.add', [2, 3], {}, { countdown: 1.2 });
    await sleep(600);
    assert.equal(await r.state(), 'PENDING', 'ran before its countdown');
    assert.equal(await r.get({ timeout: 10_000 }), 5);
    assert.ok(Date.now() - t0 >= 1150, `ran after ${Date.now() - t0} ms, countdown was 1200`);
  });

  test(`[${b.name}] eta: a held message survives a warm restart of the worker`, async () => {
    await b.check();
    const first = await setup(b.url);
    const r = await first.app.sendTask('w.add', [1, 1], {}, { eta: new Date(Date.now() + 1500) });
    await eventually(() => first.events.length === 0 && first.worker.listenerCount('taskPrerun') > 0, 'worker to receive');
    await sleep(300); // let the worker take and hold it
    await first.worker.close();
    assert.equal(first.runs(r.id), 0);
    const second = await setup(b.url, { task_default_queue: first.queue });
    assert.equal(await r.get({ timeout: 10_000 }), 2);
    assert.equal(second.runs(r.id), 1);
  });

  test(`[${b.name}] expires: an expired task is REVOKED and never runs`, async () => {
    await b.check();
    const { app, runs } = await setup(b.url);
    const r = await app.sendTask('w.add', [1, 2], {}, { expires: new Date(Date.now() - 1000) });
    await eventually(async () => (await r.state()) === 'REVOKED', 'REVOKED state');
    const meta = await r.meta();
    assert.deepEqual((meta.result as { exc_message: unknown }).exc_message, ['expired']);
    assert.equal(runs(r.id), 0);
  });

  test(`[${b.name}] retry: same id republished with retries+1, RETRY stored, then success`, async () => {
    await b.check();
    const { app, events } = await setup(b.url);
    const r = await app.sendTask('w.retry', [2]);
    await eventually(async () => (await r.state()) === 'RETRY', 'RETRY state', 5000, 20);
    assert.equal((await r.meta()).result && ((await r.meta()).result as { exc_type?: string }).exc_type, 'FlakyError');
    assert.deepEqual(await r.get({ timeout: 10_000 }), { retries: 2 });
    assert.equal(events.filter((e) => e.kind === 'taskRetry' && e.id === r.id).length, 2);
  });

  test(`[${b.name}] retry: MaxRetriesExceededError when exhausted`, async () => {
    await b.check();
    const { app, runs } = await setup(b.url);
    const r = await app.sendTask('w.always_retry', []);
    await assert.rejects(r.get({ timeout: 10_000 }), (e: Error) => e.name === 'MaxRetriesExceededError');
    assert.equal(runs(r.id), 3, 'first run + max_retries=2 retries');
  });

  test(`[${b.name}] autoretry_for with retry_backoff`, async () => {
    await b.check();
    const { app, events } = await setup(b.url);
    const r = await app.sendTask('w.flaky', [1]);
    assert.equal(await r.get({ timeout: 10_000 }), 1);
    assert.equal(events.filter((e) => e.kind === 'taskRetry' && e.id === r.id).length, 1);
  });

  test(`[${b.name}] worker lost: FAILURE WorkerLostError, or bounded requeue with reject_on_worker_lost`, async () => {
    await b.check();
    const lost = await setup(b.url, { task_acks_late: true }, { pool: 'process', concurrency: 1 });
    const r1 = await lost.app.sendTask('w.die', ['kill']);
    await assert.rejects(r1.get({ timeout: 15_000 }), (e: Error) => e.name === 'WorkerLostError');
    await sleep(300);
    assert.equal(lost.runs(r1.id), 1, 'acks_late without reject_on_worker_lost: not redelivered');
    const requeue = await setup(b.url, { task_acks_late: true, task_reject_on_worker_lost: true, task_max_redeliveries: 2 }, { pool: 'process', concurrency: 1 });
    const r2 = await requeue.app.sendTask('w.die', ['kill']);
    await assert.rejects(r2.get({ timeout: 20_000 }), (e: Error) => e.name === 'WorkerLostError');
    assert.equal(requeue.runs(r2.id), 3, 'first delivery + 2 requeues, then FAILURE (never a loop)');
    assert.equal(await requeue.app.AsyncResult(r2.id).state(), 'FAILURE');
    // The worker keeps serving after its children died.
    assert.equal(await (await requeue.app.sendTask('w.add', [3, 4])).get({ timeout: 10_000 }), 7);
  });

  for (const pool of ['thread', 'process'] as const) {
    test(`[${b.name}] ${pool} pool: hard limit stops a CPU-bound task; other tasks keep running; soft limit is catchable`, async () => {
      await b.check();
      const { app } = await setup(b.url, {}, { pool, concurrency: 2 });
      const t0 = Date.now();
      const busy = await app.sendTask('w.busy', [20_000], {}, { time_limit: 1 });
      const others = await Promise.all([1, 2, 3].map((i) => app.sendTask('w.add', [i, i])));
      assert.deepEqual(await Promise.all(others.map((o) => o.get({ timeout: 10_000 }))), [2, 4, 6]);
      await assert.rejects(busy.get({ timeout: 10_000 }), (e: Error) => e.name === 'TimeLimitExceeded');
      const took = Date.now() - t0;
      assert.ok(took < 5000, `hard limit of 1 s took ${took} ms`);
      const soft = await app.sendTask('w.soft', [10_000], {}, { soft_time_limit: 0.3 });
      assert.equal(await soft.get({ timeout: 10_000 }), 'soft-caught');
      assert.equal(await (await app.sendTask('w.add', [20, 22])).get({ timeout: 10_000 }), 42, 'the pool serves after the kill');
    });
  }

  test(`[${b.name}] process pool: worker_max_tasks_per_child replaces the child`, async () => {
    await b.check();
    const { app } = await setup(b.url, {}, { pool: 'process', concurrency: 1, maxTasksPerChild: 2 });
    const pids: number[] = [];
    for (let i = 0; i < 4; i++) pids.push(((await (await app.sendTask('w.pid', [])).get({ timeout: 10_000 })) as { pid: number }).pid);
    assert.equal(pids[0], pids[1]);
    assert.notEqual(pids[1], pids[2], 'a new child after 2 tasks');
    assert.equal(pids[2], pids[3]);
  });

  test(`[${b.name}] async pool: hard limit fails the task with TimeLimitExceeded, soft aborts its signal`, async () => {
    await b.check();
    const { app } = await setup(b.url);
    const r = await app.sendTask('w.sleep', [10_000, 'x'], {}, { time_limit: 0.5, soft_time_limit: 0.2 });
    await assert.rejects(r.get({ timeout: 10_000 }), (e: Error) => e.name === 'SoftTimeLimitExceeded' || e.name === 'TimeLimitExceeded');
    const h = await app.sendTask('w.busy', [10], {}, { time_limit: 0.5 });
    assert.equal(await h.get({ timeout: 10_000 }), true);
  });

  test(`[${b.name}] rate_limit '5/s' spaces tasks per worker`, async () => {
    await b.check();
    const { app } = await setup(b.url, {}, { concurrency: 4 });
    const rs = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => app.sendTask('w.limited', [i])));
    const at = (await Promise.all(rs.map((r) => r.get({ timeout: 10_000 })))).map((v) => (v as { at: number }).at).sort((x, y) => x - y);
    const span = at[at.length - 1]! - at[0]!;
    assert.ok(span >= 900, `6 tasks at 5/s took ${span} ms (expected >= 1000 ms less jitter)`);
  });

  test(`[${b.name}] revoke: a held task is discarded and REVOKED; terminate stops a running task`, async () => {
    await b.check();
    const { app, runs } = await setup(b.url);
    const held = await app.sendTask('w.add', [1, 1], {}, { countdown: 1.5 });
    await sleep(400);
    await app.control.revoke(held.id);
    await eventually(async () => (await held.state()) === 'REVOKED', 'REVOKED after revoke', 5000);
    await sleep(1500);
    assert.equal(runs(held.id), 0, 'a revoked task must not run');
    const running = await app.sendTask('w.sleep', [20_000, 'never']);
    await eventually(() => runs(running.id) === 1, 'the task to start');
    const t0 = Date.now();
    await running.revoke({ terminate: true });
    await assert.rejects(running.get({ timeout: 5000 }), (e: Error) => e.name === 'TaskRevokedError');
    assert.ok(Date.now() - t0 < 3000);
    assert.deepEqual(((await running.meta()).result as { exc_message: unknown }).exc_message, ['terminated']);
    assert.equal(await (await app.sendTask('w.add', [2, 2])).get({ timeout: 10_000 }), 4);
  });

  test(`[${b.name}] track_started, ignore_result, store_errors_even_if_ignored, result_extended`, async () => {
    await b.check();
    const { app } = await setup(b.url, { task_track_started: true, result_extended: true });
    const r = await app.sendTask('w.sleep', [700, 'done']);
    await eventually(async () => (await r.state()) === 'STARTED', 'STARTED', 5000, 20);
    assert.equal(await r.get({ timeout: 10_000 }), 'done');
    const meta = await r.meta();
    assert.equal(meta.name, 'w.sleep');
    assert.deepEqual(meta.args, [700, 'done']);
    const ign = await app.sendTask('w.add', [1, 1], {}, { ignore_result: true });
    const failIgnored = await app.sendTask('w.fail', [], {}, { ignore_result: true });
    const marker = await app.sendTask('w.add', [0, 0]);
    await marker.get({ timeout: 10_000 });
    await sleep(200);
    assert.equal(await ign.state(), 'PENDING', 'ignore_result stores nothing');
    assert.equal(await failIgnored.state(), 'PENDING');
    const { app: app2 } = await setup(b.url, { task_store_errors_even_if_ignored: true });
    const f2 = await app2.sendTask('w.fail', [], {}, { ignore_result: true });
    await eventually(async () => (await app2.AsyncResult(f2.id).state()) === 'FAILURE', 'error stored even if ignored');
  });

  test(`[${b.name}] hooks fire in Celery's order`, async () => {
    await b.check();
    const { app, worker, events } = await setup(b.url, {}, {}, false);
    const lifecycle: string[] = [];
    worker.on('workerReady', () => lifecycle.push('ready'));
    worker.on('workerShutdown', () => lifecycle.push('shutdown'));
    await worker.start();
    const ok = await app.sendTask('w.add', [1, 2]);
    const bad = await app.sendTask('w.fail', []);
    await ok.get({ timeout: 10_000 });
    await bad.get({ timeout: 10_000 }).catch(() => undefined);
    await sleep(100);
    assert.deepEqual(events.filter((e) => e.id === ok.id).map((e) => e.kind), ['taskPrerun', 'taskSuccess', 'taskPostrun']);
    assert.deepEqual(events.filter((e) => e.id === bad.id).map((e) => e.kind), ['taskPrerun', 'taskFailure', 'taskPostrun']);
    await worker.close();
    assert.deepEqual(lifecycle, ['ready', 'shutdown']);
  });
}

test('[redis] statedb: revoked ids survive a restart', async () => {
  await requireRedis();
  const statedb = path.join(mkdtempSync(path.join(tmpdir(), 'celeriac-statedb-')), 'worker.state');
  const first = await setup(redisDb(10), {}, { statedb });
  const id = `revoked-${Date.now()}`;
  await first.app.control.revoke(id);
  await eventually(() => first.worker.revoked.has(id), 'the revoke to arrive');
  await first.worker.close();
  const second = await setup(redisDb(10), {}, { statedb, remoteControl: false });
  const r = await second.app.sendTask('w.add', [1, 1], {}, { task_id: id });
  await eventually(async () => (await r.state()) === 'REVOKED', 'REVOKED after restart');
  assert.equal(second.runs(id), 0);
});
