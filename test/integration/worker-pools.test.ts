// Execution pools on real brokers (Redis and RabbitMQ): autoscale grows and shrinks the pool,
// worker_max_memory_per_child replaces a child after the task that grew it, a thread that dies is
// WorkerLostError, revoke(terminate, signal) reaches a process child, and the CLI starts -P thread/process.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { ManagedProcess, REPO_ROOT } from '../interop/harness.js';
import { AMQP_URL, eventually, redisDb, requireRabbit, requireRedis, uniqueName } from '../helpers/services.js';
import { WORKER_TEST_BROKERS } from '../helpers/brokers.js';
import { makeApp } from './worker-app.js';
import type { Celeriac, Worker, WorkerOptions, TaskEvent } from '../../src/index.js';
import type { ChildExecutor } from '../../src/worker/child-executor.js';

const MODULE = fileURLToPath(new URL('./worker-app.ts', import.meta.url));
const BACKEND = redisDb(11);
const BROKERS = WORKER_TEST_BROKERS;

const open: { app: Celeriac; worker?: Worker }[] = [];
const procs: ManagedProcess[] = [];
after(async () => {
  for (const p of procs) if (p.running) process.kill(-p.pid, 'SIGKILL');
  for (const o of open) {
    await o.worker?.close({ cold: true }).catch(() => undefined);
    await o.app.close().catch(() => undefined);
  }
});

async function setup(broker: string, wopts: WorkerOptions = {}) {
  const queue = uniqueName('wt-pool');
  const app = makeApp(broker, BACKEND, { task_default_queue: queue });
  const worker = app.worker({ concurrency: 2, module: MODULE, loglevel: 'critical', hostname: `${queue}@test`, ...wopts });
  const started: string[] = [];
  worker.on('taskPrerun', (e: TaskEvent) => started.push(e.id));
  open.push({ app, worker });
  await worker.start();
  return { app, worker, queue, started };
}

const childPids = (w: Worker) => (w.executor as ChildExecutor).pids;

