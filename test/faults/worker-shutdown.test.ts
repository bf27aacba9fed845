// Cold shutdown and worker_soft_shutdown_timeout of a CLI worker, on Redis and RabbitMQ, and the exit codes
// docs/worker.md documents. A cold shutdown (second SIGTERM, or SIGQUIT) exits 1 at once; unstarted
// messages and the acks_late tasks it stopped come back to the next worker; nothing that finished re-runs.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readLedger } from '../helpers/ledger.js';
import { ManagedProcess, REPO_ROOT } from '../interop/harness.js';
import { AMQP_URL, eventually, redisDb, requireRabbit, requireRedis, sleep, uniqueName } from '../helpers/services.js';
import { makeApp } from '../integration/worker-app.js';
import type { Celeriac, Worker } from '../../src/index.js';

const MODULE = fileURLToPath(new URL('../integration/worker-app.ts', import.meta.url));
const BACKEND = redisDb(11);
const apps: Celeriac[] = [];
const workers: Worker[] = [];
const procs: ManagedProcess[] = [];
after(async () => {
  for (const p of procs) if (p.running) process.kill(-p.pid, 'SIGKILL');
  for (const w of workers) await w.close({ cold: true }).catch(() => undefined);
  for (const a of apps) await a.close().catch(() => undefined);
});


function cliWorker(broker: string, queue: string, extra: string[] = []): { proc: ManagedProcess; exited: Promise<number | null> } {
  const proc = new ManagedProcess('celeriac worker', process.execPath, [
    path.join(REPO_ROOT, 'bin/celeriac.js'), '-A', MODULE, '-b', broker, '--result-backend', BACKEND,
    'worker', '-c', '2', '-Q', queue, '-n', `${queue}@test`, '-l', 'info', ...extra,
  ], { cwd: REPO_ROOT, env: process.env });
  procs.push(proc);
  const exited = new Promise<number | null>((r) => proc.child.once('exit', (code) => r(code)));
  return { proc, exited };
}

async function drainWith(broker: string, queue: string, file: string, expectEnds: number): Promise<void> {
  const app = makeApp(broker, BACKEND, { task_default_queue: queue });
  apps.push(app);
  const w = app.worker({ queues: [queue], concurrency: 8, loglevel: 'critical', hostname: `${queue}-2@test` });
  workers.push(w);
  await w.start();
  await eventually(() => readLedger(file).ends.size === expectEnds, `${expectEnds} tasks to finish on the second worker`, 30_000);
  await w.close();
}

const BROKERS = [
  { name: 'redis', url: redisDb(12), check: requireRedis },
  { name: 'amqp', url: AMQP_URL, check: requireRabbit },
];

