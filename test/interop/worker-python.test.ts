// Worker semantics across languages (Python Celery 5.2 ⇄ Celeriac) on Redis and RabbitMQ:
// countdown, retry (both ways), expires, the timelimit header, and revoke (both ways).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManagedProcess, PY_DIR, PYTHON, pyEnv, requirePythonCelery, runPythonProducer, startPythonWorker, type PyAppConfig } from './harness.js';
import { AMQP_URL, eventually, redisDb, requireRabbit, requireRedis, sleep, uniqueName } from '../helpers/services.js';
import { makeApp } from '../integration/worker-app.js';
import type { Celeriac, TaskEvent, Worker, WorkerOptions } from '../../src/index.js';

const MODULE = fileURLToPath(new URL('../integration/worker-app.ts', import.meta.url));
const BACKEND = redisDb(13);
const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
});

async function tsWorker(broker: string, wopts: WorkerOptions = {}): Promise<{ app: Celeriac; worker: Worker; queue: string; prerun: Map<string, number[]> }> {
  const queue = uniqueName('wt-py');
  const app = makeApp(broker, BACKEND, { task_default_queue: queue });
  const worker = app.worker({ concurrency: 2, module: MODULE, loglevel: 'critical', hostname: `${queue}@ts`, ...wopts });
  const prerun = new Map<string, number[]>();
  worker.on('taskPrerun', (e: TaskEvent) => prerun.set(e.id, [...(prerun.get(e.id) ?? []), Date.now()]));
  await worker.start();
  cleanup.push(async () => { await worker.close({ cold: true }); await app.close(); });
  return { app, worker, queue, prerun };
}

/** Run a few lines of Python with the interop app (pyapp) importable and configured. */
async function python(cfg: PyAppConfig, code: string): Promise<string> {
  await requirePythonCelery();
  const dir = mkdtempSync(path.join(tmpdir(), 'celeriac-py-'));
  const file = path.join(dir, 'script.py');
  writeFileSync(file, code);
  const p = new ManagedProcess('python script', PYTHON, [file], { cwd: PY_DIR, env: { ...process.env, PYTHONPATH: PY_DIR, ...pyEnv(cfg) } });
  const code_ = await new Promise<number | null>((r) => p.child.once('exit', (c) => r(c)));
  assert.equal(code_, 0, `python script failed:\n${p.tail()}`);
  return p.logs;
}

for (const b of [{ name: 'redis', url: redisDb(13), check: requireRedis }, { name: 'amqp', url: AMQP_URL, check: requireRabbit }]) {
  test(`[${b.name}] Python → TS worker: countdown, retry, expires, timelimit header`, async () => {
    await b.check();
    const { queue, prerun } = await tsWorker(b.url, { pool: 'thread', concurrency: 2 });
    const cfg: PyAppConfig = { broker: b.url, backend: BACKEND, queue };
    const t0 = Date.now();
    const [cd, retried, expired, limited] = await runPythonProducer(cfg, [
      { task: 'w.add', args: [2, 3], options: { countdown: 1.5 } },
      { task: 'w.retry', args: [1] },
      { task: 'w.add', args: [1, 1], options: { expires: 0.001 } },
      { task: 'w.busy', args: [20_000], options: { time_limit: 1 } },
    ], 30);
    assert.equal(cd!.result, 5);
    assert.ok(prerun.get(cd!.id)![0]! - t0 >= 1400, 'the countdown was honoured');
    assert.deepEqual(retried!.result, { retries: 1 });
    assert.equal(retried!.state, 'SUCCESS');
    assert.equal(prerun.get(retried!.id)!.length, 2, 'same id ran twice (retry)');
    assert.equal(expired!.state, 'REVOKED');
    assert.equal(expired!.error?.type, 'TaskRevokedError');
    assert.equal(prerun.get(expired!.id), undefined, 'an expired task never runs');
    assert.equal(limited!.state, 'FAILURE');
    assert.equal(limited!.error?.type, 'TimeLimitExceeded', `got ${JSON.stringify(limited!.error)}`);
  });

  test(`[${b.name}] Python app.control.revoke reaches a TS worker`, async () => {
    await b.check();
    const { queue, prerun } = await tsWorker(b.url);
    const cfg: PyAppConfig = { broker: b.url, backend: BACKEND, queue };
    const [sent] = await runPythonProducer(cfg, [{ task: 'w.add', args: [1, 2], options: { countdown: 3 }, wait: false }]);
    await sleep(500);
    await python(cfg, `from pyapp import app\napp.control.revoke(${JSON.stringify(sent!.id)})\n`);
    const [got] = await runPythonProducer(cfg, [{ get: sent!.id }], 15);
    assert.equal(got!.state, 'REVOKED');
    assert.equal(got!.error?.type, 'TaskRevokedError');
    await sleep(3000);
    assert.equal(prerun.get(sent!.id), undefined, 'the revoked task must not run');
  });

  test(`[${b.name}] TS app.control.revoke reaches a Python worker; Python retry seen from TS`, async () => {
    await b.check();
    const queue = uniqueName('wt-pyw');
    const py = await startPythonWorker({ broker: b.url, backend: BACKEND, queue, queues: [queue] });
    cleanup.push(() => py.stop());
    const app = makeApp(b.url, BACKEND, { task_default_queue: queue });
    cleanup.push(() => app.close());
    const r = await app.sendTask('py.add', [2, 2], {}, { countdown: 2 });
    await py.waitForOutput(new RegExp(`Task py.add\\[${r.id}\\] received`), 10_000);
    await app.control.revoke(r.id);
    await py.waitForOutput(/revoked/i, 10_000, 'the Python worker to log the revoke');
    await eventually(async () => (await r.state()) === 'REVOKED', 'Python to store REVOKED', 15_000, 100);
    assert.doesNotMatch(py.logs, new RegExp(`Task py.add\\[${r.id}\\] succeeded`));
    const flaky = await app.sendTask('interop.flaky', ['x']);
    assert.deepEqual(await flaky.get({ timeout: 20_000 }), { lang: 'py', tag: 'x', retries: 1 });
  });
}
