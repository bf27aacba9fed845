// buffer_while_offline on a real Redis: a worker keeps the events it makes while Redis is down (its
// heartbeats here) and publishes every one of them, in order, once Redis is back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import type { QuotedEvents } from '../../src/brokers/types.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { eventually, sleep } from '../helpers/services.js';

test('events made while Redis is down are published after it comes back: none lost, in order', { timeout: 120_000 }, async () => {
  const server = await startRedisServer();
  const app = new Celeriac('offline', { broker: server.url(0), backend: 'memory://offline' });
  const lines: string[] = [];
  const worker = app.worker({ hostname: 'offline@events', concurrency: 1, heartbeatInterval: 0.25, mingle: false, logger: createLogger('warning', (l) => lines.push(l)) });
  await worker.start();
  // Watch what Redis accepted: each event the broker's publish confirmed.
  const broker = await app.broker();
  // (Redis takes events as text: the dispatcher calls publishEventJson with the events in quoted form.)
  const publish = broker.publishEventJson!.bind(broker);
  const published: { clock: number; timestamp: number; type: string }[] = [];
  broker.publishEventJson = async (exchange: string, routingKey: string, body: QuotedEvents) => {
    await publish(exchange, routingKey, body);
    for (const e of body.events) published.push(JSON.parse(JSON.parse(`"${e}"`) as string) as typeof published[number]);
  };
  try {
    await eventually(() => published.length >= 2, 'heartbeats while Redis is up', 10_000);
    await server.kill();
    const downAt = Date.now() / 1000;
    await sleep(2000);
    const upAt = Date.now() / 1000;
    await server.start();
    await eventually(() => published.some((e) => e.timestamp > upAt), 'events after the restart', 60_000);
    const during = published.filter((e) => e.timestamp > downAt + 0.3 && e.timestamp < upAt);
    assert.ok(during.length >= 4, `heartbeats made while Redis was down were published afterwards (${during.length})`);
    const clocks = published.map((e) => e.clock);
    assert.deepEqual(clocks, [...clocks].sort((a, b) => a - b), 'in the order they were made');
    for (let i = 1; i < clocks.length; i++) assert.ok(clocks[i]! > clocks[i - 1]!, 'no event twice');
    const heartbeats = published.filter((e) => e.type === 'worker-heartbeat');
    for (let i = 1; i < heartbeats.length; i++) {
      assert.ok(heartbeats[i]!.timestamp - heartbeats[i - 1]!.timestamp < 1.5, `no gap in the heartbeats (none lost): ${heartbeats[i - 1]!.timestamp} → ${heartbeats[i]!.timestamp}`);
    }
  } finally {
    await worker.close({ cold: true });
    await app.close();
    await server.destroy();
  }
});
