// The celeriac command line against a real Redis: call, worker, result, purge, -A lookup, warnings, and bad input.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { requireRedis, redisDb, uniqueName, eventually } from '../helpers/services.js';
import { CLI, runCli } from '../helpers/cli.js';
import { startRedisServer } from '../helpers/redis-server.js';

const BROKER = redisDb(1);
const cli = runCli;

before(requireRedis);

test('call prints the task id last; a worker runs it; result prints the value; purge -f empties the queue', async () => {
  const q = uniqueName('cli');
  const env = { CELERIAC_TEST_QUEUE: q };
  const common = ['-A', 'test/fixtures/cli-app.ts', '-b', BROKER, '--result-backend', BROKER];
  const called = await cli([...common, 'call', 'tasks.add', '--args', '[2, 3]'], env);
  assert.equal(called.code, 0, called.stderr);
  const id = called.stdout.trim().split('\n').pop()!;
  assert.match(id, /^[0-9a-f-]{36}$/);

  const worker = spawn(process.execPath, [...CLI, ...common, 'worker', '-c', '2', '-l', 'info', '-n', 'cli@test'], { env: { ...process.env, ...env } });
  let log = '';
  worker.stderr.on('data', (d) => (log += d));
  let banner = '';
  worker.stdout.on('data', (d) => (banner += d));
  try {
    const res = await cli([...common, 'result', id, '--timeout', '20'], env);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout.trim(), '5');
    await eventually(() => log.includes(`Task tasks.add[${id}] succeeded in`), 'the worker to log success');
    assert.match(log, new RegExp(`Task tasks\\.add\\[${id}\\] received`));
    assert.match(banner, /\.> app:\s+cli-test/);
    assert.match(banner, /\. tasks\.add/);
    const failed = await cli([...common, 'call', 'tasks.fail', '--args', '["boom"]', '--wait', '--timeout', '20'], env);
    assert.equal(failed.code, 1);
    assert.equal(failed.stderr.trim(), 'Error: TypeError: boom');
    const big = await cli([...common, 'call', 'tasks.echo', '--args', '[18446744073709551617]', '--wait', '--timeout', '20'], env);
    assert.equal(big.code, 0, big.stderr);
    assert.equal(big.stdout.trim().split('\n')[0], '18446744073709551617', 'an integer beyond 2^64 is printed exactly (then the id)');
  } finally {
    worker.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => worker.once('exit', (c) => r(c)));
    assert.equal(code, 0, 'a warm shutdown exits 0');
  }
  assert.match(log, /Warm shutdown/);

  for (let i = 0; i < 3; i++) await cli([...common, 'call', 'tasks.add', '--args', '[1, 1]'], env);
  const purged = await cli([...common, 'purge', '-f'], env);
  assert.equal(purged.code, 0, purged.stderr);
  assert.equal(purged.stdout.trim(), 'Purged 3 messages from 1 known task queue.');
  const redis = new Redis(BROKER);
  assert.equal(await redis.llen(q), 0);
  await redis.del(`_kombu.binding.${q}`);
  redis.disconnect();
});

test('bad flags, bad JSON, a missing app export and an unreachable broker each give one clear line and a non-zero exit', async () => {
  const bad = await cli(['-A', 'test/fixtures/cli-app.ts', 'worker', '--bogus']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown option '--bogus'/);

  const conc = await cli(['-A', 'test/fixtures/cli-app.ts', 'worker', '-c', 'zero']);
  assert.equal(conc.code, 2);
  assert.match(conc.stderr, /-c\/--concurrency takes a whole number/);

  const json = await cli(['-b', BROKER, 'call', 'tasks.add', '--args', '{not json']);
  assert.equal(json.code, 2);
  assert.match(json.stderr, /--args must be JSON list/);

  const noApp = await cli(['-A', 'test/fixtures/no-app.ts', 'worker']);
  assert.equal(noApp.code, 2);
  assert.equal(noApp.stderr.trim().split('\n').length, 1);
  assert.match(noApp.stderr, /does not export an app/);

  const missing = await cli(['-A', 'test/fixtures/nope.ts', 'worker']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no such module \(looked for test\/fixtures\/nope.ts\)/);

  const down = await cli(['-b', 'redis://:secret@127.0.0.1:1/0', 'call', 'tasks.add']);
  assert.equal(down.code, 1);
  assert.equal(down.stderr.trim().split('\n').length, 1, `one line, got: ${down.stderr}`);
  assert.match(down.stderr, /Cannot connect to redis:\/\/:\*\*@127\.0\.0\.1:1\/0/);
  assert.ok(!down.stderr.includes('secret'), 'the password is masked');

  const scheme = await cli(['-b', 'kafka://x', 'call', 'tasks.add']);
  assert.equal(scheme.code, 1);
  assert.match(scheme.stderr, /Unsupported broker URL scheme "kafka"/);
});

