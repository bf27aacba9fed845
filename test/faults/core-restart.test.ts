// The worker and producer survive a Redis crash and restart, and a half-open connection, by themselves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac } from '../../src/index.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { eventually, sleep } from '../helpers/services.js';

test('Redis killed and restarted under load: every confirmed task runs, the worker resumes by itself', { timeout: 120_000 }, async () => {
  // appendfsync always: what Redis acknowledged survives its own crash, so "confirmed" means kept.
  const server = await startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  const app = new Celeriac('restart', { broker: server.url(0), backend: server.url(1), task_acks_late: true });
  const ran = new Map<number, number>();
  app.task('tasks.mark', async (i: number) => {
    ran.set(i, (ran.get(i) ?? 0) + 1);
    await sleep(5);
  });
  const worker = app.worker({ concurrency: 4 });
  await worker.start();
  const confirmed = new Set<number>();
  const failed = new Set<number>();
  let killedAt = 0;
  const producer = (async () => {
    for (let i = 0; i < 300; i++) {
      await app.sendTask('tasks.mark', [i], {}, { ignoreResult: true }).then(
        () => confirmed.add(i),
        () => failed.add(i),
      );
      await sleep(8);
    }
  })();
  try {
    await eventually(() => confirmed.size >= 60, '60 confirmed publishes before the crash', 30_000);
    await server.kill();
    killedAt = ran.size;
    await sleep(1500);
    await server.start(); // same port and directory: the AOF is replayed
    await producer;
    await eventually(() => [...confirmed].every((i) => ran.has(i)), 'every confirmed task to run after the restart', 60_000);
    assert.ok(ran.size > killedAt, 'the worker ran tasks after the restart');
    assert.ok(confirmed.size >= 250, `most publishes were confirmed (${confirmed.size} confirmed, ${failed.size} failed)`);
    for (const i of failed) assert.ok(!confirmed.has(i));
  } finally {
    await worker.close({ cold: true });
    await app.close();
    await server.destroy();
  }
});

test('a half-open broker connection does not wedge the worker: the watchdog replaces it', { timeout: 120_000 }, async () => {
  const server = await startRedisServer();
  const proxy = await new FaultProxy(server.port).start();
  const viaProxy = `redis://127.0.0.1:${proxy.port}/0`;
  const app = new Celeriac('halfopen', { broker: viaProxy, backend: server.url(1) });
  const producer = new Celeriac('producer', { broker: server.url(0), backend: server.url(1) });
  const seen: string[] = [];
  app.task('tasks.echo', (s: string) => {
    seen.push(s);
    return s;
  });
  const worker = app.worker({ concurrency: 2 });
  await worker.start();
  try {
    const before = await producer.sendTask('tasks.echo', ['before']);
    assert.equal(await before.get({ timeout: 10_000 }), 'before');
    assert.ok(proxy.blackholeExisting() >= 1, 'the worker had connections through the proxy');
    const t0 = Date.now();
    const after = await producer.sendTask('tasks.echo', ['after']);
    assert.equal(await after.get({ timeout: 60_000 }), 'after');
    const took = (Date.now() - t0) / 1000;
    assert.ok(seen.includes('after'));
    process.stdout.write(`# half-open connection detected and replaced; task ran ${took.toFixed(1)} s after the blackhole\n`);
  } finally {
    await worker.close({ cold: true });
    await app.close();
    await producer.close();
    await proxy.stop();
    await server.destroy();
  }
});
