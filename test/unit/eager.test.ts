// task.apply() and task_always_eager / task_eager_propagates: the task runs inline and its result is
// already known, as Celery's EagerResult. No broker is reached (the app points at a closed port).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, currentTask } from '../../src/index.js';
import { EagerResult } from '../../src/app/eager.js';
import { createLogger } from '../../src/app/log.js';

// Nothing listens on port 1: any attempt to publish would fail the test.
const unreachable = { broker: 'redis://127.0.0.1:1/0', backend: 'redis://127.0.0.1:1/1', broker_connection_timeout: 1, logger: createLogger('critical') };

test('task.apply() runs the handler inline and returns an EagerResult', async () => {
  const app = new Celeriac('eager', unreachable);
  const seen: unknown[] = [];
  const add = app.task('tasks.add', (x: number, y: number) => {
    const t = currentTask()!;
    seen.push(t.request.isEager, t.request.id);
    return x + y;
  });
  const r = await add.apply([2, 3]);
  assert.ok(r instanceof EagerResult);
  assert.equal(await r.get(), 5);
  assert.equal(await r.state(), 'SUCCESS');
  assert.equal(await r.ready(), true);
  assert.equal(await r.successful(), true);
  assert.deepEqual(seen, [true, r.id]);
  const withId = await add.apply([1, 1], {}, { taskId: 'fixed-id' });
  assert.equal(withId.id, 'fixed-id');
  // Python-style keyword arguments bind by name, as on a worker.
  assert.equal(await (await add.apply([], { y: 10, x: 1 })).get(), 11);
});

test('a failing task: FAILURE with the error, get() rejects with it; throw / task_eager_propagates reject apply() itself', async () => {
  const app = new Celeriac('eager', unreachable);
  const boom = app.task('tasks.boom', () => {
    throw new TypeError('bad input');
  });
  const r = await boom.apply();
  assert.equal(await r.state(), 'FAILURE');
  assert.equal(await r.failed(), true);
  await assert.rejects(r.get(), (err: Error) => err instanceof TypeError && err.message === 'bad input');
  assert.ok((await r.info()) instanceof TypeError);
  assert.match(String(await r.traceback()), /TypeError: bad input/);
  assert.ok(((await r.get({ propagate: false })) as unknown) instanceof TypeError);
  await assert.rejects(boom.apply([], {}, { throw: true }), /bad input/);
  app.conf.task_eager_propagates = true;
  await assert.rejects(boom.apply(), /bad input/);
});

test('task_always_eager: delay/applyAsync/applyBulk run inline and never touch the broker', async () => {
  const app = new Celeriac('eager', { ...unreachable, task_always_eager: true });
  let runs = 0;
  const mul = app.task('tasks.mul', async (x: number, y: number) => {
    runs++;
    return x * y;
  });
  const r = await mul.delay(6, 7);
  assert.ok(r instanceof EagerResult);
  assert.equal(await r.get(), 42);
  assert.equal(await (await mul.applyAsync([2, 2], {}, { countdown: 60 })).get(), 4, 'eager ignores the countdown, as Celery');
  const bulk = await mul.applyBulk([{ args: [1, 2] }, { args: [3, 4] }]);
  assert.deepEqual(await Promise.all(bulk.map((b) => b.get())), [2, 12]);
  assert.equal(runs, 4);
  // Without task_eager_propagates the failure is in the result; with it delay() rejects.
  const fails = app.task('tasks.fails', () => {
    throw new Error('nope');
  });
  assert.equal(await (await fails.delay()).state(), 'FAILURE');
  app.conf.task_eager_propagates = true;
  await assert.rejects(fails.delay(), /nope/);
});

test('retry in eager mode runs the task again at once, up to max_retries, then fails with MaxRetriesExceededError', async () => {
  const app = new Celeriac('eager', unreachable);
  let attempts = 0;
  const flaky = app.task('tasks.flaky', (task, until: number) => {
    attempts++;
    if (task.request.retries < until) throw task.retry({ countdown: 3600 });
    return task.request.retries;
  }, { bind: true, maxRetries: 3 });
  assert.equal(await (await flaky.apply([2])).get(), 2);
  assert.equal(attempts, 3);
  const r = await flaky.apply([10]);
  assert.equal(await r.state(), 'FAILURE');
  await assert.rejects(r.get(), (err: Error) => err.name === 'MaxRetriesExceededError');
  // autoretry_for applies too.
  let n = 0;
  const auto = app.task('tasks.auto', () => {
    if (++n < 3) throw new RangeError('transient');
    return 'ok';
  }, { autoretryFor: [RangeError], maxRetries: 5 });
  assert.equal(await (await auto.apply()).get(), 'ok');
  assert.equal(n, 3);
});

test('apply() checks its timing options like applyAsync', async () => {
  const app = new Celeriac('eager', unreachable);
  const t = app.task('tasks.t', () => 1);
  await assert.rejects(t.apply([], {}, { countdown: Number.NaN }), /tasks\.t\.apply: countdown must be a finite number of seconds.*NaN/);
});
