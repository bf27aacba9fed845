// A Redis worker started before Redis is up retries its connection as Celery's consumer does
// (broker_connection_retry_on_startup, broker_connection_max_retries), starts serving when Redis
// appears, and exits non-zero with one line only when it finally gives up. Through the real CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { Celeriac } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import { freePort, RedisServer } from '../helpers/redis-server.js';
import { eventually, uniqueName } from '../helpers/services.js';

const CLI = ['--import', 'tsx', 'src/cli/main.ts', '-A', 'test/fixtures/startup-app.ts'];

function startWorker(broker: string, env: Record<string, string>): { child: ChildProcess; out: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [...CLI, '-b', broker, '--result-backend', broker, 'worker', '-c', '1', '-l', 'info'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stderr!.on('data', (d) => (text += d));
  child.stdout!.on('data', () => undefined);
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, out: () => text, exit };
}

test('a worker started before Redis retries on start-up and serves once Redis is up; SIGTERM still exits 0', async (t) => {
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}/0`;
  const queue = uniqueName('startup');
  const w = startWorker(url, { CELERIAC_TEST_QUEUE: queue });
  const server = new RedisServer();
  server.port = port;
  try {
    await eventually(() => (w.out().match(/Trying again in/g) ?? []).length >= 2, 'two start-up retries to be logged', 30_000);
    assert.match(w.out(), new RegExp(`WARNING/MainProcess\\] consumer: Cannot connect to redis://127\\.0\\.0\\.1:${port}/0: .*ECONNREFUSED.* Trying again in \\d\\.00 seconds\\.\\.\\. \\(1/100\\)`));
    assert.equal(w.child.exitCode, null, 'the worker is still waiting');
    const upAt = Date.now();
    await server.start();
    const producer = new Celeriac('p', { broker: url, backend: url, task_default_queue: queue, logger: createLogger('critical') });
    try {
      const r = await producer.sendTask('tasks.add', [20, 22]);
      assert.equal(await r.get({ timeout: 30_000 }), 42);
      t.diagnostic(`the worker served a task ${Date.now() - upAt} ms after Redis came up`);
    } finally {
      await producer.close();
    }
    w.child.kill('SIGTERM');
    assert.equal(await w.exit, 0);
  } finally {
    w.child.kill('SIGKILL');
    await server.destroy();
  }
});

test('when the retries run out the worker exits non-zero with one Error line naming the URL', async () => {
  const port = await freePort();
  const w = startWorker(`redis://:pw@127.0.0.1:${port}/0`, { CELERIAC_TEST_MAX_RETRIES: '2' });
  const code = await w.exit;
  assert.equal(code, 1);
  const lines = w.out().trim().split('\n');
  const errors = lines.filter((l) => l.startsWith('Error:'));
  assert.equal(errors.length, 1, w.out());
  assert.equal(lines[lines.length - 1], errors[0], 'the error is the last line');
  assert.match(errors[0]!, new RegExp(`^Error: OperationalError: Cannot connect to redis://:\\*\\*@127\\.0\\.0\\.1:${port}/0: .*ECONNREFUSED.*Gave up after 3 attempts \\(broker_connection_max_retries = 2\\)\\.$`));
  assert.equal((w.out().match(/Trying again in/g) ?? []).length, 2);
  assert.doesNotMatch(w.out(), /pw@/);
});

test('broker_connection_retry_on_startup = false: the worker exits at once on the first failure', async () => {
  const port = await freePort();
  const t0 = Date.now();
  const w = startWorker(`redis://127.0.0.1:${port}/0`, { CELERIAC_TEST_RETRY_ON_STARTUP: 'false' });
  assert.equal(await w.exit, 1);
  assert.doesNotMatch(w.out(), /Trying again/);
  assert.match(w.out(), /^Error: OperationalError: Cannot connect to redis:/m);
  assert.ok(Date.now() - t0 < 20_000);
});

test('SIGTERM while the worker retries its start-up connection: a warm shutdown, exit 0, at once', async () => {
  const port = await freePort();
  const w = startWorker(`redis://127.0.0.1:${port}/0`, {});
  await eventually(() => /Trying again in/.test(w.out()), 'a start-up retry', 30_000);
  const t0 = Date.now();
  w.child.kill('SIGTERM');
  assert.equal(await w.exit, 0, w.out());
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms to stop`);
  assert.doesNotMatch(w.out(), /^Error:/m);
});
