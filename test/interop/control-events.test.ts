// Issue #19 with real Python Celery (5.2, Debian) on Redis and RabbitMQ: Python's inspect and control
// against a Celeriac worker; Celeriac's against a Python worker; `celery events --dump` reading a
// Celeriac worker's events, and `celeriac events --dump` reading a Python worker's.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { childEnv, ManagedProcess, PY_DIR, PYTHON, REPO_ROOT, pyEnv, requirePythonCelery, startPythonWorker, startTsWorker, type PyAppConfig } from './harness.js';
import { AMQP_URL, eventually, redisDb, requireRabbit, requireRedis, uniqueName } from '../helpers/services.js';
import { Celeriac, type WorkerStats } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';

const BACKEND = redisDb(6);
const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
});

/** Run Python with pyapp's `app`; the last stdout line is parsed as JSON. */
async function python(cfg: PyAppConfig, code: string): Promise<Record<string, unknown>> {
  await requirePythonCelery();
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'celeriac-py-')), 'script.py');
  writeFileSync(file, `import json\nfrom pyapp import app\n${code}`);
  const p = new ManagedProcess('python script', PYTHON, [file], { cwd: PY_DIR, env: childEnv(pyEnv(cfg)) });
  const exit = await new Promise<number | null>((r) => p.child.once('exit', (c) => r(c)));
  assert.equal(exit, 0, `python script failed:\n${p.tail()}`);
  const lines = p.logs.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

function tsApp(broker: string, queue: string): Celeriac {
  const app = new Celeriac('interop-events', { broker, backend: BACKEND, task_default_queue: queue });
  app.task('t.add', (x: number, y: number) => x + y);
  cleanup.push(() => app.close());
  return app;
}

const BROKERS = [
  { name: 'redis', url: redisDb(6), check: requireRedis },
  { name: 'amqp', url: AMQP_URL, check: requireRabbit },
];

