// The foundation on a real Redis: kombu's key layout, loss-free fetch, priorities, prefetch,
// bad input, results, warm shutdown.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Celeriac, type Worker } from '../../src/index.js';
import { encodeTaskV2 } from '../../src/protocol/message.js';
import { encodeEnvelope } from '../../src/protocol/envelope.js';
import { requireRedis, redisDb, uniqueName, eventually, sleep } from '../helpers/services.js';

const BROKER = redisDb(1);
const BACKEND = redisDb(1);
let redis: Redis;

before(async () => {
  await requireRedis();
  redis = new Redis(BROKER);
});
after(async () => {
  redis.disconnect();
});

function makeApp(extra: Record<string, unknown> = {}): Celeriac {
  return new Celeriac('core', { broker: BROKER, backend: BACKEND, ...extra });
}

async function withWorker<T>(app: Celeriac, opts: Parameters<Celeriac['worker']>[0], fn: (w: Worker) => Promise<T>): Promise<T> {
  const w = app.worker(opts);
  await w.start();
  try {
    return await fn(w);
  } finally {
    await w.close();
    await app.close();
  }
}

test('a published task is a kombu envelope in the queue list, with the binding declared', async () => {
  const q = uniqueName('layout');
  const app = makeApp({ task_default_queue: q });
  const r = await app.sendTask('tasks.add', [2, 2], {}, { priority: 7 });
  await app.close();
  assert.equal(await redis.llen(q), 0);
  const items = await redis.lrange(`${q}\x06\x166`, 0, -1);
  assert.equal(items.length, 1, 'priority 7 goes to the step-6 sub-list');
  const env = JSON.parse(items[0]!);
  assert.equal(env.headers.id, r.id);
  assert.equal(env.headers.task, 'tasks.add');
  assert.deepEqual(env.properties.delivery_info, { exchange: '', routing_key: q });
  assert.equal(env.properties.priority, 7);
  assert.equal(env.properties.body_encoding, 'base64');
  assert.equal(typeof env.properties.delivery_tag, 'string');
  assert.equal(await redis.sismember(`_kombu.binding.${q}`, `${q}\x06\x16\x06\x16${q}`), 1);
  await redis.del(`${q}\x06\x166`, `_kombu.binding.${q}`);
});

test('delay/get round trip; FAILURE rejects with the remote type; kwargs bind by name', async () => {
  const q = uniqueName('rt');
  const app = makeApp({ task_default_queue: q });
  const add = app.task('tasks.add', (x: number, y: number) => x + y);
  const bad = app.task('tasks.bad', (msg: string) => {
    throw new TypeError(msg);
  });
  await withWorker(app, { concurrency: 4 }, async () => {
    assert.equal(await (await add.delay(2, 3)).get({ timeout: 10_000 }), 5);
    assert.equal(await (await add.applyAsync([], { x: 1, y: 9 })).get({ timeout: 10_000 }), 10);
    const r = await bad.delay('x');
    await assert.rejects(r.get({ timeout: 10_000 }), (e: Error) => e.name === 'TypeError' && e.message === 'x');
    const meta = JSON.parse((await redis.get(`celery-task-meta-${r.id}`))!);
    assert.deepEqual(meta.result, { exc_type: 'TypeError', exc_message: ['x'], exc_module: 'builtins' });
    assert.equal(meta.status, 'FAILURE');
    assert.match(meta.traceback, /^Traceback \(most recent call last\)/);
    const ok = await add.delay(1, 1);
    await ok.get({ timeout: 10_000 });
    const ttl = await redis.ttl(`celery-task-meta-${ok.id}`);
    assert.ok(ttl > 86000 && ttl <= 86400, `result_expires gives a 1-day TTL, got ${ttl}`);
    const stored = await redis.get(`celery-task-meta-${ok.id}`);
    assert.match(stored!, /^\{"status": "SUCCESS", "result": 2, "traceback": null, "children": \[\], "date_done": "[^"]+\+00:00", "task_id": "/);
  });
});

