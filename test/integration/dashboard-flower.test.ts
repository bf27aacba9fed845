// The dashboard's Flower-compatible API (flower/api/*.py) with a Celeriac worker and a Python Celery
// worker (-E) on a private Redis: every endpoint answers with Flower's JSON shapes; a task's dict has
// exactly the keys of celery.events.state.Task.as_dict(), in its order (read from the installed Celery).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Celeriac, dashboard, createLogger, type Dashboard, type Worker } from '../../src/index.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { eventually } from '../helpers/services.js';
import { PYTHON, startPythonWorker, type ManagedProcess } from '../interop/harness.js';

const TS = 'ts@flowerapi';
const PY = 'py@flowerapi';
const PYQ = 'pyq';

let redis: RedisServer;
let dir: string;
let app: Celeriac;
let worker: Worker;
let py: ManagedProcess;
let d: Dashboard;

before(async () => {
  redis = await startRedisServer();
  dir = mkdtempSync(path.join(tmpdir(), 'celeriac-dash-flower-'));
  const broker = redis.url(0);
  app = new Celeriac('flowerapi', { broker, backend: broker, task_default_queue: 'tsq', logger: createLogger('critical') });
  app.task('t.add', (x: number, y: number) => x + y);
  app.task('t.fail', (msg: string) => {
    throw new TypeError(msg);
  });
  worker = app.worker({ hostname: TS, queues: ['tsq'], concurrency: 2, taskEvents: true, heartbeatInterval: 0.5, logger: createLogger('critical'), mingle: false });
  await worker.start();
  py = await startPythonWorker({ broker, queues: [PYQ], name: PY, heartbeat: true, extraArgs: ['-E'] });
  d = await dashboard(app, { port: 0, db: path.join(dir, 'history.sqlite') });
});