for (const b of BROKERS) {
  test(`[${b.name}] Python inspect ping/active/reserved/scheduled/registered/stats/query_task and control revoke/rate_limit/add_consumer/cancel_consumer/pool_grow against a TS worker`, async () => {
    await b.check();
    await requirePythonCelery();
    const queue = uniqueName(`pyctl-${b.name}`);
    const host = `${queue}@ts`;
    const app = tsApp(b.url, queue);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    app.task('t.block', async () => {
      await gate;
      return 'done';
    });
    const worker = app.worker({ hostname: host, concurrency: 1, logger: createLogger('critical'), mingle: false });
    await worker.start();
    cleanup.push(async () => { release(); await worker.close(); });
    const block = await app.sendTask('t.block');
    await eventually(() => worker.activeCount === 1, 'the blocking task running');
    const waiting = await app.sendTask('t.add', [1, 2]);
    const later = await app.sendTask('t.add', [3, 4], {}, { countdown: 300 });
    await eventually(() => worker.eta.size === 1 && worker.pool.queued === 1, 'one reserved and one scheduled');
    const extra = `${queue}-extra`;
    const H = JSON.stringify(host);
    const out = await python({ broker: b.url, backend: BACKEND, queue }, `
i = app.control.inspect(destination=[${H}], timeout=10)
out = {}
out['ping'] = i.ping()
out['active'] = i.active()
out['reserved'] = i.reserved()
out['scheduled'] = i.scheduled()
out['registered'] = i.registered()
out['stats'] = i.stats()
out['query_task'] = i.query_task(${JSON.stringify(block.id)}, ${JSON.stringify(waiting.id)})
c = dict(destination=[${H}], reply=True, timeout=10)
out['rate_limit'] = app.control.rate_limit('t.add', '7/s', **c)
out['add_consumer'] = app.control.add_consumer(${JSON.stringify(extra)}, **c)
out['pool_grow'] = app.control.pool_grow(1, **c)
out['revoke'] = app.control.revoke(${JSON.stringify(later.id)}, **c)
print(json.dumps(out, default=str))
`);
    const at = (k: string) => (out[k] as Record<string, unknown>)[host];
    assert.deepEqual(at('ping'), { ok: 'pong' });
    assert.deepEqual((at('active') as { id: string }[]).map((t) => t.id), [block.id]);
    assert.deepEqual((at('reserved') as { id: string }[]).map((t) => t.id), [waiting.id]);
    assert.deepEqual((at('scheduled') as { request: { id: string } }[]).map((t) => t.request.id), [later.id]);
    assert.deepEqual(at('registered'), ['t.add', 't.block']);
    const stats = at('stats') as WorkerStats;
    assert.equal(stats.pid, process.pid);
    assert.equal(stats.broker.transport, b.name);
    assert.deepEqual(Object.keys(at('query_task') as object).sort(), [block.id, waiting.id].sort());
    assert.equal((at('query_task') as Record<string, [string]>)[block.id]![0], 'active');
    const first = (k: string) => (out[k] as Record<string, unknown>[])[0]![host];
    assert.deepEqual(first('rate_limit'), { ok: 'new rate limit set successfully' });
    assert.equal(worker.rateLimiter.has('t.add'), true, 'the TS worker applied the rate limit');
    assert.deepEqual(first('add_consumer'), { ok: `add consumer ${extra}` });
    assert.deepEqual(first('pool_grow'), { ok: 'pool will grow' });
    assert.equal(worker.pool.concurrency, 2, 'the pool grew');
    assert.deepEqual(first('revoke'), { ok: `tasks {'${later.id}'} flagged as revoked` });
    await eventually(() => worker.eta.size === 0, 'the revoked ETA task dropped');
    assert.equal(await (await app.sendTask('t.add', [5, 5], {}, { queue: extra })).get({ timeout: 15_000 }), 10, 'the added queue is consumed');
    const cancelled = await python({ broker: b.url, backend: BACKEND, queue }, `print(json.dumps(app.control.cancel_consumer(${JSON.stringify(extra)}, destination=[${H}], reply=True, timeout=10)))\n`);
    assert.deepEqual(cancelled, [{ [host]: { ok: `no longer consuming from ${extra}` } }]);
    release();
    assert.equal(await block.get({ timeout: 15_000 }), 'done');
  });

  test(`[${b.name}] Python control shutdown stops a TS worker (CLI) with a warm shutdown`, async () => {
    await b.check();
    const queue = uniqueName(`pyshut-${b.name}`);
    const host = `${queue}@ts`;
    const w = await startTsWorker({ broker: b.url, backend: BACKEND, queues: [queue], hostname: host, viaCli: true });
    cleanup.push(() => w.stop());
    await python({ broker: b.url, backend: BACKEND, queue }, `app.control.shutdown(destination=[${JSON.stringify(host)}])\nprint('{}')\n`);
    await eventually(() => !w.running, 'the worker to exit', 20_000);
    assert.match(w.logs, /Got shutdown from remote/);
    assert.match(w.logs, /Warm shutdown/);
  });

  test(`[${b.name}] mingle: a Python worker starting beside a TS worker takes its revoked ids, and a TS worker starting beside the Python one takes both`, async () => {
    await b.check();
    await requirePythonCelery();
    const queue = uniqueName(`mingle-${b.name}`);
    const app = tsApp(b.url, queue);
    const tsHost = `${queue}@ts`;
    const worker = app.worker({ hostname: tsHost, concurrency: 1, logger: createLogger('critical'), mingle: false });
    await worker.start();
    cleanup.push(() => worker.close());
    const fromTs = randomUUID();
    await app.control.revoke(fromTs, { destination: [tsHost] });
    await eventually(() => worker.revoked.has(fromTs), 'the TS worker holding the revoke');
    const pyHost = `${queue}@py`;
    const py = await startPythonWorker({ broker: b.url, backend: BACKEND, queues: [queue], name: pyHost, concurrency: 1, mingle: true });
    cleanup.push(() => py.stop());
    assert.match(py.logs, /mingle: sync with [1-9]\d* nodes/, 'Python synced with at least the TS worker');
    // Asked again until it answers: a broadcast published before the worker's pidbox subscription is up is not seen.
    let pyRevoked: string[] | undefined;
    await eventually(async () => {
      pyRevoked = (await app.control.inspect({ destination: [pyHost], timeout: 2 }).revoked())[pyHost];
      return pyRevoked !== undefined;
    }, 'the Python worker answering inspect revoked', 20_000).catch(() => undefined);
    assert.ok(pyRevoked?.includes(fromTs), `the Python worker took the TS worker's revoked id: ${JSON.stringify(pyRevoked)}`);
    const fromPy = randomUUID();
    await app.control.revoke(fromPy, { destination: [pyHost], reply: true, timeout: 10 });
    const lines: string[] = [];
    const second = app.worker({ hostname: `${queue}@ts2`, concurrency: 1, logger: createLogger('info', (l) => lines.push(l)) });
    await second.start();
    cleanup.push(() => second.close());
    await eventually(() => second.revoked.has(fromPy) && second.revoked.has(fromTs), "the starting TS worker holding the Python worker's revoked ids", 10_000);
    assert.ok(lines.some((l) => l.includes('mingle: sync with') && l.includes(pyHost)), lines.join(''));
  });

  test(`[${b.name}] TS inspect ping/active and control rate_limit against a Python worker`, async () => {
    await b.check();
    const queue = uniqueName(`tsctl-${b.name}`);
    const host = `${queue}@py`;
    const py = await startPythonWorker({ broker: b.url, backend: BACKEND, queues: [queue], name: host, concurrency: 2 });
    cleanup.push(() => py.stop());
    const app = tsApp(b.url, queue);
    const sleeping = await app.sendTask('py.sleep', [4, 'zz']);
    const inspect = app.control.inspect({ destination: [host], timeout: 10 });
    assert.deepEqual(await inspect.ping(), { [host]: { ok: 'pong' } });
    await eventually(async () => ((await inspect.active())[host] ?? []).length === 1, 'the Python task running', 15_000);
    const [active] = (await inspect.active())[host]!;
    assert.equal(active!.id, sleeping.id);
    assert.equal(active!.name, 'py.sleep');
    assert.equal(active!.hostname, host);
    assert.deepEqual(await app.control.rateLimit('py.add', '5/s', { reply: true, destination: [host], timeout: 10 }), [{ [host]: { ok: 'new rate limit set successfully' } }]);
    assert.equal(await sleeping.get({ timeout: 20_000 }), 'zz');
  });

  test(`[${b.name}] celery events --dump reads a TS worker's task and heartbeat events`, async () => {
    await b.check();
    await requirePythonCelery();
    const queue = uniqueName(`pydump-${b.name}`);
    const host = `${queue}@ts`;
    const dump = new ManagedProcess('celery events --dump', PYTHON, ['-m', 'celery', '-A', 'pyapp', 'events', '--dump'], { cwd: PY_DIR, env: childEnv(pyEnv({ broker: b.url, backend: BACKEND, queue })) });
    cleanup.push(() => dump.kill());
    await dump.waitForOutput(/evdump: starting capture/, 30_000);
    const app = tsApp(b.url, queue);
    const worker = app.worker({ hostname: host, concurrency: 2, taskEvents: true, heartbeatInterval: 1, logger: createLogger('critical'), mingle: false });
    await worker.start();
    cleanup.push(() => worker.close());
    // The dumper binds its queue as it starts: send until its capture shows the worker.
    await dump.waitForOutput(new RegExp(`${host} \\[[^\\]]+\\] heartbeat: .*sw_ident=celeriac`), 30_000, 'a heartbeat of the TS worker');
    const r = await app.sendTask('t.add', [2, 3]);
    assert.equal(await r.get({ timeout: 15_000 }), 5);
    const id = r.id.replace(/-/g, '\\-');
    await dump.waitForOutput(new RegExp(`${host} \\[[^\\]]+\\] task received: t\\.add\\(${id}\\) args=\\(2, 3\\) kwargs=\\{\\}`), 20_000, 'task received');
    await dump.waitForOutput(new RegExp(`task started: t\\.add\\(${id}\\)`), 20_000, 'task started');
    await dump.waitForOutput(new RegExp(`task succeeded: t\\.add\\(${id}\\) args=\\(2, 3\\) kwargs=\\{\\} .*result=5, runtime=`), 20_000, 'task succeeded');
    await worker.close();
    await dump.waitForOutput(new RegExp(`${host} \\[[^\\]]+\\] shutdown`), 20_000, 'worker-offline');
  });

  test(`[${b.name}] celeriac events --dump reads a Python worker's events`, async () => {
    await b.check();
    const queue = uniqueName(`tsdump-${b.name}`);
    const host = `${queue}@py`;
    const dump = new ManagedProcess('celeriac events --dump', process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/cli/main.ts'), '-b', b.url, 'events', '--dump', '--duration', '120'], { cwd: REPO_ROOT, env: childEnv({}) });
    cleanup.push(() => dump.kill());
    await dump.waitForOutput(/evdump: starting capture/, 30_000);
    // solo: Celery 5.2's threads pool can leave a buffered task-succeeded unflushed (its hub is woken from another thread).
    const py = await startPythonWorker({ broker: b.url, backend: BACKEND, queues: [queue], name: host, pool: 'solo', heartbeat: true, extraArgs: ['-E'] });
    cleanup.push(() => py.stop());
    await dump.waitForOutput(new RegExp(`${host} \\[[^\\]]+\\] (started|heartbeat): .*sw_ident=py-celery`), 30_000, 'the Python worker online or its heartbeat');
    const app = tsApp(b.url, queue);
    const r = await app.sendTask('py.add', [2, 3]);
    assert.equal(await r.get({ timeout: 20_000 }), 5);
    const id = r.id.replace(/-/g, '\\-');
    await dump.waitForOutput(new RegExp(`${host} \\[[^\\]]+\\] task received: py\\.add\\(${id}\\) args=\\(2, 3\\) kwargs=\\{\\}`), 20_000, 'task received');
    await dump.waitForOutput(new RegExp(`task succeeded: py\\.add\\(${id}\\) args=\\(2, 3\\) kwargs=\\{\\} .*result=5`), 20_000, 'task succeeded');
  });
}
