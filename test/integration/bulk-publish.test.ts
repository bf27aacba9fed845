// task.applyBulk / Broker.publishMany on every transport, against the real services: every task runs
// exactly once with its own arguments, a bulk message is byte for byte what applyAsync sends (ids
// aside), calls with different queues and priorities land where single publishes would put them,
// and on Redis the bulk publish is a handful of LPUSH commands, not one per task.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import BetterSqlite3 from 'better-sqlite3';
import { Celeriac, type AsyncResult, type TaskContext } from '../../src/index.js';
import amqplib from '../../src/brokers/amqp/amqplib.js';
import type { Delivery } from '../../src/brokers/types.js';
import { SEND_EVERY, type RedisBroker } from '../../src/brokers/redis/broker.js';
import { AMQP_URL, eventually, requireRabbit, sleep, uniqueName } from '../helpers/services.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const N = 2_500; // more than two LPUSH chunks
// A redis-server of this file's own: its LPUSH count (INFO commandstats) is this file's alone.
let server: RedisServer;
let REDIS_URL = '';

/** A message as the broker holds it, with its ids replaced, so two calls with the same arguments compare equal. */
type Canonical = unknown;

interface Transport {
  name: 'redis' | 'amqp' | 'sqlite' | 'memory';
  url: string;
  /** Every message waiting in `queue`, taken off the broker: task id → canonical raw form. */
  takeRaw(app: Celeriac, queue: string): Promise<Map<string, Canonical>>;
  cleanup(queues: string[]): Promise<void>;
}

/** A kombu envelope string with its task id and delivery tag replaced: the exact bytes otherwise. */
function canonicalEnvelope(text: string): [string, string] {
  const env = JSON.parse(text) as { headers: { id: string }; properties: { delivery_tag: string } };
  const { id } = env.headers;
  return [id, text.split(id).join('<id>').split(env.properties.delivery_tag).join('<tag>')];
}

function canonicalMessage(id: string, m: { headers: Record<string, unknown>; properties: Record<string, unknown>; body: Buffer; contentType?: string; contentEncoding?: string }): Canonical {
  const swap = (v: unknown) => (v === id ? '<id>' : v);
  return {
    headers: Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k, swap(v)])),
    properties: Object.fromEntries(Object.entries(m.properties).map(([k, v]) => [k, swap(v)])),
    body: m.body.toString('base64'),
    contentType: m.contentType,
    contentEncoding: m.contentEncoding,
  };
}

let redis: Redis;
const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-bulk-'));

const TRANSPORTS: Transport[] = [
  {
    name: 'redis',
    get url() { return REDIS_URL; }, // the private server's, started in before()
    async takeRaw(_app, queue) {
      const out = new Map<string, Canonical>();
      for (const key of [queue, ...[3, 6, 9].map((s) => `${queue}\x06\x16${s}`)]) {
        for (const text of (await redis.lrange(key, 0, -1)).reverse()) {
          const [id, canon] = canonicalEnvelope(text);
          out.set(id, canon);
        }
        await redis.del(key);
      }
      return out;
    },
    async cleanup() {
      await redis.flushdb();
    },
  },
  {
    name: 'amqp',
    url: AMQP_URL,
    async takeRaw(_app, queue) {
      const out = new Map<string, Canonical>();
      const c = await amqplib.connect(AMQP_URL);
      try {
        const ch = await c.createChannel();
        for (;;) {
          const m = await ch.get(queue, { noAck: true });
          if (!m) break;
          const id = String(m.properties.headers?.id);
          out.set(id, {
            fields: { exchange: m.fields.exchange, routingKey: m.fields.routingKey },
            ...(canonicalMessage(id, { headers: m.properties.headers ?? {}, properties: { ...m.properties, headers: undefined }, body: m.content }) as object),
          });
        }
      } finally {
        await c.close();
      }
      return out;
    },
    async cleanup(queues) {
      const c = await amqplib.connect(AMQP_URL);
      try {
        const ch = await c.createChannel();
        for (const q of queues) {
          await ch.deleteQueue(q);
          await ch.deleteExchange(q);
        }
      } finally {
        await c.close();
      }
    },
  },
  {
    name: 'sqlite',
    url: `sqlite:///${path.join(tmpDir, 'bulk.db')}`,
    async takeRaw(_app, queue) {
      const db = new BetterSqlite3(path.join(tmpDir, 'bulk.db'));
      try {
        const rows = db.prepare('SELECT payload FROM celeriac_messages WHERE queue = ? ORDER BY id').all(queue) as { payload: string }[];
        db.prepare('DELETE FROM celeriac_messages WHERE queue = ?').run(queue);
        return new Map(rows.map((r) => canonicalEnvelope(r.payload)));
      } finally {
        db.close();
      }
    },
    async cleanup() {},
  },
  {
    name: 'memory',
    url: `memory://${uniqueName('bulk')}`,
    // The envelope never leaves the process: take the deliveries as a consumer sees them.
    async takeRaw(app, queue) {
      const broker = await app.broker();
      const waiting = await broker.queueLength(queue);
      const got: Delivery[] = [];
      const consumer = await broker.consume([queue], (d) => got.push(d), { prefetch: 0 });
      await eventually(() => got.length === waiting, `${waiting} deliveries from ${queue}`);
      await consumer.stop();
      const out = new Map<string, Canonical>();
      for (const d of got) {
        const id = String(d.message.headers.id);
        out.set(id, canonicalMessage(id, d.message));
        await d.ack();
      }
      return out;
    },
    async cleanup() {},
  },
];

