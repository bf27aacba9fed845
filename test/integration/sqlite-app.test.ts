// End to end through the public API on the embedded transports: new Celeriac(...), app.task, app.worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Celeriac } from '../../src/app/celeriac.js';
import { createLogger } from '../../src/app/log.js';
import { eventually, sleep, uniqueName } from '../helpers/services.js';

const quiet = () => createLogger('critical');

test('with nothing configured, broker and results go to ./celeriac.db (created in the working directory)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-default-'));
  const cwd = process.cwd();
  const saved = { b: process.env.CELERY_BROKER_URL, r: process.env.CELERY_RESULT_BACKEND };
  delete process.env.CELERY_BROKER_URL;
  delete process.env.CELERY_RESULT_BACKEND;
  process.chdir(dir);
  try {
    const app = new Celeriac('default', { logger: quiet() });
    const add = app.task('tasks.add', (x: number, y: number) => x + y);
    const worker = app.worker({ concurrency: 2, logger: quiet() });
    await worker.start();
    const r = await add.delay(2, 3);
    assert.equal(await r.get({ timeout: 10_000 }), 5);
    await worker.close();
    await app.close();
    const raw = new BetterSqlite3(path.join(dir, 'celeriac.db'), { readonly: true });
    const stored = raw.prepare('SELECT status FROM celeriac_results WHERE task_id = ?').get(r.id) as { status: string } | undefined;
    assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    raw.close();
    assert.equal(stored?.status, 'SUCCESS');
  } finally {
    process.chdir(cwd);
    if (saved.b !== undefined) process.env.CELERY_BROKER_URL = saved.b;
    if (saved.r !== undefined) process.env.CELERY_RESULT_BACKEND = saved.r;
  }
});

test('an ETA task held past several leases runs exactly once, not before its ETA, with two workers', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-eta-'));
  const url = `sqlite:///${path.join(dir, 'q.db')}`;
  const app = new Celeriac('eta', { broker: url, backend: url, logger: quiet(), broker_transport_options: { visibility_timeout: 0.6 } });
  const runs: number[] = [];
  const tick = app.task('tasks.tick', () => { runs.push(Date.now()); return 'ok'; });
  const workers = [app.worker({ concurrency: 1, hostname: 'a@h', logger: quiet() }), app.worker({ concurrency: 1, hostname: 'b@h', logger: quiet() })];
  for (const w of workers) await w.start();
  const sent = Date.now();
  const r = await tick.applyAsync([], {}, { countdown: 2.5 });
  assert.equal(await r.get({ timeout: 10_000 }), 'ok');
  await sleep(1000); // a second holder would run it within a lease or two
  assert.equal(runs.length, 1, `ran ${runs.length} times`);
  assert.ok(runs[0]! - sent >= 2400, `ran ${runs[0]! - sent} ms after sending`);
  for (const w of workers) await w.close();
  await app.close();
});

test('warm shutdown puts prefetched, unstarted messages back at once', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-warm-'));
  const url = `sqlite:///${path.join(dir, 'q.db')}`;
  const app = new Celeriac('warm', { broker: url, backend: url, logger: quiet(), broker_transport_options: { visibility_timeout: 60 } });
  let started = 0;
  const slow = app.task('tasks.slow', async () => { started++; await sleep(800); return 1; });
  for (let i = 0; i < 14; i++) await slow.delay();
  const worker = app.worker({ concurrency: 2, prefetchMultiplier: 4, logger: quiet() });
  try {
    await worker.start();
    await eventually(() => started === 2, 'two tasks running');
    const broker = await app.broker();
    // Early ack (acks_late off) frees a running task's slot, as in Celery: 2 running + 8 held.
    await eventually(async () => (await broker.queueLength('celery')) === 4, 'the worker to hold eight (prefetch 2 × 4)');
    await sleep(200);
    assert.equal(await broker.queueLength('celery'), 4, 'never more than the prefetch');
    await worker.close();
    assert.equal(started, 2, 'the unstarted ones did not run');
    assert.equal(await broker.queueLength('celery'), 12, 'restored without waiting for the 60 s lease');
  } finally {
    await worker.close();
    await app.close();
  }
});

test('memory:// end to end: producer and worker in one process, results wait without polling', async () => {
  const url = `memory://${uniqueName('app')}`;
  const app = new Celeriac('mem', { broker: url, backend: url, logger: quiet() });
  const mul = app.task('tasks.mul', (x: number, y: number) => x * y);
  const worker = app.worker({ concurrency: 4, logger: quiet() });
  await worker.start();
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => mul.delay(i, 2)));
  const values = await Promise.all(results.map((r) => r.get({ timeout: 5000 })));
  assert.deepEqual(values, Array.from({ length: 50 }, (_, i) => i * 2));
  await worker.close();
  await app.close();
});
