// Python Celery producer → Celeriac worker over Redis, results and errors read back in Python.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import type { Celeriac } from '../../src/index.js';
import { eventually, uniqueName } from '../helpers/services.js';
import { requirePythonCelery, runPythonProducer, startPythonWorker, type ManagedProcess, type PyAppConfig } from './harness.js';
import { openTestDb, readQueue, readUnacked, priorityKey } from './redis-tools.js';
import { createInteropApp } from './ts/tasks.js';

const DB = 2;
const QUEUE = uniqueName('py2ts');
let url: string;
let redis: Redis;
let app: Celeriac;
let worker: ReturnType<Celeriac['worker']>;
let pyWorker: ManagedProcess | undefined;
/** taskPrerun events of the TS worker, in order, with when they happened. */
const started: { id: string; at: number }[] = [];

const py = (extra: Partial<PyAppConfig> = {}): PyAppConfig => ({ broker: url, queue: QUEUE, ...extra });

before(async () => {
  await requirePythonCelery();
  ({ url, redis } = await openTestDb(DB));
  app = createInteropApp({ broker: url });
  worker = app.worker({ queues: [QUEUE], concurrency: 4, hostname: `ts-${process.pid}@interop`, loglevel: 'warning' });
  worker.on('taskPrerun', (e: { id: string }) => { started.push({ id: e.id, at: Date.now() }); });
  await worker.start();
});

after(async () => {
  await pyWorker?.stop();
  await worker?.close();
  await app?.close();
  redis?.disconnect();
});

test('Python calls TS tasks and reads their results; kwargs map onto parameters by name', async () => {
  const r = await runPythonProducer(py(), [
    { task: 'ts.add', args: [2, 3] },
    { task: 'ts.mul', args: [6, 7] },
    { task: 'ts.kw', kwargs: { c: 'z', a: 1, b: 2 } },
    { task: 'ts.kw', args: [1], kwargs: { c: 'é😀', b: 2.5 } },
    { task: 'ts.add', kwargs: { y: 10, x: 5 } },
  ]);
  for (const x of r) assert.equal(x.error, null, `unexpected error ${JSON.stringify(x.error)}`);
  assert.deepEqual(r.map((x) => x.state), ['SUCCESS', 'SUCCESS', 'SUCCESS', 'SUCCESS', 'SUCCESS']);
  assert.deepEqual(r.map((x) => x.result), [5, 42, { a: 1, b: 2, c: 'z' }, { a: 1, b: 2.5, c: 'é😀' }, 15]);
});

test('a bound TS task sees the Python caller\'s kwargs in task.request.kwargs', async () => {
  const [r] = await runPythonProducer(py(), [{ task: 'ts.greet', args: ['bob'], kwargs: { greeting: 'hello' } }]);
  assert.equal(r.error, null, `unexpected error ${JSON.stringify(r.error)}`);
  assert.equal(r.result, 'hello bob');
});

test('a bound TS task sees the request Python sent (id, retries, custom headers)', async () => {
  const [r] = await runPythonProducer(py(), [{ task: 'ts.echo_request', args: [1, 'é'], options: { headers: { 'x-custom': 'v' } } }]);
  assert.equal(r.error, null, `unexpected error ${JSON.stringify(r.error)}`);
  const req = r.result as Record<string, unknown>;
  assert.equal(req.lang, 'ts');
  assert.deepEqual(req.handlerArgs, [1, 'é']);
  assert.equal(req.id, r.id);
  assert.equal(req.retries, 0);
  assert.deepEqual(req.kwargs, {});
  assert.deepEqual(req.headers, { 'x-custom': 'v' }, 'custom headers reach task.request.headers');
});

test('a TS TypeError reaches Python as the built-in TypeError; other JS errors keep their name', async () => {
  const [typeErr, quota] = await runPythonProducer(py(), [
    { task: 'ts.type_error', args: ['x'] },
    { task: 'ts.quota' },
  ]);
  assert.equal(typeErr.state, 'FAILURE');
  assert.ok(typeErr.error, 'Python .get() raised');
  assert.equal(typeErr.error.repr, "TypeError('x')");
  assert.equal(typeErr.error.is_builtin, true, `expected builtins.TypeError, got ${typeErr.error.module}.${typeErr.error.type}`);
  assert.equal(quota.state, 'FAILURE');
  assert.equal(quota.error?.type, 'QuotaExceeded');
  assert.deepEqual(quota.error?.args, ['over quota']);
  const meta = JSON.parse((await redis.get(`celery-task-meta-${typeErr.id}`))!) as Record<string, unknown>;
  assert.deepEqual(meta.result, { exc_type: 'TypeError', exc_message: ['x'], exc_module: 'builtins' });
  assert.equal(typeof meta.traceback, 'string');
});

