// Bad input through the API on every transport: queue '' reaches the default queue (as Celery), an
// invalid Date result can't crash a worker logging at info, and ~130 MB of arguments publish and run
// with bounded argsrepr and log lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Celeriac } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import { AMQP_URL, redisDb, requireRabbit, requireRedis, uniqueName } from '../helpers/services.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'celeriac-bad-input-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

const TRANSPORTS: { name: string; broker: () => string; backend: () => string; check?: () => Promise<void> }[] = [
  { name: 'memory', broker: () => 'memory://', backend: () => 'memory://' },
  { name: 'sqlite', broker: () => `sqlite:///${path.join(tmp, 'q.db')}`, backend: () => `sqlite:///${path.join(tmp, 'q.db')}` },
  { name: 'redis', broker: () => redisDb(11), backend: () => redisDb(11), check: requireRedis },
  { name: 'amqp', broker: () => AMQP_URL, backend: () => redisDb(11), check: async () => { await requireRabbit(); await requireRedis(); } },
];

for (const t of TRANSPORTS) {
  test(`${t.name}: queue '' goes to the default queue and runs`, async () => {
    await t.check?.();
    const queue = uniqueName('empty-q');
    const app = new Celeriac('bad', { broker: t.broker(), backend: t.backend(), task_default_queue: queue, logger: createLogger('critical') });
    app.task('tasks.add', (x: number, y: number) => x + y);
    const w = app.worker({ concurrency: 1 });
    await w.start();
    try {
      const r = await app.sendTask('tasks.add', [2, 3], {}, { queue: '' });
      assert.equal(await r.get({ timeout: 15_000 }), 5);
      const bulk = await app.sendTasks([{ name: 'tasks.add', args: [1, 1], options: { queue: '' } }]);
      assert.equal(await bulk[0]!.get({ timeout: 15_000 }), 2);
    } finally {
      await w.close();
      const broker = await app.broker();
      await broker.purge(queue).catch(() => undefined);
      await app.close();
    }
  });
}

test('redis: a task returning an invalid Date at -l info: the log line says so and the worker keeps serving', async () => {
  await requireRedis();
  const lines: string[] = [];
  const queue = uniqueName('bad-date');
  const app = new Celeriac('bad', { broker: redisDb(11), backend: redisDb(11), task_default_queue: queue, logger: createLogger('info', (l) => lines.push(l)) });
  const when = app.task('tasks.when', () => new Date('garbage'));
  const ok = app.task('tasks.ok', () => 'still here');
  const w = app.worker({ concurrency: 1 });
  await w.start();
  try {
    const bad = await when.delay();
    assert.equal(await (await ok.delay()).get({ timeout: 15_000 }), 'still here');
    const line = lines.find((l) => l.includes(`tasks.when[${bad.id}] succeeded`));
    assert.ok(line, lines.join(''));
    assert.match(line!, /succeeded in [0-9.]+s: <Invalid Date>/);
    // Two more tasks after it: the batch its failed store left behind must not fail later ones.
    assert.deepEqual(await Promise.all([ok.delay(), ok.delay()].map(async (p) => (await p).get({ timeout: 15_000 }))), ['still here', 'still here']);
  } finally {
    await w.close();
    await app.close();
  }
});

test('redis: ~130 MB of arguments publish and run; argsrepr and the log lines stay bounded', async (t) => {
  await requireRedis();
  const lines: string[] = [];
  const queue = uniqueName('big');
  const app = new Celeriac('big', { broker: redisDb(11), backend: redisDb(11), task_default_queue: queue, logger: createLogger('info', (l) => lines.push(l)) });
  const echo = app.task('tasks.echo', (s: string) => s);
  const w = app.worker({ concurrency: 1 });
  await w.start();
  try {
    const big = 'a'.repeat(130 * 1024 * 1024);
    const t0 = Date.now();
    const r = await echo.delay(big);
    const published = Date.now() - t0;
    const value = await r.get({ timeout: 240_000 });
    const roundTrip = Date.now() - t0;
    assert.equal(value.length, big.length);
    const mine = lines.filter((l) => l.includes(r.id));
    assert.equal(mine.length, 2, mine.join(''));
    for (const l of mine) assert.ok(l.length < 2048, `a log line of ${l.length} characters`);
    t.diagnostic(`130 MB argument: publish ${published} ms, round trip (worker run, 130 MB result stored and read) ${roundTrip} ms, RSS ${Math.round(process.memoryUsage().rss / 1e6)} MB`);
  } finally {
    await w.close();
    await app.close();
  }
});
