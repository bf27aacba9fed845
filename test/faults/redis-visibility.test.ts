// broker_transport_options = { visibility_timeout } on a private redis-server:
// - an unacknowledged message of a SIGKILLed worker comes back after the visibility timeout and runs;
// - a countdown longer than the visibility timeout runs exactly once: the TS worker holding it renews its
//   claim (ZADD XX on unacked_index), so neither another TS worker nor a Python worker's restore takes it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Celeriac } from '../../src/index.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { startPythonWorker, startTsWorker, type ManagedProcess } from '../interop/harness.js';

let server: RedisServer;
let redis: Redis;
const procs: ManagedProcess[] = [];

before(async () => {
  server = await startRedisServer();
  redis = new Redis({ port: server.port, host: '127.0.0.1', lazyConnect: true });
  await redis.connect();
});

after(async () => {
  for (const p of procs) await p.stop(3000);
  redis?.disconnect();
  await server?.destroy();
});

async function track(p: Promise<ManagedProcess>): Promise<ManagedProcess> {
  const proc = await p;
  procs.push(proc);
  return proc;
}

async function stopAll(): Promise<void> {
  for (const p of procs.splice(0)) await p.stop(3000);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function runsOf(id: string, ...workers: ManagedProcess[]): number {
  return workers.reduce((n, w) => n + w.count(new RegExp(`^prerun ${id} `)), 0);
}

test('a SIGKILLed worker\'s unacknowledged messages come back after visibility_timeout and run on another worker', async (t) => {
  await redis.flushall();
  const VT = 2;
  const broker = server.url(0);
  const producer = new Celeriac('vt', { broker, backend: server.url(1), result_expires: 600 });
  try {
    const doomed = await track(startTsWorker({ broker, backend: server.url(1), queues: ['celery'], acksLate: true, hold: true, visibilityTimeout: VT }));
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await producer.sendTask('interop.slow', [`k${i}`, 0.05])).id);
    await doomed.waitForLines(/^prerun /, 3, 10_000);
    assert.equal(await redis.hlen('unacked'), 3);
    await doomed.kill();
    const killedAt = Date.now();

    const rescuer = await track(startTsWorker({ broker, backend: server.url(1), queues: ['celery'], acksLate: true, visibilityTimeout: VT }));
    const results = await Promise.all(ids.map((id) => producer.AsyncResult(id).get({ timeout: 20_000 }) as Promise<{ tag: string; redelivered: boolean }>));
    const back = Date.now() - killedAt;
    for (const [i, r] of results.entries()) {
      assert.equal(r.tag, `k${i}`);
      assert.equal(r.redelivered, true, 'a restored message is marked redelivered, as kombu does');
    }
    for (const id of ids) assert.equal(runsOf(id, rescuer), 1);
    // Not before the timeout (minus at most one renewal period), and not much after it (sweep ≤ vt/2).
    assert.ok(back >= (VT * 2000) / 3, `came back ${back} ms after the kill, before visibility_timeout`);
    assert.ok(back < VT * 1000 + 6000, `came back only after ${back} ms`);
    t.diagnostic(`held messages came back ${back} ms after the SIGKILL (visibility_timeout ${VT} s)`);
    // acks_late: the ack follows the result store; give it a moment.
    for (let i = 0; i < 40 && (await redis.hlen('unacked')) > 0; i++) await sleep(50);
    assert.equal(await redis.hlen('unacked'), 0);
  } finally {
    await stopAll();
    await producer.close();
  }
});

test('a countdown longer than visibility_timeout runs exactly once, although TS and Python workers share the queue', async () => {
  await redis.flushall();
  const VT = 2;
  const COUNTDOWN = 9;
  const broker = server.url(0);
  const producer = new Celeriac('vt', { broker, backend: server.url(1), result_expires: 600 });
  try {
    const a = await track(startTsWorker({ broker, backend: server.url(1), queues: ['celery'], visibilityTimeout: VT, hostname: 'a@vt' }));
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await producer.sendTask('ts.add', [i, 100], {}, { countdown: COUNTDOWN })).id);
    const sentAt = Date.now();
    // A second TS worker with the same short timeout, and a Python worker whose restore at startup takes any
    // entry older than its visibility_timeout (1 s) — it does not know ts.add and would drop the message.
    const b = await track(startTsWorker({ broker, backend: server.url(1), queues: ['celery'], visibilityTimeout: VT, hostname: 'b@vt' }));
    const py = await track(startPythonWorker({ broker, backend: server.url(1), queues: ['celery'], visibilityTimeout: 1, name: 'py@vt', concurrency: 2 }));

    // Throughout the wait the messages stay held (in unacked), well past several visibility timeouts.
    while (Date.now() - sentAt < (COUNTDOWN - 1) * 1000) {
      assert.equal(await redis.hlen('unacked'), 3, 'an ETA message left unacked before its time');
      assert.equal(await redis.llen('celery'), 0, 'an ETA message was restored to the queue while held');
      await sleep(500);
    }
    const values = await Promise.all(ids.map((id) => producer.AsyncResult(id).get({ timeout: 15_000 })));
    assert.deepEqual(values, [100, 101, 102]);
    const ranAt = Date.now() - sentAt;
    assert.ok(ranAt >= COUNTDOWN * 1000 - 200, `ran after ${ranAt} ms, before its countdown`);
    await sleep(VT * 1000 + 1500); // room for a duplicate to show up
    for (const id of ids) {
      assert.equal(runsOf(id, a, b), 1, `task ${id} ran ${runsOf(id, a, b)} times:\n${a.tail(20)}\n${b.tail(20)}`);
      assert.doesNotMatch(py.logs, new RegExp(id), 'the Python worker received a message a TS worker was holding');
    }
    assert.equal(await redis.hlen('unacked'), 0);
  } finally {
    await stopAll();
    await producer.close();
  }
});
