// The bench harness's -E: S3 and S4 run again with task events on, for Celeriac and Python Celery, in
// the same sitting; the rows without -E keep events off (no events flag reaches the workers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildPlan } from '../../bench/lib/plan.js';
import { parseArgs } from '../../bench/lib/cli.js';

test('bench -E adds S3/S4 rows with events on for Celeriac and Celery; the others stay off', () => {
  assert.equal(parseArgs(['-E']).events, true);
  assert.equal(parseArgs(['--events']).events, true);
  assert.equal(parseArgs([]).events, false);
  const plan = buildPlan({ smoke: false, scenarios: ['S3', 'S4'], systems: ['celeriac', 'celery', 'celery-node'], redisBroker: 'redis://x/14', redisBackend: 'redis://x/15', amqpBroker: null, events: true });
  const withE = plan.filter((c) => c.variant.endsWith(' -E'));
  const without = plan.filter((c) => !c.variant.endsWith(' -E'));
  assert.deepEqual([...new Set(withE.map((c) => `${c.scenario} ${c.variant}`))].sort(), ['S3 c=1 -E', 'S3 c=10 -E', 'S3 c=100 -E', 'S4 c=1 -E', 'S4 c=10 -E', 'S4 c=100 -E']);
  assert.ok(withE.every((c) => c.spec.events === true && c.system !== 'celery-node'));
  assert.ok(withE.some((c) => c.system === 'celery') && withE.some((c) => c.system === 'celeriac'));
  assert.ok(without.every((c) => c.spec.events === undefined), 'events off: nothing asks for them');
  assert.equal(without.length, buildPlan({ smoke: false, scenarios: ['S3', 'S4'], systems: ['celeriac', 'celery', 'celery-node'], redisBroker: 'redis://x/14', redisBackend: 'redis://x/15', amqpBroker: null }).length);
});

test('bench --concurrency limits S3 and S4 to the concurrencies given', () => {
  assert.deepEqual(parseArgs(['--concurrency', '100']).concurrencies, [100]);
  assert.deepEqual(parseArgs(['--concurrency', '10,100']).concurrencies, [10, 100]);
  assert.equal(parseArgs([]).concurrencies, null);
  assert.throws(() => parseArgs(['--concurrency', 'x']), /whole numbers/);
  const plan = buildPlan({ smoke: false, scenarios: ['S3', 'S4'], systems: ['celeriac', 'celery'], redisBroker: 'redis://x/14', redisBackend: 'redis://x/15', amqpBroker: null, events: true, concurrencies: [100] });
  assert.deepEqual([...new Set(plan.map((c) => `${c.scenario} ${c.variant}`))].sort(), ['S3 c=100', 'S3 c=100 -E', 'S4 c=100', 'S4 c=100 -E']);
  assert.ok(plan.every((c) => c.spec.concurrency === 100));
});

test('bench --drain-tasks sets how many tasks the Node systems drain in S3 and S4 (Python and c=1 keep theirs)', () => {
  assert.equal(parseArgs(['--drain-tasks', '300000']).drainTasks, 300000);
  assert.equal(parseArgs([]).drainTasks, null);
  assert.throws(() => parseArgs(['--drain-tasks', '12.5']), /whole number/);
  const plan = buildPlan({ smoke: false, scenarios: ['S3', 'S4'], systems: ['celeriac', 'celery'], redisBroker: 'redis://x/14', redisBackend: 'redis://x/15', amqpBroker: null, events: true, drainTasks: 300000 });
  const node = plan.filter((c) => c.system === 'celeriac' && c.spec.concurrency > 1);
  assert.ok(node.length > 0 && node.every((c) => c.spec.n === 300000 && c.prefill?.n === 300000));
  assert.ok(plan.filter((c) => c.system === 'celery').every((c) => c.spec.n === 3000), 'Python Celery drains its own count');
  assert.ok(plan.filter((c) => c.system === 'celeriac' && c.spec.concurrency === 1).every((c) => c.spec.n === 10000), 'c=1 keeps 10,000');
  const plain = buildPlan({ smoke: false, scenarios: ['S3'], systems: ['celeriac'], redisBroker: 'redis://x/14', redisBackend: 'redis://x/15', amqpBroker: null });
  assert.ok(plain.filter((c) => c.spec.concurrency > 1).every((c) => c.spec.n === 50000), 'the default is unchanged');
});
