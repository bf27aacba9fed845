// What a call gets for bad input: countdown/eta/expires errors naming the option and value, queue ''
// meaning the default queue, and a task name registered twice keeping its first handler (as Celery).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';

test('bad countdown / expires / eta values raise an error naming the option and the value, before anything is sent', async () => {
  const app = new Celeriac('t', { broker: 'memory://', logger: createLogger('critical') });
  const t = app.task('tasks.t', () => 1);
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ countdown: Number.NaN }, /tasks\.t.*countdown must be a finite number of seconds.*got NaN/],
    [{ countdown: Infinity }, /countdown must be a finite number.*got Infinity/],
    [{ countdown: 1e20 }, /countdown must be a finite number of seconds within the range of a date, got 100000000000000000000/],
    [{ countdown: 'abc' }, /countdown must be a number of seconds, got "abc" \(string\)/],
    [{ expires: Number.NaN }, /expires must be a finite number.*NaN/],
    [{ expires: 'abc' }, /expires must be a number of seconds, a Date or an ISO-8601 string, got "abc"/],
    [{ expires: new Date('garbage') }, /expires must be .* got an Invalid Date/],
    [{ eta: new Date('garbage') }, /eta must be a Date or an ISO-8601 string, got an Invalid Date/],
    [{ eta: 'tomorrow-ish' }, /eta must be a Date or an ISO-8601 string, got "tomorrow-ish"/],
    [{ eta: 12 }, /eta must be a Date or an ISO-8601 string, got 12 \(number\)/],
  ];
  const broker = await app.broker();
  for (const [options, error] of cases) {
    await assert.rejects(t.applyAsync([], {}, options), error, JSON.stringify(options));
    await assert.rejects(app.sendTask('tasks.t', [], {}, options), error);
    await assert.rejects(app.sendTasks([{ name: 'tasks.t', options }]), error);
  }
  assert.equal(await broker.queueLength('celery'), 0, 'nothing was published');
  // Good values still go through.
  await t.applyAsync([], {}, { countdown: 5, expires: new Date(Date.now() + 60_000) });
  await t.applyAsync([], {}, { eta: '2030-01-01T00:00:00+00:00', expires: 30 });
  assert.equal(await broker.queueLength('celery'), 2);
  await app.close();
});

test("queue: '' goes to the default queue (routes, task option and task_default_queue still apply)", () => {
  const app = new Celeriac('t', { broker: 'memory://', task_default_queue: 'main', task_routes: { 'routed.*': { queue: 'routed' } } });
  app.task('own.queue', () => 1, { queue: 'own' });
  assert.equal(app.routeFor('x', { queue: '' }).queue, 'main');
  assert.equal(app.routeFor('routed.a', { queue: '' }).queue, 'routed');
  assert.equal(app.routeFor('own.queue', { queue: '' }).queue, 'own');
  const m = app.buildMessage('x', [], {}, { queue: '' }, 'reply');
  assert.deepEqual([m.queue, m.exchange, m.routingKey], ['main', '', 'main']);
  // routing_key '' on the default exchange also means the route's queue.
  assert.equal(app.buildMessage('x', [], {}, { routing_key: '' }, 'reply').routingKey, 'main');
});

test('registering a task name twice keeps the first handler and warns, as Celery', async () => {
  const lines: string[] = [];
  const app = new Celeriac('t', { broker: 'memory://', backend: 'memory://', logger: createLogger('warning', (l) => lines.push(l)) });
  const first = app.task('tasks.dup', () => 'first');
  const second = app.task('tasks.dup', () => 'second');
  assert.equal(second, first);
  assert.equal([...app.tasks.keys()].filter((name) => name === 'tasks.dup').length, 1);
  assert.match(lines.join(''), /WARNING.*Task tasks\.dup is already registered: keeping the first handler/);
  const w = app.worker({ concurrency: 1 });
  await w.start();
  assert.equal(await (await second.delay()).get({ timeout: 5000 }), 'first');
  await w.close();
  await app.close();
});