test('an acks_late message sits in unacked/unacked_index while it runs, and is gone after', async () => {
  const q = uniqueName('unacked');
  const app = makeApp({ task_default_queue: q, task_acks_late: true });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const hold = app.task('tasks.hold', async () => {
    await gate;
    return 'done';
  });
  await withWorker(app, { concurrency: 1 }, async () => {
    const r = await hold.delay();
    const entry = await eventually(async () => {
      for (const [tag, v] of Object.entries(await redis.hgetall('unacked'))) {
        const parsed = JSON.parse(v);
        if (parsed[0].headers.id === r.id) return { tag, parsed };
      }
      return null;
    }, 'the message to be registered in unacked');
    assert.ok(entry);
    assert.equal(entry.parsed[1], '');
    assert.equal(entry.parsed[2], q);
    assert.ok((await redis.zscore('unacked_index', entry.tag)) !== null);
    release();
    assert.equal(await r.get({ timeout: 10_000 }), 'done');
    await eventually(async () => (await redis.hexists('unacked', entry.tag)) === 0, 'the ack to remove the unacked entry');
    assert.equal(await redis.zscore('unacked_index', entry.tag), null);
  });
});

test('priority 0 is consumed first on Redis (kombu semantics), across the priority sub-lists', async () => {
  const q = uniqueName('prio');
  const app = makeApp({ task_default_queue: q });
  const order: number[] = [];
  app.task('tasks.rec', (p: number) => {
    order.push(p);
  });
  for (const p of [9, 6, 3, 0, 9, 0]) await app.sendTask('tasks.rec', [p], {}, { priority: p });
  await withWorker(app, { concurrency: 1, prefetchMultiplier: 1 }, async () => {
    await eventually(() => order.length === 6, 'all six tasks to run');
  });
  assert.deepEqual(order, [0, 0, 3, 6, 9, 9]);
});

test('prefetch bounds how many messages a worker holds (concurrency × multiplier)', async () => {
  const q = uniqueName('prefetch');
  const app = makeApp({ task_default_queue: q, task_acks_late: true });
  app.task('tasks.slow', () => sleep(40));
  const N = 40;
  for (let i = 0; i < N; i++) await app.sendTask('tasks.slow', [], {}, { ignoreResult: true });
  let maxHeld = 0;
  let done = 0;
  await withWorker(app, { concurrency: 2, prefetchMultiplier: 2 }, async (w) => {
    w.on('taskPostrun', () => done++);
    while (done < N) {
      const mine = (await redis.hvals('unacked')).filter((v) => v.includes(`"routing_key": "${q}"`)).length;
      maxHeld = Math.max(maxHeld, mine);
      await sleep(15);
    }
  });
  assert.ok(maxHeld >= 2, `the worker held messages (saw ${maxHeld})`);
  assert.ok(maxHeld <= 4, `held at most 4 unacked messages, saw ${maxHeld}`);
});

test('bad input never stops the worker: junk bytes, bad bodies, unknown tasks', async () => {
  const q = uniqueName('poison');
  const logs: string[] = [];
  const { createLogger } = await import('../../src/app/log.js');
  const logger = createLogger('info', (l) => logs.push(l));
  const app = makeApp({ task_default_queue: q, logger });
  const add = app.task('tasks.add', (x: number, y: number) => x + y);
  await redis.lpush(q, 'this is not json at all');
  const badBody = encodeTaskV2('tasks.add', [1, 2], {});
  badBody.body = Buffer.from('{broken');
  await redis.lpush(q, encodeEnvelope(badBody, { exchange: '', routing_key: q }));
  const unknown = encodeTaskV2('tasks.nope', [], {}, { id: uniqueName('nope') });
  await redis.lpush(q, encodeEnvelope(unknown, { exchange: '', routing_key: q }));
  const good = await Promise.all([add.delay(1, 1), add.delay(2, 2)]);
  await withWorker(app, { concurrency: 2, logger }, async () => {
    assert.deepEqual(await Promise.all(good.map((r) => r.get({ timeout: 10_000 }))), [2, 4]);
    const nope = await app.AsyncResult(String(unknown.headers.id)).get({ timeout: 10_000 }).catch((e: Error) => e);
    assert.equal((nope as Error).name, 'NotRegistered');
  });
  assert.deepEqual(await redis.lrange(`${q}.dlq`, 0, -1), ['this is not json at all']);
  assert.ok(logs.some((l) => l.includes('not a kombu envelope')), 'junk bytes are logged');
  assert.ok(logs.some((l) => /CRITICAL.*decode message body/.test(l)), 'an undecodable body is logged');
  assert.ok(logs.some((l) => l.includes("Received unregistered task of type 'tasks.nope'")), 'unknown task is logged');
  assert.equal(await redis.llen(q), 0);
  await redis.del(`${q}.dlq`);
});

