// The SQLite result backend on real files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import BetterSqlite3 from 'better-sqlite3';
import { createBackend } from '../../src/backends/sqlite.js';
import { createBroker } from '../../src/brokers/sqlite/index.js';
import type { SqliteBackend } from '../../src/backends/sqlite.js';
import type { ResultMeta } from '../../src/backends/types.js';
import { sleep } from '../helpers/services.js';
import { ctx, spawnChild, tempDb, testMessage } from './sqlite-fixtures.js';

function meta(taskId: string, status: string, result: unknown = null): ResultMeta {
  return { status, result, traceback: null, children: [], date_done: status === 'SUCCESS' ? new Date().toISOString() : null, task_id: taskId };
}

async function open(url: string, extra: Record<string, unknown> = {}): Promise<SqliteBackend> {
  const b = createBackend(url, ctx({}, extra)) as SqliteBackend;
  await b.connect();
  return b;
}

test('get returns PENDING when nothing is stored, then the stored meta; a SUCCESS is never overwritten', async () => {
  const { url } = tempDb();
  const b = await open(url);
  const pending = await b.get('t1');
  assert.equal(pending.status, 'PENDING');
  assert.equal(pending.task_id, 't1');
  await b.store(meta('t1', 'STARTED'));
  assert.equal((await b.get('t1')).status, 'STARTED');
  await b.store({ ...meta('t1', 'SUCCESS', { x: [1, 2], s: 'é' }), name: 'tasks.add' });
  await b.store(meta('t1', 'FAILURE', { exc_type: 'ValueError', exc_message: ['late'], exc_module: 'builtins' }));
  await b.store(meta('t1', 'STARTED'));
  const got = await b.get('t1');
  assert.equal(got.status, 'SUCCESS');
  assert.deepEqual(got.result, { x: [1, 2], s: 'é' });
  assert.equal(got.name, 'tasks.add');
  await b.forget('t1');
  assert.equal((await b.get('t1')).status, 'PENDING');
  await b.close();
});

test('broker and backend share one file in different tables, and results survive a reopen', async () => {
  const { file, url } = tempDb();
  const broker = createBroker(url, ctx());
  await broker.connect();
  const b = await open(url);
  await broker.publish(testMessage('m'), { exchange: '', routingKey: 'celery' });
  await b.store(meta('t', 'SUCCESS', 7));
  await b.close();
  await broker.close();
  const raw = new BetterSqlite3(file, { readonly: true });
  const tables = (raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'celeriac_%' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
  raw.close();
  assert.ok(tables.includes('celeriac_messages') && tables.includes('celeriac_results'), `broker and backend tables in one file, got ${tables.join(', ')}`);
  const again = await open(url);
  assert.equal((await again.get('t')).result, 7);
  await again.close();
});

test('wait resolves promptly on an in-process store, ignores non-ready states, and times out with TimeoutError', async () => {
  const { url } = tempDb();
  const b = await open(url);
  const t0 = Date.now();
  const waiting = b.wait('t2', { timeout: 5000 });
  await b.store(meta('t2', 'STARTED'));
  setTimeout(() => void b.store(meta('t2', 'FAILURE', { exc_type: 'KeyError', exc_message: ['k'], exc_module: 'builtins' })), 100);
  const done = await waiting;
  assert.equal(done.status, 'FAILURE');
  assert.ok(Date.now() - t0 < 400, `took ${Date.now() - t0} ms`);
  await assert.rejects(b.wait('never', { timeout: 150 }), (err: Error) => err.name === 'TimeoutError' && err.message.includes('never'));
  const ac = new AbortController();
  const aborted = b.wait('never', { signal: ac.signal });
  ac.abort(new Error('stop waiting'));
  await assert.rejects(aborted, /stop waiting/);
  await b.close();
});

test('wait sees a result stored by another process (polling)', async () => {
  const { url } = tempDb();
  const b = await open(url);
  const waiting = b.wait('cross', { timeout: 20_000 });
  const child = spawnChild(['store', url, 'cross', 'SUCCESS']);
  assert.equal(await child.exited, 0, child.stderr);
  const t0 = Date.now();
  const done = await waiting;
  assert.ok(Date.now() - t0 < 600, 'found within a poll interval of the store');
  assert.equal(done.status, 'SUCCESS');
  assert.equal(done.result, 42);
  await b.close();
});

test('result_expires: an expired result reads as PENDING and is deleted by cleanup', async () => {
  const { file, url } = tempDb();
  const b = await open(url, { result_expires: 0.3 });
  await b.store(meta('old', 'SUCCESS', 1));
  assert.equal((await b.get('old')).status, 'SUCCESS');
  await sleep(400);
  assert.equal((await b.get('old')).status, 'PENDING');
  await b.store(meta('old', 'SUCCESS', 2)); // an expired SUCCESS no longer blocks a new one
  assert.equal((await b.get('old')).result, 2);
  await b.store(meta('other', 'SUCCESS', 3));
  await sleep(400);
  assert.equal(await b.cleanup(), 2);
  const raw = new BetterSqlite3(file, { readonly: true });
  assert.equal((raw.prepare('SELECT count(*) AS n FROM celeriac_results').get() as { n: number }).n, 0);
  raw.close();
  await b.close();
  const never = await open(url, { result_expires: null });
  await never.store(meta('kept', 'SUCCESS', 1));
  await sleep(50);
  assert.equal(await never.cleanup(), 0);
  assert.equal((await never.get('kept')).status, 'SUCCESS');
  await never.close();
});