test('an unknown task name from Python is stored as NotRegistered, as a Python worker does', async () => {
  const [r] = await runPythonProducer(py(), [{ task: 'ts.nope', args: [1] }], 15);
  assert.equal(r.state, 'FAILURE');
  assert.equal(r.error?.type, 'NotRegistered');
  assert.deepEqual(r.error?.args, ['ts.nope']);
});

test('priority messages from Python land in kombu\'s priority lists and the TS worker takes 0 (highest) first', async () => {
  const q = uniqueName('py2ts-prio');
  const prios = [9, 7, 4, 0];
  const sent = await runPythonProducer(py({ queue: q }), prios.map((p) => ({ task: 'ts.add', args: [p, 0], options: { priority: p }, wait: false })));
  for (const [i, step] of [9, 6, 3, 0].entries()) {
    const items = await redis.lrange(priorityKey(q, step), 0, -1);
    assert.equal(items.length, 1, `priority ${prios[i]} is in list step ${step}`);
  }
  const order: string[] = [];
  const w2 = app.worker({ queues: [q], concurrency: 1, hostname: `ts-prio-${process.pid}@interop`, loglevel: 'warning' });
  w2.on('taskPrerun', (e: { id: string }) => { order.push(e.id); });
  await w2.start();
  try {
    const results = await Promise.all(sent.map((s) => app.AsyncResult(s.id).get({ timeout: 10_000 })));
    assert.deepEqual(results, prios);
  } finally {
    await w2.close();
  }
  const byPrio = (p: number) => sent[prios.indexOf(p)].id;
  assert.deepEqual(order, [byPrio(0), byPrio(4), byPrio(7), byPrio(9)], 'run order 0, 4, 7, 9');
});

test('a countdown message from Python is held unacknowledged by the TS worker and run at its ETA', async () => {
  const [s] = await runPythonProducer(py(), [{ task: 'ts.echo_request', args: ['later'], options: { countdown: 2 }, wait: false }]);
  const held = await eventually(async () => (await readUnacked(redis)).find((u) => u.envelope.headers.id === s.id), 'the ETA message in unacked', 5000);
  const eta = Date.parse(String(held!.envelope.headers.eta));
  assert.ok(eta > Date.now() - 500, 'ETA is in the future while the message is held');
  assert.equal((await readQueue(redis, QUEUE)).length, 0, 'the message left the queue list');
  assert.ok(!started.some((x) => x.id === s.id), 'not run before its ETA');
  const res = (await app.AsyncResult(s.id).get({ timeout: 10_000 })) as Record<string, unknown>;
  const ran = started.find((x) => x.id === s.id);
  assert.ok(ran, 'the worker ran it');
  assert.ok(ran.at >= eta - 50, `ran ${eta - ran.at} ms before its ETA`);
  assert.deepEqual(res.handlerArgs, ['later']);
  assert.ok(res.eta, 'task.request.eta is set');
  assert.ok(Math.abs(Date.parse(String(res.eta)) - eta) < 1000, `request.eta ${String(res.eta)} matches the header`);
  await eventually(async () => !(await readUnacked(redis)).some((u) => u.envelope.headers.id === s.id), 'the ETA message acked', 5000);
});

test('a protocol-1 message from Python (task_protocol=1) runs on the TS worker', async () => {
  const capture = uniqueName('py2ts-v1-capture');
  const [, captured] = await runPythonProducer(py({ protocol: 1 }), [
    { task: 'ts.kw', args: [4], kwargs: { b: 5, c: 'v1' } },
    { task: 'ts.kw', args: [4], kwargs: { b: 5, c: 'v1' }, options: { queue: capture }, wait: false },
  ]).then(async (r) => {
    assert.equal(r[0].error, null, `unexpected error ${JSON.stringify(r[0].error)}`);
    assert.deepEqual(r[0].result, { a: 4, b: 5, c: 'v1' });
    return r;
  });
  // The same call, left in a queue nobody consumes, shows it really was protocol 1.
  const [item] = await readQueue(redis, capture);
  assert.deepEqual(item.envelope.headers, {}, 'protocol 1 has no task headers');
  assert.equal((JSON.parse(item.bodyText) as Record<string, unknown>).id, captured.id);
});

test('a Python task that calls retry() into the TS worker\'s queue is run there with retries=1', async () => {
  const pyQueue = uniqueName('py2ts-pyq');
  pyWorker = await startPythonWorker({ broker: url, queues: [pyQueue], retryQueue: QUEUE, pool: 'threads', concurrency: 2 });
  const [r] = await runPythonProducer(py({ queue: pyQueue }), [{ task: 'interop.flaky', args: ['r1'] }], 20);
  assert.equal(r.error, null, `unexpected error ${JSON.stringify(r.error)}\n${pyWorker.tail()}`);
  assert.deepEqual(r.result, { lang: 'ts', tag: 'r1', retries: 1 });
  assert.match(pyWorker.logs, /Retry in 1s/);
});