for (const b of BROKERS) {
  for (const how of ['second SIGTERM', 'SIGQUIT'] as const) {
    test(`[${b.name}] cold shutdown (${how}): exits 1 at once; unstarted and stopped acks_late tasks come back; nothing re-runs twice to the end`, async () => {
      await b.check();
      const queue = uniqueName('wt-cold');
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'celeriac-cold-')), 'ledger.txt');
      const app = makeApp(b.url, BACKEND, { task_default_queue: queue });
      apps.push(app);
      // Two acks_late tasks run first (-c 2); four early-ack tasks wait in prefetch, unstarted.
      for (const id of ['late0', 'late1']) await app.sendTask('w.ledger_late', [file, id, 4000], {}, { queue });
      for (const id of ['early0', 'early1', 'early2', 'early3']) await app.sendTask('w.ledger', [file, id, 4000], {}, { queue });
      const { proc, exited } = cliWorker(b.url, queue);
      await eventually(() => readLedger(file).starts.size === 2, 'the two acks_late tasks to start', 30_000);
      await sleep(200); // the rest are prefetched by now
      if (how === 'SIGQUIT') process.kill(proc.pid, 'SIGQUIT');
      else {
        process.kill(proc.pid, 'SIGTERM');
        await sleep(300);
        process.kill(proc.pid, 'SIGTERM');
      }
      const t0 = Date.now();
      const code = await exited;
      const took = Date.now() - t0;
      assert.equal(code, 1, `a cold shutdown exits 1\n${proc.tail()}`);
      assert.ok(took < 3000, `cold shutdown took ${took} ms while tasks had ~3.5 s left`);
      const atExit = readLedger(file);
      assert.deepEqual([...atExit.starts.keys()].sort(), ['late0', 'late1']);
      assert.equal(atExit.ends.size, 0, 'running tasks were stopped, not finished');
      assert.match(proc.logs, /Restoring \d+ unacknowledged message/);
      await drainWith(b.url, queue, file, 6);
      const done = readLedger(file);
      for (const id of ['late0', 'late1']) {
        assert.equal(done.starts.get(id), 2, `${id}: stopped by the cold shutdown, redelivered (acks_late)`);
        assert.equal(done.ends.get(id), 1);
      }
      for (const id of ['early0', 'early1', 'early2', 'early3']) {
        assert.equal(done.starts.get(id), 1, `${id} was unstarted at shutdown and runs once`);
        assert.equal(done.ends.get(id), 1);
      }
    });
  }

  test(`[${b.name}] worker_soft_shutdown_timeout: a cold shutdown lets running tasks finish within the timeout, then stops the rest`, async () => {
    await b.check();
    const queue = uniqueName('wt-soft');
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'celeriac-soft-')), 'ledger.txt');
    const app = makeApp(b.url, BACKEND, { task_default_queue: queue });
    apps.push(app);
    await app.sendTask('w.ledger_late', [file, 'short', 1000], {}, { queue });
    await app.sendTask('w.ledger_late', [file, 'long', 6000], {}, { queue });
    const { proc, exited } = cliWorker(b.url, queue, ['--soft-shutdown-timeout', '2.5']);
    await eventually(() => readLedger(file).starts.size === 2, 'both tasks to start', 30_000);
    process.kill(proc.pid, 'SIGQUIT');
    const t0 = Date.now();
    const code = await exited;
    const took = Date.now() - t0;
    assert.equal(code, 1, proc.tail());
    assert.ok(took >= 2000, `the worker exited ${took} ms after SIGQUIT, before its 2.5 s soft shutdown timeout`);
    assert.ok(took < 5500, `the worker exited ${took} ms after SIGQUIT; the long task should have been stopped at ~2.5 s`);
    const atExit = readLedger(file);
    assert.equal(atExit.ends.get('short'), 1, 'the short task finished inside the soft shutdown timeout');
    assert.equal(atExit.ends.get('long'), undefined, 'the long task was stopped');
    assert.match(proc.logs, /worker_soft_shutdown_timeout/);
    await drainWith(b.url, queue, file, 2);
    const done = readLedger(file);
    assert.equal(done.starts.get('short'), 1, 'a task that finished does not run again');
    assert.equal(done.starts.get('long'), 2, 'the stopped acks_late task is redelivered');
    assert.equal(done.ends.get('long'), 1);
  });
}

test('exit codes: 2 for a usage error, 1 when the worker cannot start (global_rate_limit on RabbitMQ without a shared store)', async () => {
  await requireRabbit();
  const usage = cliWorker(AMQP_URL, uniqueName('wt-exit'), ['--autoscale', '1,5']);
  assert.equal(await usage.exited, 2, usage.proc.tail());
  assert.match(usage.proc.logs, /--autoscale takes max,min/);
  const dir = mkdtempSync(path.join(tmpdir(), 'celeriac-exit-'));
  const { writeFileSync } = await import('node:fs');
  const appFile = path.join(dir, 'app.mts');
  writeFileSync(appFile, `import { Celeriac } from ${JSON.stringify(path.join(REPO_ROOT, 'src/index.ts'))};\n` +
    `export const app = new Celeriac('exit-codes', { broker: ${JSON.stringify(AMQP_URL)} });\n` +
    `app.task('x.limited', () => 1, { globalRateLimit: '5/s' });\n`);
  const proc = new ManagedProcess('celeriac worker', process.execPath, [
    path.join(REPO_ROOT, 'bin/celeriac.js'), '-A', appFile, 'worker', '-Q', uniqueName('wt-exit'), '-l', 'info',
  ], { cwd: REPO_ROOT, env: { ...process.env, CELERY_RESULT_BACKEND: '' } });
  procs.push(proc);
  const code = await new Promise<number | null>((r) => proc.child.once('exit', (c) => r(c)));
  assert.equal(code, 1, proc.tail());
  assert.match(proc.logs, /global_rate_limit.*result_backend/s);
});
