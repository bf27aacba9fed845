// Errors stop where they enter: junk a pool child posts on the worker's channel, and junk a broker hands
// the worker instead of a task message, are each logged once and settled; the worker keeps serving.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Celeriac, type Worker } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import amqplib from '../../src/brokers/amqp/amqplib.js';
import type { SqliteBroker } from '../../src/brokers/sqlite/broker.js';
import { insertMessage } from '../../src/brokers/sqlite/messages.js';
import { AMQP_URL, eventually, redisDb, requireRabbit, requireRedis, uniqueName } from '../helpers/services.js';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const MODULE = fileURLToPath(new URL('../fixtures/hardening-app.ts', import.meta.url));
const open: { app: Celeriac; worker: Worker }[] = [];
after(async () => {
  for (const o of open) {
    await o.worker.close({ cold: true }).catch(() => undefined);
    await o.app.close().catch(() => undefined);
  }
});

async function startWorker(broker: string, backend: string, opts: Parameters<Celeriac['worker']>[0] = {}, settings: Record<string, unknown> = {}) {
  const queue = uniqueName('bad-input');
  const lines: string[] = [];
  const logger = createLogger('warning', (l) => void lines.push(l));
  const app = new Celeriac('bad-input', { broker, backend, task_default_queue: queue, logger, ...settings });
  app.task('h.add', (x: number, y: number) => x + y);
  app.task('h.post_junk', () => 42);
  const worker = app.worker({ concurrency: 2, logger, hostname: `${queue}@test`, ...opts });
  open.push({ app, worker });
  await worker.start();
  return { app, worker, queue, lines };
}

