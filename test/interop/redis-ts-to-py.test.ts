// Celeriac producer → Python Celery worker over Redis, results and errors read back in TS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { Celeriac } from '../../src/index.js';
import { eventually, uniqueName } from '../helpers/services.js';
import { requirePythonCelery, runPythonProducer, startPythonWorker, type ManagedProcess } from './harness.js';
import { openTestDb } from './redis-tools.js';

const DB = 3;
const QUEUE = uniqueName('ts2py');
let url: string;
let redis: Redis;
let app: Celeriac;
let pyWorker: ManagedProcess;

before(async () => {
  await requirePythonCelery();
  ({ url, redis } = await openTestDb(DB));
  pyWorker = await startPythonWorker({ broker: url, queues: [QUEUE], pool: 'threads', concurrency: 4 });
  app = new Celeriac('interop-ts2py', { broker: url, backend: url, task_default_queue: QUEUE });
});

after(async () => {
  await app?.close();
  await pyWorker?.stop();
  redis?.disconnect();
});

const withLogs = (msg: string) => `${msg}\nPython worker log:\n${pyWorker.tail(30)}`;

test('TS sends tasks by name to a Python worker and reads the results', async () => {
  const [a, m, kw] = await Promise.all([
    app.sendTask('py.add', [2, 3]).then((r) => r.get({ timeout: 10_000 })),
    app.sendTask('py.mul', [6, 7]).then((r) => r.get({ timeout: 10_000 })),
    app.sendTask('py.add', [], { y: 5, x: 2 }).then((r) => r.get({ timeout: 10_000 })),
  ]);
  assert.deepEqual([a, m, kw], [5, 42, 7], withLogs('results'));
});

test('a TS task object whose name is a Python task runs on the Python worker via delay()', async () => {
  // Registered only so the producer has a typed handle; the Python worker runs it.
  const mul = app.task('py.mul', (x: number, y: number) => x * y);
  const r = await mul.delay(3, 4);
  assert.equal(await r.get({ timeout: 10_000 }), 12);
});

test('a Python ValueError is seen in TS as an Error named ValueError with its message', async () => {
  const r = await app.sendTask('py.fail', []);
  await assert.rejects(r.get({ timeout: 10_000 }), (err: unknown) => {
    assert.ok(err instanceof Error, 'rejects with an Error');
    assert.equal(err.name, 'ValueError');
    assert.match(err.message, /bad thing/);
    return true;
  });
  const meta = JSON.parse((await redis.get(`celery-task-meta-${r.id}`))!) as Record<string, unknown>;
  assert.equal(meta.status, 'FAILURE', 'the Python worker stored FAILURE');
});

test('what TS sends reaches the Python task.request: args, kwargs, retries, root/parent ids, priority, ETA, custom headers', async () => {
  const sentAt = Date.now();
  const r = await app.sendTask('py.echo_request', [1, 'é😀', 2.5], { k: 'v', n: null, list: [1, 2] }, {
    priority: 7,
    countdown: 1,
    headers: { 'x-custom': 'v' },
  });
  const req = (await r.get({ timeout: 15_000 })) as Record<string, unknown>;
  const doneAt = Date.now();
  assert.equal(req.lang, 'py');
  assert.deepEqual(req.args, [1, 'é😀', 2.5]);
  assert.deepEqual(req.kwargs, { k: 'v', n: null, list: [1, 2] });
  assert.equal(req.id, r.id);
  assert.equal(req.task, 'py.echo_request');
  assert.equal(req.retries, 0);
  assert.equal(req.root_id, r.id, 'root_id is the id of a top-level call');
  assert.equal(req.parent_id, null);
  assert.equal(req.correlation_id, r.id);
  assert.deepEqual(req.timelimit, [null, null]);
  const di = req.delivery_info as Record<string, unknown>;
  assert.equal(di.routing_key, QUEUE);
  assert.equal(di.exchange, '');
  assert.equal(di.priority, 7, 'priority 7 went through the priority list');
  assert.ok(typeof req.eta === 'string' && Date.parse(req.eta) >= sentAt + 900, `eta ${String(req.eta)} is ~1 s after sending`);
  assert.ok(doneAt - sentAt >= 900, 'Python held it until its ETA');
  assert.deepEqual(req.custom_headers, { 'x-custom': 'v' });
});

test('a Python client reads the result of a task TS sent, by id', async () => {
  const r = await app.sendTask('py.add', [20, 22]);
  const [seen] = await runPythonProducer({ broker: url, queue: QUEUE }, [{ get: r.id }], 10);
  assert.equal(seen.id, r.id);
  assert.equal(seen.state, 'SUCCESS');
  assert.equal(seen.result, 42);
  assert.equal(await r.get({ timeout: 5000 }), 42);
});

test('time limits and shadow set in TS reach the Python worker as timelimit [hard, soft] and the shadow name', async () => {
  const r = await app.sendTask('py.echo_request', [], {}, { timeLimit: 30, softTimeLimit: 20, shadow: 'alias.echo' });
  const req = (await r.get({ timeout: 10_000 })) as Record<string, unknown>;
  assert.deepEqual(req.timelimit, [30, 20]);
  assert.equal(req.shadow, 'alias.echo');
  // The worker's log reaches us through a pipe, possibly after the result does.
  await eventually(() => /alias\.echo/.test(pyWorker.logs), 'the Python worker to log the shadow name', 10_000);
});

test('a retry written by a Python worker keeps the id: TS .get() waits through RETRY to the final result', async () => {
  const r = await app.sendTask('interop.flaky', ['t1']);
  assert.deepEqual(await r.get({ timeout: 15_000 }), { lang: 'py', tag: 't1', retries: 1 });
});

test('Python producer and TS producer share the queue: both get their results from the same Python worker', async () => {
  const [fromTs, fromPy] = await Promise.all([
    app.sendTask('py.add', [1, 1]).then((r) => r.get({ timeout: 10_000 })),
    runPythonProducer({ broker: url, queue: QUEUE }, [{ task: 'py.add', args: [2, 2] }]),
  ]);
  assert.equal(fromTs, 2);
  assert.equal(fromPy[0].result, 4);
});
