// acks_late messages held by a worker that is SIGKILLed are not lost: after the visibility timeout they come
// back (kombu's unacked / unacked_index restore) and run on a TS or a Python worker, whichever restores them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { Celeriac } from '../../src/index.js';
import { eventually, sleep, uniqueName } from '../helpers/services.js';
import { requirePythonCelery, startPythonWorker, startTsWorker, type ManagedProcess } from './harness.js';
import { openTestDb, readQueue, readUnacked, type UnackedEntry } from './redis-tools.js';

const DB = 4;
/** Seconds, on both sides (Celeriac's and kombu's broker_transport_options.visibility_timeout). */
const VISIBILITY = 2;
let url: string;
let redis: Redis;
let producer: Celeriac;
const running: ManagedProcess[] = [];

before(async () => {
  await requirePythonCelery();
  ({ url, redis } = await openTestDb(DB));
  producer = new Celeriac('interop-visibility', { broker: url, backend: url });
});

after(async () => {
  for (const p of running) await p.stop(3000);
  await producer?.close();
  redis?.disconnect();
});

async function track<T extends ManagedProcess>(p: Promise<T>): Promise<T> {
  const proc = await p;
  running.push(proc);
  return proc;
}

/** Send interop.slow messages; returns their ids. */
async function sendSlow(queue: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await producer.sendTask('interop.slow', [`m${i}`, 0.1], {}, { queue })).id);
  return ids;
}

/** Wait until every id is in `unacked`, i.e. taken by a consumer and not acknowledged. */
async function waitUnacked(ids: string[], holder: ManagedProcess): Promise<UnackedEntry[]> {
  // eventually() only resolves with a truthy value, so the result is never null.
  return eventually<UnackedEntry[] | null>(async () => {
    const entries = (await readUnacked(redis)).filter((u) => ids.includes(String(u.envelope.headers.id)));
    return entries.length === ids.length ? entries : null;
  }, `${ids.length} messages held unacked by ${holder.label}. Its output:\n${holder.tail(20)}`, 15_000) as Promise<UnackedEntry[]>;
}

/** Wait until the oldest delivery is older than the visibility timeout (what restore looks at). */
async function waitPastVisibility(entries: UnackedEntry[]): Promise<void> {
  const newest = Math.max(...entries.map((e) => e.score ?? Date.now() / 1000));
  const wait = (newest + VISIBILITY) * 1000 - Date.now() + 300;
  if (wait > 0) await sleep(wait);
}

/** Wait for every result; on failure say where the messages are and what the worker logged. */
async function results(ids: string[], timeoutMs: number, worker?: ManagedProcess): Promise<Array<Record<string, unknown>>> {
  try {
    return await Promise.all(ids.map((id) => producer.AsyncResult(id).get({ timeout: timeoutMs }) as Promise<Record<string, unknown>>));
  } catch (err) {
    const unacked = (await readUnacked(redis)).map((u) => `${String(u.envelope.headers.id)} score=${u.score} rk=${u.routingKey}`);
    const keys = await redis.keys('*');
    throw new Error(`${(err as Error).message}\nids: ${ids.join(' ')}\nunacked: ${unacked.join('; ') || '(none)'}\nkeys: ${keys.join(' ')}\n${worker ? `${worker.label} log:\n${worker.tail(25)}` : ''}`);
  }
}

/** Start a TS worker that takes `n` messages and never finishes them, then SIGKILL it. */
async function killedTsHolder(queue: string, n: number): Promise<{ ids: string[]; entries: UnackedEntry[] }> {
  const holder = await track(startTsWorker({ broker: url, queues: [queue], acksLate: true, hold: true, concurrency: n, visibilityTimeout: 3600 }));
  const ids = await sendSlow(queue, n);
  await holder.waitForLines(/^prerun /, n, 15_000, `${n} tasks started`);
  const entries = await waitUnacked(ids, holder);
  await holder.kill();
  assert.equal(holder.running, false);
  // The kill left them exactly where they were: unacked, not in the queue, no result.
  const after = (await readUnacked(redis)).filter((u) => ids.includes(String(u.envelope.headers.id)));
  assert.equal(after.length, n, 'all messages still in unacked after SIGKILL');
  assert.equal((await readQueue(redis, queue)).length, 0, 'none went back to the queue by itself');
  for (const e of entries) assert.equal(e.routingKey, queue, 'unacked entry names the queue to restore to');
  return { ids, entries };
}

