// The Redis fetch script is idempotent per fetch id: when a connection drops after Redis ran a fetch but
// before its reply arrived, ioredis resends the same command, and the consumer gets the batch Redis already
// moved to unacked instead of a second batch (the first would otherwise wait out the visibility timeout).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createBroker } from '../../src/brokers/redis/index.js';
import { redisVersionProblem, type RedisBroker } from '../../src/brokers/redis/broker.js';
import { KeyLayout } from '../../src/brokers/redis/keys.js';
import { scriptsFor } from '../../src/brokers/redis/scripts.js';
import { encodeEnvelope } from '../../src/protocol/envelope.js';
import type { Delivery } from '../../src/brokers/types.js';
import { eventually, redisDb, requireRedis, sleep } from '../helpers/services.js';
import { captureLogger, ctx, testMessage } from './sqlite-fixtures.js';

const DB = 8;
before(requireRedis);

async function fresh(): Promise<Redis> {
  const r = new Redis(redisDb(DB));
  await r.flushdb();
  return r;
}

/** fetch.lua's reply: a status, then per queue key the key, a count n and n (payload, tag) pairs. */
type FetchReply = (string | number)[];

/** (queue key, payload or unacked entry, tag) for each message of a fetch reply. */
function pairs(reply: FetchReply): [string, string, string][] {
  const out: [string, string, string][] = [];
  for (let i = 1; i < reply.length;) {
    const key = String(reply[i]);
    const n = Number(reply[i + 1]);
    for (let j = 0; j < n; j++) out.push([key, String(reply[i + 2 + 2 * j]), String(reply[i + 3 + 2 * j])]);
    i += 2 + 2 * n;
  }
  return out;
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)));
  try {
    return await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}

function push(r: Redis, ids: string[]): Promise<number> {
  return r.lpush('celery', ...ids.map((id) => encodeEnvelope(testMessage(id), { exchange: '', routing_key: 'celery' }, `tag-${id}`)));
}

test('a fetch resent with the same id returns the same batch and pops nothing new, also behind a later fetch', async () => {
  const r = await fresh();
  const keys = new KeyLayout({});
  const scripts = scriptsFor(r);
  await push(r, ['a', 'b', 'c', 'd', 'e']);
  const run = (id: string, max = 3) =>
    scripts.run('fetch', [keys.unacked, keys.unackedIndex, keys.inflightKey('c1', 'celery'), keys.fetchLogKey('c1', Number(id)), 'celery'], [max, Date.now() / 1000, '.dlq', 'celery', id]) as Promise<FetchReply>;
  const first = await run('7');
  assert.equal(first[0], 'fresh');
  const tags = (reply: FetchReply) => pairs(reply).map(([, , tag]) => tag);
  assert.deepEqual(tags(first), ['tag-a', 'tag-b', 'tag-c']);
  const again = await run('7');
  assert.equal(again[0], 'resent');
  assert.deepEqual(tags(again), ['tag-a', 'tag-b', 'tag-c']);
  // The resent reply carries kombu's unacked entries: [payload, exchange, routing_key].
  assert.deepEqual(again.slice(1, 3), ['celery', 3], 'grouped by queue key: the key, then the count');
  const entry = JSON.parse(pairs(again)[0]![1]) as unknown[];
  assert.deepEqual(entry.slice(1), ['', 'celery']);
  assert.equal(await r.llen('celery'), 2, 'the resend popped nothing');
  await r.hdel(keys.unacked, 'tag-b'); // acked meanwhile: not handed out again
  assert.deepEqual(tags(await run('7')), ['tag-a', 'tag-c']);
  const next = await run('8');
  assert.equal(next[0], 'fresh');
  assert.deepEqual(tags(next), ['tag-d', 'tag-e']);
  // A consumer keeps two fetches in flight: fetch 8 resent after fetch 9 ran still gets its own batch.
  await push(r, ['f', 'g']);
  assert.deepEqual(tags(await run('9')), ['tag-f', 'tag-g']);
  const resent8 = await run('8');
  assert.equal(resent8[0], 'resent');
  assert.deepEqual(tags(resent8), ['tag-d', 'tag-e']);
  assert.equal(await r.llen('celery'), 0);
  r.disconnect();
});