for (const b of BROKERS) {
  test(`[${b.name}] autoscale 3,1 (process pool): grows to 3 children under load, shrinks back to 1 when idle`, async () => {
    await b.check();
    const { app, worker } = await setup(b.url, { pool: 'process', autoscale: [3, 1], autoscaleKeepalive: 0.5 });
    assert.equal(worker.pool.concurrency, 1);
    assert.equal(childPids(worker).length, 1);
    const rs = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => app.sendTask('w.sleep', [1500, `s${i}`])));
    let most = 0;
    await eventually(() => {
      most = Math.max(most, worker.activeCount);
      return most === 3;
    }, '3 tasks running at once', 15_000, 20);
    assert.equal(worker.pool.concurrency, 3);
    assert.ok(childPids(worker).length >= 3, `children: ${childPids(worker).length}`);
    assert.deepEqual(await Promise.all(rs.map((r) => r.get({ timeout: 20_000 }))), ['s0', 's1', 's2', 's3', 's4', 's5']);
    assert.ok(worker.activeCount <= 3);
    await eventually(() => worker.pool.concurrency === 1 && childPids(worker).length === 1, 'the pool to shrink back to 1', 10_000);
    // Still serving after shrinking.
    assert.equal(await (await app.sendTask('w.add', [2, 3])).get({ timeout: 10_000 }), 5);
  });

  for (const pool of ['process', 'thread'] as const) {
    test(`[${b.name}] ${pool} pool: worker_max_memory_per_child replaces a child after the task that took it over the limit`, async () => {
      await b.check();
      const { app } = await setup(b.url, { pool, concurrency: 1, maxMemoryPerChild: 200_000 });
      const where = async () => (await (await app.sendTask('w.where', [])).get({ timeout: 15_000 })) as { pid: number; threadId: number };
      const id = (w: { pid: number; threadId: number }) => (pool === 'process' ? w.pid : w.threadId);
      const first = await where();
      assert.equal(id(await where()), id(first), 'a child under the limit is kept');
      const hog = (await (await app.sendTask('w.hog', [250])).get({ timeout: 15_000 })) as { pid: number; threadId: number };
      assert.equal(id(hog), id(first), 'the task that grows the child finishes in it');
      const next = await where();
      assert.notEqual(id(next), id(first), 'a child above 200,000 KiB is replaced after its task');
      assert.equal(id(await where()), id(next), 'the fresh child is kept');
    });
  }

  test(`[${b.name}] thread pool: a thread that exits mid-task gives WorkerLostError and is replaced`, async () => {
    await b.check();
    const { app } = await setup(b.url, { pool: 'thread', concurrency: 1 });
    const before = ((await (await app.sendTask('w.where', [])).get({ timeout: 15_000 })) as { threadId: number }).threadId;
    const lost = await app.sendTask('w.die', ['exit']);
    await assert.rejects(lost.get({ timeout: 15_000 }), (e: Error) => e.name === 'WorkerLostError' && /exited prematurely/.test(e.message));
    const after = (await (await app.sendTask('w.where', [])).get({ timeout: 15_000 })) as { threadId: number; mainThread: boolean };
    assert.notEqual(after.threadId, before, 'a new thread replaced the lost one');
    assert.equal(after.mainThread, false);
  });

  test(`[${b.name}] process pool: revoke(terminate, signal) sends that signal to the child`, async () => {
    await b.check();
    const { app, worker, started } = await setup(b.url, { pool: 'process', concurrency: 1 });
    const r = await app.sendTask('w.busy', [30_000]);
    await eventually(() => started.includes(r.id), 'the busy task to start', 15_000);
    const victim = childPids(worker)[0]!;
    // SIGTERM given by number (15), as Python may send it: the child is stopped.
    // destination: other workers on the shared test broker (Python ones too) must not answer this revoke.
    await app.control.revoke(r.id, { terminate: true, signal: 15, destination: [worker.hostname] });
    await assert.rejects(r.get({ timeout: 10_000 }), (e: Error) => e.name === 'TaskRevokedError');
    assert.deepEqual(((await r.meta()).result as { exc_message: unknown }).exc_message, ['terminated']);
    await eventually(() => !childPids(worker).includes(victim) && childPids(worker).length === 1, 'a fresh child', 15_000);
    // SIGWINCH is ignored by default: the child survives it and the task runs to its end (the signal is the one asked for, not SIGKILL).
    assert.equal(await (await app.sendTask('w.add', [1, 1])).get({ timeout: 15_000 }), 2, 'the fresh child serves');
    const w2 = await app.sendTask('w.sleep', [2000, 'survived']);
    await eventually(() => started.includes(w2.id), 'the sleep task to start', 15_000);
    const pid2 = childPids(worker)[0]!;
    await app.control.revoke(w2.id, { terminate: true, signal: 'SIGWINCH', destination: [worker.hostname] });
    assert.equal(await w2.get({ timeout: 10_000 }), 'survived');
    assert.ok(childPids(worker).includes(pid2), 'SIGWINCH does not kill the child');
  });

  for (const pool of ['thread', 'process'] as const) {
    test(`[${b.name}] CLI -P ${pool} -c 2: tasks run in ${pool === 'thread' ? 'worker threads' : 'child processes'}; a busy loop is stopped by its hard limit`, async () => {
      await b.check();
      const queue = uniqueName('wt-cli');
      const app = makeApp(b.url, BACKEND, { task_default_queue: queue });
      open.push({ app });
      const worker = new ManagedProcess(`celeriac worker -P ${pool}`, process.execPath, [
        path.join(REPO_ROOT, 'bin/celeriac.js'), '-A', MODULE, '-b', b.url, '--result-backend', BACKEND,
        'worker', '-P', pool, '-c', '2', '-Q', queue, '-n', `${queue}@test`, '-l', 'info',
      ], { cwd: REPO_ROOT, env: process.env });
      procs.push(worker);
      await worker.waitForOutput(/ready\./, 30_000, 'the worker to be ready');
      assert.match(worker.logs, new RegExp(`concurrency: 2 \\(${pool}\\)`));
      const busy = await app.sendTask('w.busy', [30_000], {}, { time_limit: 1 });
      const places = await Promise.all([0, 1, 2].map(async () => (await (await app.sendTask('w.where', [])).get({ timeout: 15_000 })) as { pid: number; mainThread: boolean }));
      for (const p of places) {
        if (pool === 'thread') {
          assert.equal(p.pid, worker.pid, 'a thread runs in the worker process');
          assert.equal(p.mainThread, false);
        } else {
          assert.notEqual(p.pid, worker.pid, 'a child process runs the task');
          assert.equal(p.mainThread, true);
        }
      }
      await assert.rejects(busy.get({ timeout: 15_000 }), (e: Error) => e.name === 'TimeLimitExceeded');
      assert.equal(await (await app.sendTask('w.add', [1, 2])).get({ timeout: 15_000 }), 3);
      const exited = new Promise<number | null>((r) => worker.child.once('exit', (code) => r(code)));
      process.kill(worker.pid, 'SIGTERM');
      assert.equal(await exited, 0, worker.tail());
    });
  }
}
