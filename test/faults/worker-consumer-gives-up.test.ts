// A consumer that can no longer consume is visible: the worker retries with Celery's settings
// (broker_connection_retry, broker_connection_max_retries), then stops remote control (ping goes
// unanswered), logs one clear line and exits non-zero, on every transport. Each broker here is
// private to the test (own redis-server, own RabbitMQ node, own SQLite file).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Celeriac, type Worker } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import { ManagedProcess, REPO_ROOT } from '../interop/harness.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { startRabbitNode, type RabbitNode } from '../helpers/rabbit-node.js';
import { eventually, redisDb, requireRedis, uniqueName } from '../helpers/services.js';

const servers: RedisServer[] = [];
const procs: ManagedProcess[] = [];
const apps: Celeriac[] = [];
let rabbit: RabbitNode | undefined;
after(async () => {
  for (const p of procs) if (p.running) await p.kill();
  for (const a of apps) await a.close().catch(() => undefined);
  for (const s of servers) await s.destroy();
  await rabbit?.stop();
});

/** `celeriac worker` on the hardening fixture app, with broker_connection_max_retries from the environment. */
async function cliWorker(broker: string, backend: string, maxRetries: number): Promise<ManagedProcess> {
  const queue = uniqueName('gives-up');
  const p = new ManagedProcess(`worker ${queue}`, process.execPath, [
    '--import', 'tsx', 'src/cli/main.ts', '-A', 'test/fixtures/hardening-app.ts', '-b', broker, '--result-backend', backend,
    'worker', '-c', '2', '-l', 'info', '-n', `${queue}@test`,
  ], { cwd: REPO_ROOT, env: { ...process.env, CELERIAC_TEST_QUEUE: queue, CELERIAC_TEST_MAX_RETRIES: String(maxRetries) } });
  procs.push(p);
  await p.waitForOutput(/ready\./, 60_000, 'the worker to be ready');
  const client = new Celeriac('gives-up-client', { broker, backend, task_default_queue: queue });
  apps.push(client);
  assert.equal(await (await client.sendTask('h.add', [2, 3])).get({ timeout: 20_000 }), 5, 'serving before the fault');
  return p;
}

/** The process's exit code, waiting at most `ms`. */
async function exitCode(p: ManagedProcess, ms: number): Promise<number | null> {
  await eventually(() => !p.running, `${p.label} to exit`, ms, 100).catch((err: Error) => {
    throw new Error(`${err.message}. Output:\n${p.tail()}`);
  });
  return p.child.exitCode;
}

test('[redis] Redis gone for good: after broker_connection_max_retries the CLI worker logs one line and exits 1', { timeout: 120_000 }, async () => {
  const redis = await startRedisServer();
  servers.push(redis);
  const w = await cliWorker(redis.url(0), redis.url(1), 3);
  await redis.kill();
  assert.equal(await exitCode(w, 60_000), 1, `exit code 1; output:\n${w.tail()}`);
  const gaveUp = w.logs.split('\n').filter((l) => l.includes('Gave up consuming'));
  assert.equal(gaveUp.length, 1, w.tail());
  assert.match(gaveUp[0]!, /CRITICAL.*Unrecoverable error: Gave up consuming from redis:\/\/127\.0\.0\.1:\d+\/0 after 3 retries \(broker_connection_max_retries=3\): .*raise broker_connection_max_retries/);
});

test('[redis] Redis gone while an acks_late task runs: the task ends, its ack is not waited for long, and the worker exits 1', { timeout: 120_000 }, async () => {
  const redis = await startRedisServer();
  servers.push(redis);
  const w = await cliWorker(redis.url(0), redis.url(1), 2);
  const client = apps.at(-1)!;
  const r = await client.sendTask('h.sleep_late', [4000]);
  await w.waitForOutput(new RegExp(`h\\.sleep_late\\[${r.id}\\] received`), 20_000);
  const killedAt = Date.now();
  await redis.kill();
  assert.equal(await exitCode(w, 60_000), 1, w.tail());
  const took = Date.now() - killedAt;
  assert.ok(took < 25_000, `exited ${took} ms after Redis went away (an ack to a dead Redis is given up on after 5 s)`);
  assert.match(w.logs, /Stopped waiting for acknowledgements and results after 5s: the broker is not answering/);
});