for (const pool of ['thread', 'process'] as const) {
  test(`${pool} pool: a task posting junk on the pool's channel gets its result; the junk is logged once per child and the worker serves on`, async () => {
    const url = `memory://${uniqueName('junk')}`;
    const { app, worker, lines } = await startWorker(url, url, { pool, module: MODULE, concurrency: 1 });
    const r = await app.sendTask('h.post_junk');
    assert.equal(await r.get({ timeout: 30_000 }), 42);
    const again = await app.sendTask('h.post_junk');
    assert.equal(await again.get({ timeout: 30_000 }), 42, 'the same child runs the next task');
    assert.equal(await (await app.sendTask('h.add', [2, 3])).get({ timeout: 30_000 }), 5);
    const logged = lines.filter((l) => l.includes('sent a message the worker cannot read'));
    assert.equal(logged.length, 1, `one line for the child, got:\n${lines.join('')}`);
    assert.match(logged[0]!, /task code must not post to the pool's channel/);
    assert.equal(worker.failure, undefined);
  });
}

/** Raw payloads a foreign or hostile producer could push where task messages go. */
const REDIS_JUNK = [
  'not json at all', '[]', 'null', '42', '"a string"', '{}',
  JSON.stringify({ body: 'eA==', properties: { delivery_tag: 5 } }),
  JSON.stringify({ properties: { delivery_tag: 'junk-no-body' } }),
  JSON.stringify({ body: null, headers: null, 'content-type': 'application/json', properties: { delivery_tag: 'junk-null', body_encoding: 'base64' } }),
  JSON.stringify({ body: '!!!', headers: { task: 'h.add', id: 'x' }, 'content-type': 'application/json', properties: { delivery_tag: 'junk-b64', body_encoding: 'base64', delivery_info: { exchange: '', routing_key: 'q' } } }),
  JSON.stringify({ body: Buffer.from('[[1, 2], {}, {}]').toString('base64'), headers: { task: 'h.add' }, 'content-type': 'application/json', 'content-encoding': 'utf-8', properties: { delivery_tag: 'junk-noid', body_encoding: 'base64', delivery_info: { exchange: '', routing_key: 'q' } } }),
  JSON.stringify({ body: Buffer.from('{"a": ').toString('base64'), headers: { task: 'h.add', id: 'bad-json' }, 'content-type': 'application/json', 'content-encoding': 'utf-8', properties: { delivery_tag: 'junk-json', body_encoding: 'base64', delivery_info: { exchange: '', routing_key: 'q' } } }),
  JSON.stringify({ body: 'x', headers: { task: 'h.add', id: 'pickled' }, 'content-type': 'application/x-python-serialize', properties: { delivery_tag: 'junk-pickle', body_encoding: 'base64', delivery_info: { exchange: '', routing_key: 'q' } } }),
];

/** A worker on Redis under a key prefix of its own, a client to reach its keys, and their removal. */
async function onRedis(run: (w: Awaited<ReturnType<typeof startWorker>> & { redis: Redis; prefix: string }) => Promise<void>, opts: Parameters<Celeriac['worker']>[0] = {}): Promise<void> {
  await requireRedis();
  const prefix = `${uniqueName('junk')}:`;
  const url = redisDb(12);
  const w = await startWorker(url, url, opts, { broker_transport_options: { global_keyprefix: prefix } });
  const redis = new Redis(url);
  try {
    await run({ ...w, redis, prefix });
  } finally {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
}

test('[redis] junk in a queue list is settled (dead-lettered or discarded), nothing stays held, and the next task runs', () =>
  onRedis(async ({ app, queue, lines, redis, prefix }) => {
    await redis.lpush(prefix + queue, ...REDIS_JUNK);
    const r = await app.sendTask('h.add', [20, 22]);
    assert.equal(await r.get({ timeout: 15_000 }), 42);
    await eventually(async () => (await redis.hlen(`${prefix}unacked`)) === 0 && (await redis.llen(prefix + queue)) === 0, 'nothing held or waiting', 15_000);
    assert.ok((await redis.llen(`${prefix + queue}.dlq`)) >= 5, 'payloads that are not envelopes went to the dead-letter list');
    assert.ok(lines.length >= REDIS_JUNK.length - 1, `each bad payload logged:\n${lines.join('')}`);
    assert.ok(!lines.some((l) => /Internal error/.test(l)), lines.join(''));
  }));

test('[redis] an undecodable message whose dead-letter list cannot be written stays in unacked, said once; the worker serves on', () =>
  onRedis(async ({ app, queue, lines, redis, prefix }) => {
    await redis.set(`${prefix + queue}.dlq`, 'not a list'); // LPUSH to it fails with WRONGTYPE
    const poison = REDIS_JUNK.find((p) => p.includes('junk-b64'))!;
    await redis.lpush(prefix + queue, poison);
    await eventually(() => lines.some((l) => l.includes('Could not move message junk-b64')), 'the failed dead-lettering said', 15_000);
    assert.equal(await (await app.sendTask('h.add', [40, 2])).get({ timeout: 15_000 }), 42);
    assert.equal(await redis.hexists(`${prefix}unacked`, 'junk-b64'), 1, 'kept in unacked: it comes back after visibility_timeout');
  }));

test('[redis] an internal error while a delivery is accepted (a logger that throws): requeued once, then rejected, never held', () => {
  const lines: string[] = [];
  // A log sink that fails on one kind of line, as a broken transport would.
  const logger = createLogger('info', (l) => {
    if (l.includes('] received')) throw new Error('log sink closed');
    lines.push(l);
  });
  return onRedis(async ({ app, queue, redis, prefix }) => {
    const r = await app.sendTask('h.add', [1, 1]);
    await eventually(() => lines.some((l) => l.includes('The message came back before and is rejected')), 'requeued once, then rejected', 15_000);
    const said = lines.filter((l) => l.includes(`Internal error in the worker accepting a message from queue '${queue}'`));
    assert.equal(said.length, 2, lines.join(''));
    assert.match(said[0]!, /Error: log sink closed[\s\S]*The message is requeued once; please report this\./);
    await eventually(async () => (await redis.hlen(`${prefix}unacked`)) === 0 && (await redis.llen(prefix + queue)) === 0, 'nothing held or waiting', 15_000);
    assert.equal(await app.AsyncResult(r.id).state(), 'PENDING', 'never ran');
  }, { logger });
});

test('[amqp] messages with odd properties, bodies and content types are settled, and the next task runs', async () => {
  await requireRabbit();
  const { app, queue, lines } = await startWorker(AMQP_URL, `memory://${uniqueName('junk')}`);
  const conn = await amqplib.connect(AMQP_URL);
  const ch = await conn.createConfirmChannel();
  try {
    const raw: [Buffer, Record<string, unknown>][] = [
      [Buffer.from('not json'), { contentType: 'application/json', headers: { task: 'h.add', id: 'a1' } }],
      [Buffer.from('[]'), {}],
      [Buffer.from(''), { contentType: 'application/json' }],
      [Buffer.from('x'), { contentType: 'application/x-python-serialize', headers: { task: 'h.add', id: 'a2' } }],
      [Buffer.from('[[1], {}, {}]'), { contentType: 'application/json', contentEncoding: 'utf-8', headers: { task: 'h.add', id: 42, retries: 'many', eta: 'soon', expires: {} } }],
      [Buffer.from('{"x": 1}'), { contentType: 'application/json', headers: { task: ['a'], id: null, argsrepr: { deep: [1, [2, [3]]] } } }],
    ];
    for (const [body, props] of raw) ch.sendToQueue(queue, body, props);
    await ch.waitForConfirms();
    const r = await app.sendTask('h.add', [40, 2]);
    assert.equal(await r.get({ timeout: 15_000 }), 42);
    await eventually(async () => (await ch.checkQueue(queue)).messageCount === 0, 'queue drained', 15_000);
    assert.ok(lines.length >= raw.length, `each bad message logged:\n${lines.join('')}`);
  } finally {
    await ch.close().catch(() => undefined);
    await conn.close().catch(() => undefined);
  }
});

test('[sqlite] undecodable rows are dropped with a line each, and the next task runs', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'celeriac-junk-'));
  try {
    const url = `sqlite:///${path.join(dir, 'db.sqlite')}`;
    const { app, queue, lines } = await startWorker(url, url);
    const db = ((await app.broker()) as SqliteBroker).database;
    await db.write((d) => {
      for (const p of ['not json', '[]', 'null', '{"body": 5}', JSON.stringify({ body: '!!', properties: { body_encoding: 'base64' } })]) insertMessage(d, queue, 0, p, Date.now());
    });
    const r = await app.sendTask('h.add', [1, 41]);
    assert.equal(await r.get({ timeout: 15_000 }), 42);
    await eventually(async () => (await (await app.broker()).queueLength(queue)) === 0, 'queue drained', 15_000);
    assert.ok(lines.length >= 5, `each bad row logged:\n${lines.join('')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
