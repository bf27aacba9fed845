// What a worker keeps does not grow without bound, and nothing it armed outlives it: the Redis
// restorer's record of unroutable messages stays bounded over thousands of them, and a closed worker
// leaves no timer of ours behind on any transport.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { Celeriac } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import { encodeTaskV2 } from '../../src/protocol/message.js';
import { encodeEnvelope } from '../../src/protocol/envelope.js';
import type { RedisBroker } from '../../src/brokers/redis/broker.js';
import type { RedisConsumer } from '../../src/brokers/redis/consumer.js';
import { AMQP_URL, redisDb, requireRabbit, requireRedis, sleep, uniqueName } from '../helpers/services.js';

/** A held message as kombu keeps it in unacked: [envelope, exchange, routing_key]. */
function unackedEntry(tag: string, exchange: string): string {
  const raw = JSON.parse(encodeEnvelope(encodeTaskV2('res.add', [1, 2], {}), { exchange, routing_key: 'rk' })) as Record<string, unknown>;
  (raw.properties as Record<string, unknown>).delivery_tag = tag;
  return JSON.stringify([raw, exchange, 'rk']);
}

test('[redis] thousands of unroutable held messages: reported once per exchange, the record stays bounded, and empties once they route', async () => {
  await requireRedis();
  const prefix = `${uniqueName('parked')}:`;
  const url = redisDb(12);
  const lines: string[] = [];
  const logger = createLogger('warning', (l) => void lines.push(l));
  // A long visibility timeout keeps the consumer's own sweep out of the way; the test ages entries itself.
  const app = new Celeriac('parked', { broker: url, logger, broker_transport_options: { global_keyprefix: prefix, visibility_timeout: 3600 } });
  const redis = new Redis(url);
  const broker = (await app.broker()) as RedisBroker;
  const consumer = (await broker.consume([uniqueName('parked-q')], () => undefined, { prefetch: 1 })) as RedisConsumer;
  try {
    const old = Date.now() / 1000 - 7200;
    const park = async (n: number, exchangeOf: (i: number) => string) => {
      const pipe = redis.pipeline();
      for (let i = 0; i < n; i++) {
        const tag = `${prefix}t${i}-${exchangeOf(i)}`;
        pipe.hset(`${prefix}unacked`, tag, unackedEntry(tag, exchangeOf(i)));
        pipe.zadd(`${prefix}unacked_index`, old, tag);
      }
      await pipe.exec();
    };
    await park(3000, (i) => `gone-${i % 2}`);
    for (let pass = 0; pass < 3; pass++) await consumer.restoreVisible();
    assert.equal(await redis.hlen(`${prefix}unacked`), 3000, 'kept in unacked, never dropped');
    assert.equal(consumer.parkedExchanges, 2, 'one record per exchange, not one per message');
    assert.equal(lines.filter((l) => l.includes('Could not restore message')).length, 2, 'one line per exchange');

    // Far more exchanges than the record holds: it starts over rather than grow.
    await park(1500, (i) => `many-${i}`);
    for (let pass = 0; pass < 6; pass++) await consumer.restoreVisible();
    assert.ok(consumer.parkedExchanges <= 1000, `bounded: ${consumer.parkedExchanges}`);

    // Bindings back, and a visibility timeout later (scores aged by hand): the parked messages route again.
    await redis.sadd(`${prefix}_kombu.binding.gone-0`, 'rk\x06\x16\x06\x16back-q');
    await redis.sadd(`${prefix}_kombu.binding.gone-1`, 'rk\x06\x16\x06\x16back-q');
    const aged = redis.pipeline();
    for (const tag of await redis.zrange(`${prefix}unacked_index`, '0', '-1')) aged.zadd(`${prefix}unacked_index`, String(old), tag);
    await aged.exec();
    for (let pass = 0; pass < 8 && (await redis.llen(`${prefix}back-q`)) < 3000; pass++) await consumer.restoreVisible();
    assert.equal(await redis.llen(`${prefix}back-q`), 3000, 'every message of the bound exchanges restored');
    assert.ok(consumer.parkedExchanges <= 1000, `still bounded: ${consumer.parkedExchanges}`);
    assert.equal(lines.filter((l) => /Could not restore message .*exchange 'gone-/.test(l)).length, 2, 'gone-* never reported again');
  } finally {
    await consumer.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    await app.close();
  }
});

/** Timers created by Celeriac's own code (not a library's) that are still armed. */
function trackOurTimers(): { stop: () => string[] } {
  const live = new Map<number, string>();
  const hook = createHook({
    init(id, type) {
      if (type !== 'Timeout') return;
      const stack = new Error().stack ?? '';
      const ours = stack.split('\n').find((l) => l.includes('/src/') && !l.includes('node_modules'));
      if (ours) live.set(id, ours.trim());
    },
    destroy(id) {
      live.delete(id);
    },
  }).enable();
  return { stop: () => { hook.disable(); return [...live.values()]; } };
}

const TRANSPORTS: { name: string; url: () => string; check: () => Promise<void> }[] = [
  { name: 'redis', url: () => redisDb(12), check: requireRedis },
  { name: 'amqp', url: () => AMQP_URL, check: requireRabbit },
  { name: 'sqlite', url: () => `sqlite:///${path.join(mkdtempSync(path.join(os.tmpdir(), 'celeriac-timers-')), 'db.sqlite')}`, check: async () => undefined },
  { name: 'memory', url: () => `memory://${uniqueName('timers')}`, check: async () => undefined },
];

for (const t of TRANSPORTS) {
  test(`[${t.name}] a closed worker leaves no timer of ours armed (connect deadlines, shutdown races, ETA holds)`, async () => {
    await t.check();
    const url = t.url();
    const backend = t.name === 'amqp' ? redisDb(12) : url;
    const timers = trackOurTimers();
    const queue = uniqueName('timers');
    const app = new Celeriac('timers', { broker: url, backend, task_default_queue: queue });
    app.task('res.add', (x: number, y: number) => x + y);
    const worker = app.worker({ concurrency: 4, loglevel: 'critical', hostname: `${queue}@test` });
    await worker.start();
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => app.sendTask('res.add', [i, 1])));
    await Promise.all(rs.map((r) => r.get({ timeout: 15_000 })));
    await app.sendTask('res.add', [0, 0], {}, { countdown: 600 }); // held by the worker when it closes
    await sleep(500);
    await worker.close();
    await app.close();
    await sleep(50);
    const left = timers.stop();
    if (t.name === 'sqlite') rmSync(path.dirname(url.slice('sqlite:///'.length)), { recursive: true, force: true });
    assert.deepEqual(left, [], `timers still armed after close:\n${left.join('\n')}`);
  });
}