test('call with a name the app does not register warns with "did you mean" and still sends it; -A finds a module without its extension', async () => {
  const q = uniqueName('cli-typo');
  const env = { CELERIAC_TEST_QUEUE: q };
  const redis = new Redis(BROKER);
  try {
    const typo = await cli(['-A', 'test/fixtures/cli-app', '-b', BROKER, 'call', 'tasks.ad', '--args', '[2, 3]'], env);
    assert.equal(typo.code, 0, typo.stderr);
    assert.match(typo.stdout.trim(), /^[0-9a-f-]{36}$/);
    assert.equal(typo.stderr.trim(), 'Warning: tasks.ad is not a task of app cli-test (-A test/fixtures/cli-app); did you mean tasks.add? Sending it anyway: a worker in another process or language may implement it.');
    assert.equal(await redis.llen(q), 1, 'the message was sent');

    const dotted = await cli(['-A', 'test.fixtures.cli-app', '-b', BROKER, 'call', 'py.only'], env);
    assert.equal(dotted.code, 0, dotted.stderr);
    assert.match(dotted.stderr, /py\.only is not a task of app cli-test \(-A test\.fixtures\.cli-app\) Sending it anyway/);
    assert.doesNotMatch(dotted.stderr, /did you mean/, 'no suggestion when no name is close');

    const known = await cli(['-A', 'test/fixtures/cli-app', '-b', BROKER, 'call', 'tasks.add', '--args', '[1, 1]'], env);
    assert.equal(known.code, 0);
    assert.equal(known.stderr, '', 'a registered name gives no warning');

    const noApp = await cli(['-b', BROKER, 'call', 'tasks.anything', '-Q', q]);
    assert.equal(noApp.stderr, '', 'without -A nothing is known, so nothing is warned');
    assert.equal(await redis.llen(q), 4);
  } finally {
    await redis.del(q, `_kombu.binding.${q}`);
    redis.disconnect();
  }
});

test('a worker whose app registers no task warns at start', async () => {
  const q = uniqueName('cli-empty');
  const worker = spawn(process.execPath, [...CLI, '-A', 'test/fixtures/no-tasks', '-b', BROKER, 'worker', '-Q', q], { env: process.env });
  let log = '';
  worker.stderr.on('data', (d) => (log += d));
  try {
    await eventually(() => log.includes('registers no tasks'), 'the no-tasks warning', 20_000);
    assert.match(log, /WARNING\/MainProcess\] App empty \(-A test\/fixtures\/no-tasks\) registers no tasks: this worker rejects every message it receives as unregistered/);
  } finally {
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('exit', r));
  }
});

test('unreachable or refusing brokers: one line each (a RabbitMQ that is down is not retried by call; NOAUTH names the password)', async () => {
  const t0 = Date.now();
  const amqp = await cli(['-b', 'amqp://guest:guest@127.0.0.1:1//', 'call', 'tasks.add']);
  assert.equal(amqp.code, 1);
  assert.equal(amqp.stderr.trim().split('\n').length, 1, `one line, got: ${amqp.stderr}`);
  assert.match(amqp.stderr, /^Error: .*Cannot connect to RabbitMQ at amqp:\/\/guest:\*\*@127\.0\.0\.1:1\/\/: connection refused/);
  assert.ok(Date.now() - t0 < 15_000, 'call does not retry like a worker starting up');

  const server = await startRedisServer({ password: 'hunter2' });
  try {
    const noauth = await cli(['-b', `redis://127.0.0.1:${server.port}/0`, 'call', 'tasks.add']);
    assert.equal(noauth.code, 1);
    assert.equal(noauth.stderr.trim().split('\n').length, 1, `one line, got: ${noauth.stderr}`);
    assert.match(noauth.stderr, /NOAUTH Authentication required\. Redis wants a password: add :password@ before the host in the URL/);
    assert.doesNotMatch(noauth.stderr, /\.\.|Is Redis running/);
  } finally {
    await server.stop();
  }
});