after(async () => {
  await d?.close();
  await py?.stop();
  await worker?.close();
  await app?.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function get(p: string): Promise<{ status: number; body: unknown; text: string }> {
  const res = await fetch(new URL(p, d.url));
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}

async function post(p: string, json?: unknown): Promise<{ status: number; body: unknown; text: string }> {
  const res = await fetch(new URL(p, d.url), { method: 'POST', body: json === undefined ? undefined : JSON.stringify(json), headers: { 'content-type': 'application/json' } });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}

type Dict = Record<string, unknown>;

/** Celery's own Task.as_dict() keys, from the Python Celery the interop tests use. */
function celeryTaskKeys(): string[] {
  const out = execFileSync(PYTHON, ['-c', "import json; from celery.events.state import Task; print(json.dumps(list(Task('x').as_dict())))"], { encoding: 'utf8' });
  return JSON.parse(out) as string[];
}

async function taskInfo(id: string, state: string): Promise<Dict> {
  return (await eventually(async () => {
    const r = await get(`/api/task/info/${id}`);
    return r.status === 200 && (r.body as Dict).state === state ? (r.body as Dict) : undefined;
  }, `task ${id} to be ${state} in /api/task/info`, 20_000, 100))!;
}

test('GET /healthcheck answers OK', async () => {
  const r = await get('/healthcheck');
  assert.equal(r.status, 200);
  assert.equal(r.text, 'OK');
});

test('GET /api/workers: both workers with the inspect replies Flower keeps (stats, active_queues, registered, …, timestamp); ?status=true maps names to online', async () => {
  const workers = (await eventually(async () => {
    const r = await get('/api/workers?refresh=1');
    const b = r.body as Record<string, Dict>;
    return b[TS] && b[PY] ? b : undefined;
  }, 'both workers in /api/workers', 20_000, 200))!;
  for (const name of [TS, PY]) {
    const w = workers[name]!;
    assert.deepEqual(Object.keys(w).sort(), ['active', 'active_queues', 'conf', 'registered', 'reserved', 'revoked', 'scheduled', 'stats', 'timestamp'], name);
    const stats = w.stats as { pool: Dict; pid: number; total: unknown };
    assert.equal(typeof stats.pid, 'number');
    assert.equal(typeof stats.pool['max-concurrency'], 'number');
    assert.ok(Array.isArray(w.registered) && Array.isArray(w.active) && Array.isArray(w.reserved) && Array.isArray(w.scheduled));
    assert.equal(typeof w.timestamp, 'number');
    assert.ok((w.active_queues as Dict[]).every((q) => typeof q.name === 'string'));
  }
  assert.ok((workers[TS]!.registered as string[]).includes('t.add'));
  assert.ok((workers[PY]!.registered as string[]).some((t) => t.startsWith('py.add')));
  assert.deepEqual((workers[PY]!.active_queues as Dict[]).map((q) => q.name), [PYQ]);
  const status = (await get('/api/workers?status=true')).body as Record<string, boolean>;
  assert.equal(status[TS], true);
  assert.equal(status[PY], true);
  const one = await get(`/api/workers?workername=${encodeURIComponent(TS)}`);
  assert.deepEqual(Object.keys(one.body as Dict), [TS]);
  assert.equal((await get('/api/workers?workername=nobody@nowhere')).status, 404);
});

test('GET /api/tasks and /api/task/info/<id>: tasks of both workers with exactly the keys of Celery\'s Task.as_dict(), worker as its hostname', async () => {
  const keys = celeryTaskKeys();
  const ts = await app.sendTask('t.add', [2, 3]);
  const pyr = await app.sendTask('py.add', [4, 5], {}, { queue: PYQ });
  assert.equal(await ts.get({ timeout: 15_000 }), 5);
  assert.equal(await pyr.get({ timeout: 15_000 }), 9);
  const tsInfo = await taskInfo(ts.id, 'SUCCESS');
  const pyInfo = await taskInfo(pyr.id, 'SUCCESS');
  for (const info of [tsInfo, pyInfo]) {
    assert.deepEqual(Object.keys(info), keys, 'Task.as_dict() keys in their order');
    assert.equal(typeof info.received, 'number');
    assert.equal(typeof info.started, 'number');
    assert.equal(typeof info.succeeded, 'number');
    assert.equal(typeof info.timestamp, 'number');
    assert.equal(typeof info.runtime, 'number');
    assert.equal(typeof info.clock, 'number');
    assert.ok(Array.isArray(info.children));
  }
  assert.equal(tsInfo.worker, TS);
  assert.equal(tsInfo.name, 't.add');
  assert.equal(tsInfo.args, '(2, 3)');
  assert.equal(tsInfo.kwargs, '{}');
  assert.equal(tsInfo.result, '5');
  assert.equal(tsInfo.root_id, ts.id);
  assert.equal(tsInfo.root, ts.id);
  assert.equal(pyInfo.worker, PY);
  assert.equal(pyInfo.name, 'py.add');
  assert.equal(pyInfo.args, '(4, 5)');
  assert.equal(pyInfo.result, '9');
  const unknown = await get('/api/task/info/00000000-0000-0000-0000-000000000000');
  assert.equal(unknown.status, 404);

  const all = (await get('/api/tasks')).body as Record<string, Dict>;
  assert.ok(all[ts.id] && all[pyr.id], 'both tasks listed, keyed by id');
  assert.deepEqual(Object.keys(all[pyr.id]!), keys);
  const byWorker = (await get(`/api/tasks?workername=${encodeURIComponent(PY)}`)).body as Record<string, Dict>;
  assert.ok(byWorker[pyr.id] && !byWorker[ts.id], 'workername filters');
  const byName = (await get('/api/tasks?taskname=t.add&state=SUCCESS')).body as Record<string, Dict>;
  assert.ok(byName[ts.id] && !byName[pyr.id], 'taskname and state filter');
  assert.equal(Object.keys((await get('/api/tasks?limit=1')).body as Dict).length, 1, 'limit');
  assert.deepEqual(((await get('/api/task/types')).body as { 'task-types': string[] })['task-types'].filter((n) => n === 't.add' || n === 'py.add').sort(), ['py.add', 't.add']);
});

test('GET /api/task/result/<id>: task-id, state and result as Flower writes them; a failure with its exception repr and traceback', async () => {
  const ok = await app.sendTask('t.add', [20, 22]);
  await ok.get({ timeout: 15_000 });
  assert.deepEqual((await get(`/api/task/result/${ok.id}`)).body, { 'task-id': ok.id, state: 'SUCCESS', result: 42 });
  const bad = await app.sendTask('t.fail', ['no good']);
  await assert.rejects(bad.get({ timeout: 15_000 }));
  const r = (await get(`/api/task/result/${bad.id}`)).body as Dict;
  assert.deepEqual(Object.keys(r), ['task-id', 'state', 'result', 'traceback']);
  assert.equal(r.state, 'FAILURE');
  assert.equal(r.result, "TypeError('no good')");
  assert.match(String(r.traceback), /no good/);
  const pending = (await get('/api/task/result/11111111-1111-1111-1111-111111111111')).body;
  assert.deepEqual(pending, { 'task-id': '11111111-1111-1111-1111-111111111111', state: 'PENDING' });
});

test('POST /api/task/async-apply/<name> and /api/task/send-task/<name>: { task-id, state }; unknown names 404 for async-apply only; bad args 400', async () => {
  const a = await post('/api/task/async-apply/t.add', { args: [1, 2] });
  assert.equal(a.status, 200);
  const body = a.body as Dict;
  assert.deepEqual(Object.keys(body), ['task-id', 'state']);
  assert.equal(await app.AsyncResult(String(body['task-id'])).get({ timeout: 15_000 }), 3);
  assert.equal((await post('/api/task/async-apply/no.such.task', { args: [] })).status, 404);
  assert.equal((await post('/api/task/async-apply/t.add', { args: 'nope' })).status, 400);
  // send-task needs no local registration: a Python task, on its queue, with kwargs.
  const s = await post('/api/task/send-task/py.mul', { args: [6], kwargs: { y: 7 }, queue: PYQ });
  assert.equal(s.status, 200);
  assert.equal(await app.AsyncResult(String((s.body as Dict)['task-id'])).get({ timeout: 15_000 }), 42);
  const later = await post('/api/task/async-apply/t.add', { args: [1, 1], countdown: 60 });
  const laterId = String((later.body as Dict)['task-id']);
  await taskInfo(laterId, 'RECEIVED');
  const rv = await post(`/api/task/revoke/${laterId}?terminate=true`);
  assert.deepEqual(rv.body, { message: `Revoked '${laterId}'` });
  const revoked = await taskInfo(laterId, 'REVOKED');
  assert.equal(typeof revoked.revoked, 'number');
});

test('GET /api/queues/length: { active_queues: [{ name, messages }] } with the queues workers consume', async () => {
  const held = await app.sendTask('py.add', [1, 1], {}, { queue: 'nobody-consumes' });
  void held;
  const r = (await eventually(async () => {
    const b = (await get('/api/queues/length')).body as { active_queues: Dict[] };
    return b.active_queues.some((q) => q.name === PYQ) && b.active_queues.some((q) => q.name === 'tsq') ? b : undefined;
  }, 'both worker queues listed', 40_000, 500))!;
  for (const q of r.active_queues) {
    assert.deepEqual(Object.keys(q), ['name', 'messages']);
    assert.equal(typeof q.messages, 'number');
  }
});

test('worker actions: pool grow/shrink, autoscale, add/cancel consumer, rate limit, time limit answer Flower\'s { message } or 403 with the reason; unknown worker 404', async () => {
  // Celery's thread pool cannot grow: Flower's 403 with the worker's own reason.
  const pyGrow = await post(`/api/worker/pool/grow/${encodeURIComponent(PY)}?n=1`);
  assert.equal(pyGrow.status, 403);
  assert.match(pyGrow.text, /^Failed to grow 'py@flowerapi' worker's pool: .*grow/);
  for (const name of [TS]) {
    const w = encodeURIComponent(name);
    const grow = await post(`/api/worker/pool/grow/${w}?n=1`);
    assert.deepEqual(grow.body, { message: `Growing '${name}' worker's pool by 1` }, `${name}: ${grow.text}`);
    const shrink = await post(`/api/worker/pool/shrink/${w}?n=1`);
    assert.deepEqual(shrink.body, { message: `Shrinking '${name}' worker's pool by 1` }, `${name}: ${shrink.text}`);
  }
  for (const name of [TS, PY]) {
    const w = encodeURIComponent(name);
    const auto = await post(`/api/worker/pool/autoscale/${w}?min=1&max=3`);
    assert.equal(auto.status, 403, 'neither worker was started with --autoscale');
    assert.ok(auto.text.startsWith(`Failed to autoscale '${name}' worker: `), auto.text);
    const add = await post(`/api/worker/queue/add-consumer/${w}?queue=extra-q`);
    assert.equal(add.status, 200, add.text);
    assert.match(String((add.body as Dict).message), /extra-q/);
    const cancel = await post(`/api/worker/queue/cancel-consumer/${w}?queue=extra-q`);
    assert.equal(cancel.status, 200, cancel.text);
    assert.match(String((cancel.body as Dict).message), /extra-q/);
  }
  const rate = await post(`/api/task/rate-limit/t.add?workername=${encodeURIComponent(TS)}&ratelimit=100/m`);
  assert.equal(rate.status, 200, rate.text);
  assert.match(String((rate.body as Dict).message), /rate limit/i);
  const pyRate = await post(`/api/task/rate-limit/py.add?workername=${encodeURIComponent(PY)}&ratelimit=10/s`);
  assert.equal(pyRate.status, 200, pyRate.text);
  const limits = await post(`/api/task/timeout/t.add?workername=${encodeURIComponent(TS)}&soft=5&hard=10`);
  assert.equal(limits.status, 200, limits.text);
  assert.match(String((limits.body as Dict).message), /time limits/i);
  assert.equal((await post('/api/worker/pool/grow/nobody@nowhere')).status, 404);
});

test('POST /api/worker/shutdown/<name>: "Shutting down!" and the Python worker exits', async () => {
  const r = await post(`/api/worker/shutdown/${encodeURIComponent(PY)}`);
  assert.deepEqual(r.body, { message: 'Shutting down!' });
  await eventually(() => !py.running, 'the Python worker to exit', 30_000, 200);
  await eventually(async () => ((await get('/api/workers?status=true')).body as Record<string, boolean>)[PY] === false, 'the Python worker shown offline', 15_000, 200);
});