test('an ack removes held messages in one go and names those no longer held', async () => {
  const r = await fresh();
  const keys = new KeyLayout({});
  const scripts = scriptsFor(r);
  await push(r, ['a', 'b', 'c', 'd', 'e', 'f']);
  const reply = (await scripts.run('fetch', [keys.unacked, keys.unackedIndex, keys.inflightKey('c1', 'celery'), keys.fetchLogKey('c1', 1), 'celery'], [6, Date.now() / 1000, '.dlq', 'celery', '1'])) as FetchReply;
  assert.equal(pairs(reply).length, 6);
  assert.equal(await r.hlen(keys.unacked), 6, 'one HSET registered the batch');
  assert.equal(await r.zcard(keys.unackedIndex), 6, 'one ZADD indexed the batch');
  const ack = (tags: string[]) => scripts.run('ack', [keys.unacked, keys.unackedIndex], tags) as Promise<string[]>;
  assert.deepEqual(await ack(['tag-a', 'tag-b']), [], 'all held: nothing reported');
  // tag-c was restored meanwhile (gone from hash and index): it is named.
  await r.hdel(keys.unacked, 'tag-c');
  await r.zrem(keys.unackedIndex, 'tag-c');
  assert.deepEqual(await ack(['tag-c', 'tag-d']), ['tag-c']);
  // An index entry without its hash entry (never written so by kombu or Celeriac): counted, not named.
  await r.hdel(keys.unacked, 'tag-e');
  assert.deepEqual(await ack(['tag-e', 'tag-f']), ['', '1']);
  assert.equal(await r.hlen(keys.unacked), 0);
  assert.equal(await r.zcard(keys.unackedIndex), 0);
  r.disconnect();
});

test('the consumer delivers the batch of a fetch whose reply it never got', async () => {
  const r = await fresh();
  const keys = new KeyLayout({});
  const log = captureLogger();
  const broker = createBroker(redisDb(DB), ctx({}, {}, log));
  const got: Delivery[] = [];
  const consumer = (await broker.consume(['celery'], (d) => got.push(d), { prefetch: 10 })) as unknown as {
    id: string; fetchSeq: number; inBlockingWait: boolean; close(): Promise<void>;
  };
  // Wait until the consumer sits in its blocking wait on the empty queue, then play its next fetch
  // (id 999) here, as if Redis had run it and the reply had been lost with the connection.
  await eventually(() => consumer.inBlockingWait, 'the consumer to wait on the empty queue');
  consumer.fetchSeq = 998;
  await r.lpush('other', ...['y1', 'y2'].map((id) => encodeEnvelope(testMessage(id), { exchange: '', routing_key: 'other' }, `tag-${id}`)));
  const scripts = scriptsFor(r);
  const lost = (await scripts.run('fetch', [keys.unacked, keys.unackedIndex, keys.inflightKey('nobody', 'other'), keys.fetchLogKey(consumer.id, 999), 'other'], [2, Date.now() / 1000, '.dlq', 'other', '999'])) as string[];
  assert.equal(lost[0], 'fresh');
  assert.equal(await r.hlen(keys.unacked), 2);
  // A new message wakes the consumer; its fetch 999 gets the logged batch, the next one the new message.
  await push(r, ['z1']);
  await eventually(() => got.length === 3, 'the two messages of the lost reply and the new one', 10_000);
  assert.deepEqual(got.map((d) => String(d.message.headers.id)).sort(), ['y1', 'y2', 'z1']);
  assert.deepEqual(got.filter((d) => d.queue === 'other').length, 2);
  assert.ok(log.lines.some((l) => l.includes('answered after its connection dropped')), 'the resend is logged');
  for (const d of got) await d.ack();
  await consumer.close();
  await broker.close();
  assert.equal(await r.hlen(keys.unacked), 0, 'all acked');
  r.disconnect();
});

