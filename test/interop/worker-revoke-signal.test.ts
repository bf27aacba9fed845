// Python Celery's app.control.revoke(id, terminate=True, signal=…) reaching a Celeriac process-pool worker,
// on Redis and RabbitMQ: the named signal goes to the child running the task. SIGKILL stops a busy loop
// (REVOKED 'terminated', read from Python); SIGWINCH, which a Node process survives, leaves the task to finish.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManagedProcess, PY_DIR, PYTHON, pyEnv, requirePythonCelery, runPythonProducer, type PyAppConfig } from './harness.js';
import { AMQP_URL, eventually, redisDb, requireRabbit, requireRedis, uniqueName } from '../helpers/services.js';
import { makeApp } from '../integration/worker-app.js';
import type { TaskEvent } from '../../src/index.js';
import type { ChildExecutor } from '../../src/worker/child-executor.js';

const MODULE = fileURLToPath(new URL('../integration/worker-app.ts', import.meta.url));
const BACKEND = redisDb(13);
const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
});

async function python(cfg: PyAppConfig, code: string): Promise<void> {
  await requirePythonCelery();
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'celeriac-py-')), 'script.py');
  writeFileSync(file, code);
  const p = new ManagedProcess('python script', PYTHON, [file], { cwd: PY_DIR, env: { ...process.env, PYTHONPATH: PY_DIR, ...pyEnv(cfg) } });
  const exit = await new Promise<number | null>((r) => p.child.once('exit', (c) => r(c)));
  assert.equal(exit, 0, `python script failed:\n${p.tail()}`);
}

for (const b of [{ name: 'redis', url: redisDb(13), check: requireRedis }, { name: 'amqp', url: AMQP_URL, check: requireRabbit }]) {
  test(`[${b.name}] Python revoke(terminate=True, signal=...) reaches the process-pool child of a TS worker`, async () => {
    await b.check();
    await requirePythonCelery();
    const queue = uniqueName('wt-pysig');
    const app = makeApp(b.url, BACKEND, { task_default_queue: queue });
    const hostname = `${queue}@ts`;
    const worker = app.worker({ pool: 'process', concurrency: 1, module: MODULE, loglevel: 'critical', hostname });
    const started = new Set<string>();
    worker.on('taskPrerun', (e: TaskEvent) => started.add(e.id));
    await worker.start();
    cleanup.push(async () => { await worker.close({ cold: true }); await app.close(); });
    const pids = () => (worker.executor as ChildExecutor).pids;
    const cfg: PyAppConfig = { broker: b.url, backend: BACKEND, queue };

    const [busy] = await runPythonProducer(cfg, [{ task: 'w.busy', args: [30_000], wait: false }]);
    await eventually(() => started.has(busy!.id), 'the busy task to start', 15_000);
    const victim = pids()[0];
    await python(cfg, `from pyapp import app\napp.control.revoke(${JSON.stringify(busy!.id)}, terminate=True, signal='SIGKILL', destination=[${JSON.stringify(hostname)}])\n`);
    const [got] = await runPythonProducer(cfg, [{ get: busy!.id }], 15);
    assert.equal(got!.state, 'REVOKED');
    assert.equal(got!.error?.type, 'TaskRevokedError');
    await eventually(() => pids().length === 1 && !pids().includes(victim!), 'a fresh child', 15_000);
    assert.equal(await (await app.sendTask('w.add', [2, 2])).get({ timeout: 15_000 }), 4, 'the fresh child serves');

    const [slow] = await runPythonProducer(cfg, [{ task: 'w.sleep', args: [2500, 'survived'], wait: false }]);
    await eventually(() => started.has(slow!.id), 'the sleep task to start', 15_000);
    await python(cfg, `from pyapp import app\napp.control.revoke(${JSON.stringify(slow!.id)}, terminate=True, signal='SIGWINCH', destination=[${JSON.stringify(hostname)}])\n`);
    const [done] = await runPythonProducer(cfg, [{ get: slow!.id }], 15);
    assert.equal(done!.state, 'SUCCESS', `a child that survives its signal finishes the task: ${JSON.stringify(done)}`);
    assert.equal(done!.result, 'survived');
  });
}