test('SIGKILL of a TS worker holding acks_late messages loses none: a new TS worker (started with the CLI) restores and runs them', async () => {
  const q = uniqueName('vt-ts-ts');
  const { ids } = await killedTsHolder(q, 3);
  const w = await track(startTsWorker({ broker: url, queues: [q], acksLate: true, visibilityTimeout: VISIBILITY, concurrency: 3, viaCli: true }));
  const res = await results(ids, 20_000 + VISIBILITY * 1000, w);
  assert.deepEqual(res.map((r) => r.lang), ['ts', 'ts', 'ts']);
  assert.deepEqual(res.map((r) => r.tag).sort(), ['m0', 'm1', 'm2']);
  assert.deepEqual(res.map((r) => r.redelivered), [true, true, true], 'task.request.deliveryInfo.redelivered');
  for (const id of ids) await w.waitForOutput(new RegExp(`interop\\.slow\\[${id}\\] succeeded`), 5000, `the new worker to log ${id} succeeded`);
  await eventually(async () => (await readUnacked(redis)).length === 0, 'unacked empty once all are acked', 5000);
  await w.stop();
});

test('SIGKILL of a TS worker holding acks_late messages loses none: a Python worker restores them at startup and runs them', async () => {
  const q = uniqueName('vt-ts-py');
  const { ids, entries } = await killedTsHolder(q, 2);
  await waitPastVisibility(entries);
  // solo pool: Celery 5.2.6's threads pool never acknowledges acks_late messages on Redis (they stay in unacked).
  const w = await track(startPythonWorker({ broker: url, queues: [q], acksLate: true, visibilityTimeout: VISIBILITY, pool: 'solo', concurrency: 1 }));
  const res = await results(ids, 15_000, w);
  assert.deepEqual(res.map((r) => r.lang), ['py', 'py'], `Python ran them. Log:\n${w.tail(20)}`);
  assert.deepEqual(res.map((r) => r.redelivered), [true, true], 'Python sees them as redelivered');
  await eventually(async () => (await readUnacked(redis)).length === 0, `unacked empty once all are acked. Python log:\n${w.tail(30)}`, 5000);
  await w.stop();
});

test('a message put back by a Python worker\'s visibility-timeout restore is run by a TS worker', async () => {
  const q = uniqueName('vt-py-restore');
  const { ids, entries } = await killedTsHolder(q, 1);
  await waitPastVisibility(entries);
  // This Python worker consumes another queue: it only restores (at startup), it cannot run the message.
  const restorer = await track(startPythonWorker({ broker: url, queues: [uniqueName('vt-idle')], visibilityTimeout: VISIBILITY, pool: 'solo', concurrency: 1 }));
  const [item] = (await eventually(async () => {
    const items = await readQueue(redis, q);
    return items.length ? items : null;
  }, 'the Python worker to RPUSH the message back onto its queue', 10_000))!;
  await restorer.stop();
  assert.equal(item.envelope.headers.id, ids[0]);
  assert.equal(item.envelope.headers.redelivered, true, 'kombu marks the headers redelivered');
  assert.equal(item.envelope.properties.delivery_info.redelivered, true, 'and delivery_info');
  assert.equal(item.envelope.properties.delivery_tag, entries[0].tag, 'the delivery tag is kept');
  assert.equal((await readUnacked(redis)).length, 0, 'restore removed it from unacked');
  // A TS worker with the default (long) visibility timeout: it runs what Python put back, it restores nothing itself.
  const w = await track(startTsWorker({ broker: url, queues: [q], acksLate: true, concurrency: 1 }));
  const [res] = await results(ids, 10_000, w);
  assert.equal(res.lang, 'ts');
  assert.equal(res.redelivered, true, 'the TS task sees the redelivered flag Python set');
  assert.match(w.logs, new RegExp(`prerun ${ids[0]}`));
  await w.stop();
});

test('SIGKILL of a Python worker holding acks_late messages loses none: a TS worker restores and runs them', async () => {
  const q = uniqueName('vt-py-ts');
  const holder = await track(startPythonWorker({ broker: url, queues: [q], acksLate: true, hold: true, pool: 'threads', concurrency: 2 }));
  const ids = await sendSlow(q, 2);
  await holder.waitForLines(/Task interop\.slow\[.*\] received/, 2, 15_000, 'both tasks received');
  const entries = await waitUnacked(ids, holder);
  await holder.kill();
  assert.equal((await readUnacked(redis)).length, 2, 'both still unacked after SIGKILL');
  await waitPastVisibility(entries);
  const w = await track(startTsWorker({ broker: url, queues: [q], acksLate: true, visibilityTimeout: VISIBILITY, concurrency: 2 }));
  const res = await results(ids, 20_000, w);
  assert.deepEqual(res.map((r) => r.lang), ['ts', 'ts']);
  await eventually(async () => (await readUnacked(redis)).length === 0, 'unacked empty once all are acked', 5000);
  await w.stop();
});