test('warm shutdown finishes running tasks and puts unstarted ones back; nothing finished runs again', async () => {
  const q = uniqueName('warm');
  const app = makeApp({ task_default_queue: q, task_acks_late: true });
  const ran: number[] = [];
  app.task('tasks.step', async (i: number) => {
    await sleep(150);
    ran.push(i);
  });
  for (let i = 0; i < 12; i++) await app.sendTask('tasks.step', [i], {}, { ignoreResult: true });
  const w = app.worker({ concurrency: 2, prefetchMultiplier: 3 });
  await w.start();
  await eventually(() => ran.length >= 2, 'a couple of tasks to finish');
  await w.close();
  const finished = [...ran];
  const left = await redis.llen(q);
  assert.equal(finished.length + left, 12, `every task either finished (${finished.length}) or is back in the queue (${left})`);
  await app.close();
  // A second worker runs exactly the rest.
  const app2 = makeApp({ task_default_queue: q, task_acks_late: true });
  const ran2: number[] = [];
  app2.task('tasks.step', (i: number) => {
    ran2.push(i);
  });
  await withWorker(app2, { concurrency: 4 }, async () => {
    await eventually(() => ran2.length === left, 'the restored tasks to run');
  });
  assert.deepEqual([...finished, ...ran2].sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i));
});

test('a stored SUCCESS is never overwritten, and get() wakes on PUBLISH rather than polling', async () => {
  const app = makeApp();
  const backend = (await app.backend())!;
  const id = uniqueName('once');
  const base = { result: 1, traceback: null, children: [], date_done: null, task_id: id };
  const waiting = app.AsyncResult(id).get({ timeout: 5000 });
  await sleep(50);
  const t0 = Date.now();
  await backend.store({ ...base, status: 'SUCCESS' });
  assert.equal(await waiting, 1);
  assert.ok(Date.now() - t0 < 500, 'get() resolved promptly after the store');
  // A later state is refused: nothing is published for it, and the SUCCESS keeps an expiry.
  const sub = new Redis(BACKEND);
  const published: string[] = [];
  sub.on('message', (_channel: string, message: string) => published.push(message));
  await sub.subscribe(`celery-task-meta-${id}`);
  await backend.store({ ...base, status: 'FAILURE', result: { exc_type: 'X', exc_message: [], exc_module: 'builtins' } });
  assert.equal((await backend.get(id)).status, 'SUCCESS');
  await backend.store({ ...base, task_id: `${id}-other`, status: 'SUCCESS' }); // published on its own channel only
  await sleep(50);
  sub.disconnect();
  assert.deepEqual(published, [], 'no PUBLISH for a refused store');
  const ttl = await redis.ttl(`celery-task-meta-${id}`);
  assert.ok(ttl > 0 && ttl <= 86400, `the SUCCESS still expires (ttl ${ttl})`);
  await assert.rejects(app.AsyncResult(uniqueName('never')).get({ timeout: 200 }), (e: Error) => e.name === 'TimeoutError');
  await app.close();
});

test('every finished task emits taskSuccess and taskPostrun once, for plain and async handlers, with and without results', async () => {
  const q = uniqueName('events');
  const app = makeApp({ task_default_queue: q });
  const plain = app.task('events.plain', (i: number) => i);
  // Finishes after its early ack was confirmed, as most I/O-bound tasks do.
  const slow = app.task('events.slow', async (i: number) => {
    await sleep(5 + (i % 7));
    return i;
  });
  const N = 300;
  const calls = (ignoreResult: boolean) => Array.from({ length: N }, (_, i) => ({ args: [i], options: { ignoreResult } }));
  await plain.applyBulk(calls(true));
  await slow.applyBulk(calls(true));
  await plain.applyBulk(calls(false));
  await slow.applyBulk(calls(false));
  const success = new Map<string, number>();
  const postrun = new Map<string, number>();
  await withWorker(app, { concurrency: 20 }, async (w) => {
    w.on('taskSuccess', (e) => success.set(e.id, (success.get(e.id) ?? 0) + 1));
    w.on('taskPostrun', (e) => postrun.set(e.id, (postrun.get(e.id) ?? 0) + 1));
    await eventually(() => postrun.size >= 4 * N, `taskPostrun for all ${4 * N} tasks`, 30_000);
    await sleep(200);
  });
  assert.equal(postrun.size, 4 * N);
  assert.equal(success.size, 4 * N);
  assert.ok([...postrun.values(), ...success.values()].every((n) => n === 1), 'each event once per task');
});