before(async () => {
  await requireRabbit();
  server = await startRedisServer();
  REDIS_URL = server.url(0);
  redis = new Redis(REDIS_URL);
});

after(async () => {
  redis?.disconnect();
  await server?.destroy();
  fs.rmSync(tmpDir, { recursive: true, force: true });
});

function makeApp(t: Transport, queue: string): Celeriac {
  return new Celeriac('bulk', { broker: t.url, task_default_queue: queue, task_ignore_result: true });
}

/** Redis's own count of LPUSH commands executed (all clients, including those inside scripts). */
async function serverLpushCalls(): Promise<number> {
  const info = await redis.info('commandstats');
  return Number(/cmdstat_lpush:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

for (const t of TRANSPORTS) {
  test(`${t.name}: ${N} tasks sent with applyBulk each run exactly once with their own arguments`, async () => {
    const queue = uniqueName(`bulk-${t.name}`);
    const app = makeApp(t, queue);
    const ran: { id: string; i: number; tag: string }[] = [];
    const record = app.task('bulk.record', (task: TaskContext, i: number, tag: string) => {
      ran.push({ id: task.request.id, i, tag });
    }, { bind: true });
    try {
      const calls = Array.from({ length: N }, (_, i) => ({ args: [i, `tag-${i}`] }));
      let lpushes = 0;
      let serverBefore = 0;
      if (t.name === 'redis') {
        // Count the LPUSH commands this client sends (pipelined or not, every command goes through sendCommand).
        const client = await ((await app.broker()) as RedisBroker).commandClient();
        const send = client.sendCommand.bind(client);
        client.sendCommand = ((cmd: { name: string }, ...rest: unknown[]) => {
          if (cmd.name.toLowerCase() === 'lpush') lpushes++;
          return (send as (...a: unknown[]) => unknown)(cmd, ...rest);
        }) as typeof client.sendCommand;
        serverBefore = await serverLpushCalls();
      }
      const results: AsyncResult[] = await record.applyBulk(calls);
      assert.equal(results.length, N);
      assert.equal(new Set(results.map((r) => r.id)).size, N, 'every call has its own task id');
      assert.equal(await (await app.broker()).queueLength(queue), N, 'the broker holds every message once applyBulk resolves');
      if (t.name === 'redis') {
        const serverDelta = (await serverLpushCalls()) - serverBefore;
        const expected = Math.ceil(N / SEND_EVERY);
        assert.equal(lpushes, expected, `one LPUSH per ${SEND_EVERY} encoded messages, not one per task`);
        assert.ok(serverDelta >= lpushes, `Redis counted ${serverDelta} LPUSH calls, fewer than the ${lpushes} we sent`);
        assert.ok(serverDelta < N / 10, `Redis counted ${serverDelta} LPUSH calls for ${N} tasks on this file's own server`);
        // RPOP order is input order, as with single publishes.
        const oldest = JSON.parse((await redis.lindex(queue, -1))!) as { headers: { id: string } };
        const newest = JSON.parse((await redis.lindex(queue, 0))!) as { headers: { id: string } };
        assert.equal(oldest.headers.id, results[0]!.id);
        assert.equal(newest.headers.id, results[N - 1]!.id);
      }

      const worker = app.worker({ queues: [queue], concurrency: 100, loglevel: 'warning' });
      await worker.start();
      try {
        await eventually(() => ran.length >= N, `${N} tasks to run (ran ${ran.length})`, 60_000);
        await sleep(300); // time for a duplicate to show up
      } finally {
        await worker.close();
      }
      assert.equal(ran.length, N, 'no task ran twice');
      const byArg = new Map(ran.map((r) => [r.i, r]));
      assert.equal(byArg.size, N, 'every argument ran once');
      for (let i = 0; i < N; i++) {
        const r = byArg.get(i);
        assert.ok(r, `task ${i} ran`);
        assert.equal(r.tag, `tag-${i}`);
        assert.equal(r.id, results[i]!.id, `result ${i} is the handle of the task that got argument ${i}`);
      }
      assert.equal(await (await app.broker()).queueLength(queue), 0);
    } finally {
      await app.close();
      await t.cleanup([queue]);
    }
  });

  test(`${t.name}: a bulk message is exactly what applyAsync sends, ids aside`, async () => {
    const queue = uniqueName(`bulk-raw-${t.name}`);
    const app = makeApp(t, queue);
    const task = app.task('bulk.compare', (..._a: unknown[]) => null);
    const args = [7, 'seven', { nested: [1.5, null] }];
    const kwargs = { k: 'v', n: 3 };
    const options = { eta: '2001-02-03T04:05:06.789000+00:00', headers: { 'x-trace': 'abc' }, timeLimit: 30, softTimeLimit: 20, shadow: 'alias.compare', retries: 2 };
    try {
      const single = await task.applyAsync(args, kwargs, options);
      const bulk = await task.applyBulk([{ args, kwargs, options }, { args: [1], options: { countdown: 60 } }]);
      const raw = await t.takeRaw(app, queue);
      assert.equal(raw.size, 3);
      const a = raw.get(single.id);
      const b = raw.get(bulk[0]!.id);
      assert.ok(a !== undefined && b !== undefined, 'both messages are in the queue');
      assert.deepEqual(b, a);
      if (typeof a === 'string') assert.match(a, /"x-trace": "abc"/, 'the envelope carries the call options');
    } finally {
      await app.close();
      await t.cleanup([queue]);
    }
  });

  test(`${t.name}: applyBulk calls with different queues, exchanges and priorities land where single publishes would`, async () => {
    const qa = uniqueName(`bulk-a-${t.name}`);
    const qb = uniqueName(`bulk-b-${t.name}`);
    const app = makeApp(t, qa);
    const seen = new Map<string, number[]>([[qa, []], [qb, []]]);
    let current = qa;
    const where = app.task('bulk.where', (i: number) => {
      seen.get(current)!.push(i);
    });
    const plan = [
      { args: [0] },                                          // default queue
      { args: [1], options: { queue: qb } },
      { args: [2], options: { queue: qb, priority: 7 } },
      { args: [3], options: { priority: 4 } },
      { args: [4], options: { queue: qa, exchange: qa, routingKey: qa } }, // through qa's exchange binding
      { args: [5], options: { queue: qb } },
      { args: [6] },
    ];
    const wantA = [0, 3, 4, 6];
    const wantB = [1, 2, 5];
    try {
      // Declare both queues first (as a worker or an earlier publish would), so the exchange route resolves.
      await where.applyAsync([-1]);
      await where.applyAsync([-2], {}, { queue: qb });
      const broker = await app.broker();
      await broker.purge(qa);
      await broker.purge(qb);
      const results = await where.applyBulk(plan);
      assert.equal(results.length, plan.length);
      assert.equal(await broker.queueLength(qa), wantA.length);
      assert.equal(await broker.queueLength(qb), wantB.length);
      if (t.name === 'redis') {
        // Priority sub-lists as kombu lays them out: 4 → step 3 of qa, 7 → step 6 of qb; oldest on the right.
        const ids = (key: string) => redis.lrange(key, 0, -1).then((l) => l.reverse().map((s) => (JSON.parse(s) as { headers: { id: string } }).headers.id));
        assert.deepEqual(await ids(qa), [results[0]!.id, results[4]!.id, results[6]!.id]);
        assert.deepEqual(await ids(`${qa}\x06\x163`), [results[3]!.id]);
        assert.deepEqual(await ids(qb), [results[1]!.id, results[5]!.id]);
        assert.deepEqual(await ids(`${qb}\x06\x166`), [results[2]!.id]);
      }
      for (const [q, want] of [[qa, wantA], [qb, wantB]] as const) {
        current = q;
        const worker = app.worker({ queues: [q], concurrency: 1, loglevel: 'warning' });
        await worker.start();
        try {
          await eventually(() => seen.get(q)!.length >= want.length, `${want.length} tasks from ${q}`);
          await sleep(100);
        } finally {
          await worker.close();
        }
        assert.deepEqual([...seen.get(q)!].sort(), [...want].sort(), `the tasks of ${q}`);
      }
    } finally {
      await app.close();
      await t.cleanup([qa, qb]);
    }
  });
}

test('redis: applyAsync calls made together leave in one socket write; a lone call is written before the event loop turns', async () => {
  const queue = uniqueName('together');
  const app = makeApp(TRANSPORTS[0]!, queue);
  const task = app.task('together.t', () => null);
  try {
    await task.applyAsync([0]); // connects and declares the queue
    const client = await ((await app.broker()) as RedisBroker).commandClient();
    const socket = (client as unknown as { stream: Writable }).stream;
    // Commands per socket write: corked writes leave through _writev, lone ones through _write.
    const writes: number[] = [];
    const write = socket._write.bind(socket);
    const writev = socket._writev!.bind(socket);
    socket._write = (chunk, encoding, cb) => { writes.push(1); write(chunk, encoding, cb); };
    socket._writev = (chunks, cb) => { writes.push(chunks.length); writev(chunks, cb); };
    await Promise.all(Array.from({ length: 50 }, (_, i) => task.applyAsync([i + 1])));
    assert.deepEqual(writes, [50], 'fifty publishes made together, one write');
    writes.length = 0;
    const sent = task.applyAsync([51]);
    const beforeTurn = await new Promise<number>((resolve) => setImmediate(() => resolve(writes.length)));
    await sent;
    assert.equal(beforeTurn, 1, 'a lone publish is on the socket before setImmediate callbacks run');
    const ids = (await redis.lrange(queue, 0, -1)).reverse().map((text) => (JSON.parse(text) as { headers: { argsrepr: string } }).headers.argsrepr);
    assert.deepEqual(ids, Array.from({ length: 52 }, (_, i) => `(${i},)`), 'every message once, in call order');
  } finally {
    await app.close();
    await redis.del(queue);
  }
});

test('applyBulk with no calls sends nothing; bad calls are rejected before anything is sent', async () => {
  const queue = uniqueName('bulk-args');
  const app = new Celeriac('bulk', { broker: `memory://${queue}`, task_default_queue: queue, task_ignore_result: true });
  const task = app.task('bulk.noop', () => null);
  try {
    assert.deepEqual(await task.applyBulk([]), []);
    await assert.rejects(task.applyBulk([{ args: [1] }, { args: 'x' as never }]), /sendTasks: call 1 \("bulk.noop"\): args must be an array/);
    await assert.rejects(task.applyBulk([{ kwargs: [] as never }]), /call 0 .*kwargs must be an object/);
    await assert.rejects(task.applyBulk([null as never]), /sendTasks: call 0 must be/);
    await assert.rejects(task.applyBulk('x' as never), /applyBulk: calls must be an array/);
    assert.equal(await (await app.broker()).queueLength(queue), 0);
    const [r] = await app.sendTasks([{ name: 'py.mul', args: [6, 7] }]);
    assert.equal(typeof r!.id, 'string');
    assert.equal(await (await app.broker()).queueLength(queue), 1, 'sendTasks sends by name');
  } finally {
    await app.close();
  }
});

test('a broker without publishMany gets one publish after another, with the retry policy', async () => {
  const queue = uniqueName('bulk-fallback');
  const app = new Celeriac('bulk', { broker: `memory://${queue}`, task_default_queue: queue, task_ignore_result: true });
  const task = app.task('bulk.noop', () => null);
  try {
    const broker = await app.broker();
    const published: string[] = [];
    let failOnce = true;
    const publish = broker.publish.bind(broker);
    Object.assign(broker, {
      publishMany: undefined,
      publish: async (...a: Parameters<typeof broker.publish>) => {
        if (failOnce) {
          failOnce = false;
          throw new Error('connection reset');
        }
        published.push(String(a[0].headers.id));
        return publish(...a);
      },
    });
    app.conf.task_publish_retry_policy = { max_retries: 3, interval_start: 0, interval_step: 0.01, interval_max: 0.01 };
    const results = await task.applyBulk([{ args: [1] }, { args: [2] }, { args: [3] }]);
    assert.deepEqual(published, results.map((r) => r.id), 'in order, the failed first publish retried');
    assert.equal(await broker.queueLength(queue), 3);
  } finally {
    await app.close();
  }
});

test('redis: a failed bulk publish is retried under task_publish_retry_policy', async () => {
  const queue = uniqueName('bulk-retry');
  const app = new Celeriac('bulk', { broker: REDIS_URL, task_default_queue: queue, task_ignore_result: true });
  app.conf.task_publish_retry_policy = { max_retries: 3, interval_start: 0, interval_step: 0.01, interval_max: 0.01 };
  const task = app.task('bulk.noop', () => null);
  try {
    const broker = (await app.broker()) as RedisBroker;
    const publishMany = broker.publishMany.bind(broker);
    let attempts = 0;
    broker.publishMany = async (items) => {
      if (++attempts === 1) throw new Error('connection reset');
      return publishMany(items);
    };
    const results = await task.applyBulk(Array.from({ length: 10 }, (_, i) => ({ args: [i] })));
    assert.equal(attempts, 2);
    assert.equal(results.length, 10);
    assert.equal(await broker.queueLength(queue), 10);
    app.conf.task_publish_retry = false;
    attempts = 0;
    await assert.rejects(task.applyBulk([{ args: [0] }]), /connection reset/, 'no retry when task_publish_retry is off');
  } finally {
    await app.close();
    await redis.flushdb();
  }
});
