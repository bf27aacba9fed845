// app.worker() checks its options as the CLI checks -c: a bad value fails at once, naming the option (or
// the setting it came from), instead of reaching the broker as NaN.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, type WorkerOptions } from '../../../src/index.js';

const app = () => new Celeriac('options', { broker: 'memory://options', backend: 'memory://options' });

test('concurrency: NaN, 0, -1, 1.5, Infinity and a string are refused with the option named; whole numbers pass', () => {
  for (const bad of [NaN, 0, -1, 1.5, Infinity, '4' as unknown as number]) {
    assert.throws(() => app().worker({ concurrency: bad }), (e: Error) => {
      assert.match(e.message, /^app\.worker\(\{ concurrency \}\) must be a whole number of at least 1 \(-c\/--concurrency\), got /);
      assert.ok(e.message.endsWith(`got ${typeof bad === 'string' ? JSON.stringify(bad) : String(bad)}`), e.message);
      return true;
    });
  }
  assert.equal(app().worker({ concurrency: 3 }).concurrency, 3);
  assert.equal(app().worker({}).concurrency, 10);
});

test('a bad worker_concurrency or worker_prefetch_multiplier setting is named as the setting', () => {
  const a = app();
  a.conf.worker_concurrency = Number('abc');
  assert.throws(() => a.worker(), /^RangeError: worker_concurrency must be a whole number of at least 1 \(-c\/--concurrency\), got NaN$/);
  const b = app();
  b.conf.worker_prefetch_multiplier = -2;
  assert.throws(() => b.worker(), /^RangeError: worker_prefetch_multiplier must be a whole number of at least 0/);
  const c = app();
  c.conf.worker_prefetch_multiplier = 0;
  assert.equal(c.worker({ concurrency: 2 }).prefetch, 0, '0 still means no prefetch limit');
});

test('the other numeric options: prefetchMultiplier, autoscale, autoscaleKeepalive, softShutdownTimeout, max*PerChild', () => {
  const cases: [WorkerOptions, RegExp][] = [
    [{ prefetchMultiplier: NaN }, /app\.worker\(\{ prefetchMultiplier \}\) must be a whole number of at least 0/],
    [{ autoscale: [NaN, 1] }, /app\.worker\(\{ autoscale \}\) must be \[max, min\].*got \[NaN, 1\]/],
    [{ autoscale: [2, 3] }, /1 <= min <= max/],
    [{ autoscale: [3, 1], autoscaleKeepalive: -1 }, /app\.worker\(\{ autoscaleKeepalive \}\) must be a number of seconds/],
    [{ softShutdownTimeout: NaN }, /app\.worker\(\{ softShutdownTimeout \}\) must be a number of seconds, 0 or more, got NaN/],
    [{ maxTasksPerChild: -5 }, /app\.worker\(\{ maxTasksPerChild \}\) must be a whole number of at least 1 \(--max-tasks-per-child\)/],
    [{ maxMemoryPerChild: 1.5 }, /app\.worker\(\{ maxMemoryPerChild \}\) must be a whole number/],
    [{ queues: [''] }, /app\.worker\(\{ queues \}\) must list queue names/],
    [{ hostname: '' }, /app\.worker\(\{ hostname \}\) must be a node name/],
  ];
  for (const [opts, message] of cases) assert.throws(() => app().worker(opts), message, JSON.stringify(opts));
  const w = app().worker({ prefetchMultiplier: 1, autoscale: [4, 2], softShutdownTimeout: 0.5, maxTasksPerChild: 0 });
  assert.equal(w.prefetch, 4);
  assert.equal(w.concurrency, 4);
});
