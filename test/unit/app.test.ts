import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSettings, effectiveBrokerUrl, effectiveBackendUrl } from '../../src/app/settings.js';
import { parameterNames, bindArguments } from '../../src/app/params.js';
import { encodeException, decodeException, exceptionRepr } from '../../src/app/exceptions.js';
import { Celeriac } from '../../src/index.js';

test('settings answer to Celery names and camelCase aliases', () => {
  const s = createSettings({ brokerTransportOptions: { visibility_timeout: 10 } });
  assert.deepEqual(s.broker_transport_options, { visibility_timeout: 10 });
  s.task_acks_late = true;
  assert.equal(s.taskAcksLate, true);
  assert.equal(s.worker_prefetch_multiplier, 4);
  assert.equal(s.result_expires, 86400);
  const legacy = createSettings({ BROKER_URL: 'redis://x' });
  assert.equal(legacy.broker_url, 'redis://x');
});

test('CELERY_BROKER_URL / CELERY_RESULT_BACKEND win, as in Celery; nothing configured means the embedded default', () => {
  const s = createSettings({ broker_url: 'redis://a' });
  assert.equal(effectiveBrokerUrl(s, { CELERY_BROKER_URL: 'redis://env' }).url, 'redis://env');
  assert.equal(effectiveBrokerUrl(s, {}).url, 'redis://a');
  const none = createSettings();
  assert.deepEqual(effectiveBrokerUrl(none, {}), { url: 'sqlite:///celeriac.db', embeddedDefault: true });
  assert.equal(effectiveBackendUrl(none, {}), 'sqlite:///celeriac.db');
  assert.equal(effectiveBackendUrl(s, {}), null);
  assert.equal(effectiveBackendUrl(s, { CELERY_RESULT_BACKEND: 'redis://r' }), 'redis://r');
});

test('Python kwargs fill handler parameters by name', () => {
  assert.deepEqual(parameterNames((x: number, y = 2) => x + y), ['x', 'y']);
  // A destructured parameter has no name, and a keyword cannot fill a rest parameter (Python's *args).
  assert.deepEqual(parameterNames(async function named(a: string, { b }: { b: string }, ...rest: unknown[]) { return [a, b, rest]; }), ['a', undefined, undefined]);
  assert.deepEqual(bindArguments('t', ['x', 'y'], [1], { y: 5 }, false), [1, 5]);
  assert.deepEqual(bindArguments('t', ['x', 'y'], [], { y: 5, x: 4 }, false), [4, 5]);
  assert.throws(() => bindArguments('tasks.add', ['x', 'y'], [1], { z: 5 }, false), /tasks\.add\(\) got an unexpected keyword argument 'z'/);
  assert.throws(() => bindArguments('t', ['x'], [1], { x: 5 }, false), /multiple values for argument 'x'/);
  assert.deepEqual(bindArguments('t', ['x'], [1], { z: 5 }, true), [1]);
});

test('parameter names are read with a JavaScript parser: defaults holding commas, parentheses, arrows, strings and templates', () => {
  const split = (text: string, sep = ',', limit = 10) => text.split(sep).slice(0, limit);
  assert.deepEqual(parameterNames(split), ['text', 'sep', 'limit']);
  const bound = bindArguments('split', parameterNames(split), [], { text: 'a,b,c,d', limit: 2 }, false) as [string, string?, number?];
  assert.deepEqual(split(...bound), ['a', 'b'], 'limit=2 lands on limit, sep keeps its default');
  const tricky = (a = ')', b = (x: number) => x, c = `${'=>'},`, d = { e: [1, 2] }, /* f, */ g = 'h') => [a, b, c, d, g];
  assert.deepEqual(parameterNames(tricky), ['a', 'b', 'c', 'd', 'g']);
  const obj = { async method(p: number, q = [1, 2]) { return [p, q]; } };
  assert.deepEqual(parameterNames(obj.method), ['p', 'q']);
  assert.deepEqual(parameterNames(function* gen(s: string) { yield s; } as never), ['s']);
  assert.deepEqual(parameterNames(((one: number) => one) as never), ['one']);
  assert.equal(parameterNames(split.bind(null)), null, 'a bound function has no readable source');
  assert.throws(() => bindArguments('split', null, [], { text: 'x' }, false), /parameter names cannot be read.*params/);
  assert.deepEqual(bindArguments('split', null, ['x'], {}, false), ['x'], 'positional calls still work');
});

test('JS errors map to Python built-ins of the same name and back', () => {
  assert.deepEqual(encodeException(new TypeError('x')), { exc_type: 'TypeError', exc_message: ['x'], exc_module: 'builtins' });
  assert.deepEqual(encodeException(new Error('plain')), { exc_type: 'Exception', exc_message: ['plain'], exc_module: 'builtins' });
  class PaymentDeclined extends Error {}
  assert.equal(encodeException(new PaymentDeclined('no')).exc_type, 'PaymentDeclined');
  const e = decodeException({ exc_type: 'ValueError', exc_message: ['bad thing'], exc_module: 'builtins' });
  assert.equal(e.name, 'ValueError');
  assert.equal(e.message, 'bad thing');
  assert.ok(e instanceof Error);
  assert.equal(exceptionRepr({ exc_type: 'ValueError', exc_message: ['bad thing'], exc_module: 'builtins' }), "ValueError('bad thing')");
});

test('routing: call option, task_routes (with globs), task option, default queue', () => {
  const app = new Celeriac('t', { broker: 'memory://', task_routes: { 'billing.*': { queue: 'billing' }, 'x.exact': { queue: 'exact' } } });
  app.task('own.queue', () => 1, { queue: 'own' });
  assert.equal(app.routeFor('billing.charge', {}).queue, 'billing');
  assert.equal(app.routeFor('x.exact', {}).queue, 'exact');
  assert.equal(app.routeFor('own.queue', {}).queue, 'own');
  assert.equal(app.routeFor('other', {}).queue, 'celery');
  assert.equal(app.routeFor('billing.charge', { queue: 'q' }).queue, 'q');
});
