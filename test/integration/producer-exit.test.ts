// A producer script exits once its work is done, without app.close(): idle connections do not hold the
// event loop (as pg's allowExitOnIdle), while a call still waiting on the broker or backend does, and a
// running worker keeps its process alive. On Redis, RabbitMQ and the embedded database.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Celeriac } from '../../src/index.js';
import { AMQP_URL, eventually, redisDb, requireRabbit, requireRedis, sleep, uniqueName } from '../helpers/services.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'celeriac-exit-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const TRANSPORTS = [
  { name: 'redis', broker: () => redisDb(6), backend: () => redisDb(6), check: requireRedis },
  { name: 'amqp', broker: () => AMQP_URL, backend: () => redisDb(6), check: requireRabbit },
  { name: 'sqlite', broker: () => `sqlite:///${dir}/exit.db`, backend: () => `sqlite:///${dir}/exit.db`, check: async () => undefined },
];

interface Run { child: ChildProcess; out: () => string; exit: Promise<number | null> }

function start(fixture: string, env: Record<string, string>): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/fixtures', fixture)], {
    cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, out: () => out, exit };
}

for (const t of TRANSPORTS) {
  test(`[${t.name}] a producer that awaited its result exits by itself; while it waits, it stays alive`, async () => {
    await t.check();
    const queue = uniqueName(`exit-${t.name}`);
    const env = { CELERIAC_FIXTURE_BROKER: t.broker(), CELERIAC_FIXTURE_BACKEND: t.backend(), CELERIAC_FIXTURE_QUEUE: queue };
    const producer = start('producer.ts', env);
    await eventually(() => producer.out().includes('sent '), 'the producer to send its task', 20_000);
    // No worker yet: the producer is waiting on get() with idle sockets, and must not exit.
    await sleep(1500);
    assert.equal(producer.child.exitCode, null, `the producer exited while waiting for its result:\n${producer.out()}`);

    const app = new Celeriac('exit-worker', { broker: t.broker(), backend: t.backend(), task_default_queue: queue });
    app.task('tasks.add', (x: number, y: number) => x + y);
    const worker = app.worker({ concurrency: 1 });
    await worker.start();
    try {
      const code = await Promise.race([producer.exit, sleep(20_000).then(() => 'still running')]);
      assert.equal(code, 0, `the producer did not exit by itself after its result:\n${producer.out()}`);
      assert.match(producer.out(), /^result 5$/m);
    } finally {
      await worker.close();
      await app.close();
    }
  });

  test(`[${t.name}] a worker started through the API keeps its process alive while idle, and serves`, async () => {
    await t.check();
    const queue = uniqueName(`idle-${t.name}`);
    const run = start('idle-worker.ts', { CELERIAC_FIXTURE_BROKER: t.broker(), CELERIAC_FIXTURE_BACKEND: t.backend(), CELERIAC_FIXTURE_QUEUE: queue });
    await eventually(() => run.out().includes('ready'), 'the worker to be ready', 20_000);
    await sleep(2000);
    assert.equal(run.child.exitCode, null, `the idle worker exited:\n${run.out()}`);
    const app = new Celeriac('idle-producer', { broker: t.broker(), backend: t.backend(), task_default_queue: queue });
    try {
      assert.equal(await (await app.sendTask('tasks.add', [20, 22])).get({ timeout: 20_000 }), 42);
    } finally {
      await app.close();
      run.child.kill('SIGKILL');
      await run.exit;
    }
  });
}