for (const prefetch of [10, 1]) test(`a message the blocking wait takes is handed out at once; its ack waits until the fetch has registered it (prefetch ${prefetch})`, async () => {
  const r = await fresh();
  const keys = new KeyLayout({});
  const broker = createBroker(redisDb(DB), ctx({}, {}, captureLogger()));
  const got: { id: string; early: boolean }[] = [];
  const acks: Promise<void>[] = [];
  const consumer = (await broker.consume(['celery'], (d) => {
    got.push({ id: String(d.message.headers.id), early: (d as unknown as { registered: unknown }).registered != null });
    acks.push(d.ack()); // at once: before the fetch that registers the message has answered
  }, { prefetch })) as unknown as { id: string; inBlockingWait: boolean; close(): Promise<void> };
  try {
    for (const id of ['w1', 'w2', 'w3']) {
      await eventually(() => consumer.inBlockingWait, 'the consumer to wait on the empty queue');
      await push(r, [id]);
      await eventually(() => got.length === Number(id.slice(1)), `message ${id}`);
      // With prefetch 1 the message holds the only credit: the fetch that registers it must not wait for credit.
      await within(Promise.all(acks), 5000, `the ack of ${id} never completed`);
    }
    assert.deepEqual(got.map((g) => g.id), ['w1', 'w2', 'w3']);
    assert.ok(got.every((g) => g.early), 'each was handed out before its registration');
    await sleep(300);
    assert.equal(got.length, 3, 'none was handed out a second time by the fetch that registered it');
    assert.equal(await r.hlen(keys.unacked), 0, 'acked after its registration: nothing left in unacked');
    assert.equal(await r.zcard(keys.unackedIndex), 0);
    assert.equal(await r.llen(keys.inflightKey(consumer.id, 'celery')), 0);
  } finally {
    await consumer.close();
    await broker.close();
    r.disconnect();
  }
});

test('restoreUnacked puts held messages back at the head of their queue, intact and marked redelivered', async () => {
  const r = await fresh();
  const keys = new KeyLayout({});
  const broker = createBroker(redisDb(DB), ctx({}, {}, captureLogger()));
  await push(r, ['h1', 'h2', 'h3']);
  const sent = new Map((await r.lrange('celery', 0, -1)).map((text) => [String((JSON.parse(text) as { headers: { id: string } }).headers.id), JSON.parse(text) as Record<string, unknown>]));
  const got: Delivery[] = [];
  const consumer = await broker.consume(['celery'], (d) => got.push(d), { prefetch: 10 });
  try {
    await eventually(() => got.length === 3, 'the three messages');
    await eventually(async () => (await r.hlen(keys.unacked)) === 3, 'all three registered in unacked');
    await consumer.stop();
    await push(r, ['later']); // queued behind the restored ones once they are back at the head
    assert.equal(await consumer.restoreUnacked(), 3);
    assert.equal(await r.hlen(keys.unacked), 0, 'no longer held');
    const queued = (await r.lrange('celery', 0, -1)).map((text) => JSON.parse(text) as { headers: Record<string, unknown>; properties: Record<string, unknown> });
    // RPOP takes from the right: the restored messages come first, in their delivery order, then the later one.
    assert.deepEqual(queued.map((m) => m.headers.id).reverse(), ['h1', 'h2', 'h3', 'later']);
    for (const m of queued.filter((q) => q.headers.id !== 'later')) {
      const original = sent.get(String(m.headers.id)) as { headers: Record<string, unknown>; properties: Record<string, unknown> };
      assert.deepEqual(m, {
        ...original,
        headers: { ...original.headers, redelivered: true },
        properties: { ...original.properties, delivery_info: { ...(original.properties.delivery_info as object), redelivered: true } },
      });
    }
  } finally {
    await consumer.stop();
    await broker.close();
    r.disconnect();
  }
});

test('a worker on a Redis older than 6.2 does not start, and says why', async () => {
  assert.equal(redisVersionProblem('# Server\r\nredis_version:7.0.15\r\n', 'x'), null);
  assert.equal(redisVersionProblem('redis_version:6.2.0\r\n', 'x'), null);
  assert.equal(redisVersionProblem('# Server\r\n', 'x'), null, 'a server that does not say is given the benefit of the doubt');
  assert.match(redisVersionProblem('redis_version:5.0.7\r\n', 'redis://h/0') ?? '', /redis:\/\/h\/0 is version 5\.0\.7; a Celeriac worker needs Redis 6\.2 or later/);
  // The broker asks the server before it consumes (the server here is newer, so its answer is replaced).
  const broker = createBroker(redisDb(DB), ctx({}, {}));
  const client = await (broker as unknown as RedisBroker).commandClient();
  const info = client.info.bind(client) as (section?: string) => Promise<string>;
  (client as unknown as { info: (section?: string) => Promise<string> }).info = async (section?: string) =>
    section === 'server' ? '# Server\r\nredis_version:6.0.16\r\n' : info(section);
  await assert.rejects(broker.consume(['celery'], () => undefined, { prefetch: 1 }), /version 6\.0\.16; a Celeriac worker needs Redis 6\.2 or later/);
  await broker.close();
});