test('[redis] a Redis that comes back within the retries: the worker resumes by itself and serves on', { timeout: 120_000 }, async () => {
  const redis = await startRedisServer();
  servers.push(redis);
  const w = await cliWorker(redis.url(0), redis.url(1), 100);
  await redis.kill();
  await w.waitForOutput(/Cannot consume from redis/, 20_000, 'the failure to be said');
  await redis.start();
  const client = apps.at(-1)!;
  assert.equal(await (await client.sendTask('h.add', [4, 5])).get({ timeout: 60_000 }), 9);
  assert.ok(w.running, 'still running');
  assert.equal(w.count(/Cannot consume from redis/), 1, `the same failure said once:\n${w.tail()}`);
  await w.stop();
});

test('[redis] a consumer refused by ACL gives up: remote control stops with it (ping unanswered) and workerFailed is emitted', { timeout: 60_000 }, async () => {
  const redis = await startRedisServer();
  servers.push(redis);
  redis.cli('ACL', 'SETUSER', 'w', 'on', '>pw', '~*', '&*', '+@all');
  const url = `redis://w:pw@127.0.0.1:${redis.port}/0`;
  const queue = uniqueName('acl-gives-up');
  const lines: string[] = [];
  const logger = createLogger('info', (l) => void lines.push(l));
  const app = new Celeriac('acl', { broker: url, backend: url, task_default_queue: queue, broker_connection_max_retries: 3, logger });
  apps.push(app);
  app.task('h.add', (x: number, y: number) => x + y);
  const worker: Worker = app.worker({ concurrency: 1, hostname: `${queue}@test`, logger });
  const failed = new Promise<Error>((resolve) => worker.once('workerFailed', resolve));
  await worker.start();
  const admin = new Celeriac('admin', { broker: redis.url(0), backend: redis.url(0) });
  apps.push(admin);
  const before = await admin.control.ping({ timeout: 2 });
  assert.ok(before.some((r) => `${queue}@test` in r), `answers ping while it consumes: ${JSON.stringify(before)}`);

  redis.cli('ACL', 'SETUSER', 'w', '-evalsha', '-eval', '-blmove');
  const err = await failed;
  assert.match(err.message, /after 3 retries \(broker_connection_max_retries=3\): Redis user 'w' may not run (EVALSHA|BLMOVE)/);
  assert.equal(worker.failure, err);
  assert.equal(lines.filter((l) => l.includes('Unrecoverable error')).length, 1, lines.join(''));
  const afterwards = await admin.control.ping({ timeout: 2 });
  assert.ok(!afterwards.some((r) => `${queue}@test` in r), `a worker that consumes nothing does not answer ping: ${JSON.stringify(afterwards)}`);
});

test('[amqp] RabbitMQ gone for good: after broker_connection_max_retries the CLI worker logs one line and exits 1', { timeout: 240_000 }, async () => {
  await requireRedis(); // the result backend
  rabbit = await startRabbitNode(`celeriac-gives-up-${process.pid}`);
  const w = await cliWorker(rabbit.url, redisDb(13), 2);
  await rabbit.stopApp();
  assert.equal(await exitCode(w, 90_000), 1, `exit code 1; output:\n${w.tail()}`);
  const gaveUp = w.logs.split('\n').filter((l) => l.includes('Gave up consuming'));
  assert.equal(gaveUp.length, 1, w.tail());
  assert.match(gaveUp[0]!, /Unrecoverable error: Gave up consuming from amqp:\/\/guest:\*\*@127\.0\.0\.1:\d+\/\/ after 2 retries \(broker_connection_max_retries=2\)/);
});

test('[sqlite] an embedded database that became unusable: after broker_connection_max_retries the CLI worker logs one line and exits 1', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'celeriac-gives-up-'));
  try {
    const file = path.join(dir, 'broker.db');
    const w = await cliWorker(`sqlite:///${file}`, `sqlite:///${file}`, 3);
    // Another program replaces the schema under the worker (a restored backup of something else, a bad migration).
    const other = new Database(file);
    other.pragma('busy_timeout = 5000');
    other.exec('DROP TABLE celeriac_messages');
    other.close();
    assert.equal(await exitCode(w, 30_000), 1, `exit code 1; output:\n${w.tail()}`);
    const gaveUp = w.logs.split('\n').filter((l) => l.includes('Gave up consuming'));
    assert.equal(gaveUp.length, 1, w.tail());
    assert.match(gaveUp[0]!, /Gave up consuming from the embedded broker .*broker\.db after 3 retries \(broker_connection_max_retries=3\): claiming messages failed: no such table: celeriac_messages/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
