// Key eviction on a private redis-server: the worker warns at start when maxmemory-policy can evict keys;
// a vanished _kombu.binding.<exchange> raises InconsistencyError naming the key (kombu >= 5.2 drops the
// message silently); a held message that cannot be routed back is kept, never deleted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

let lru: RedisServer;
let safe: RedisServer;

before(async () => {
  [lru, safe] = await Promise.all([
    startRedisServer({ args: ['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru'] }),
    startRedisServer({ args: ['--maxmemory-policy', 'noeviction'] }),
  ]);
});

after(async () => {
  await Promise.all([lru?.destroy(), safe?.destroy()]);
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function appOn(server: RedisServer, extra: Record<string, unknown> = {}): { app: Celeriac; lines: string[] } {
  const lines: string[] = [];
  const app = new Celeriac('evict', { broker_url: server.url(0), logger: createLogger('info', (l) => lines.push(l)), ...extra });
  app.task('tasks.add', (x: number, y: number) => x + y);
  return { app, lines };
}

test('the worker warns at start when maxmemory-policy can evict keys, and not under noeviction', async () => {
  for (const [server, expectWarning] of [[lru, true], [safe, false]] as const) {
    const { app, lines } = appOn(server);
    const w = app.worker({ concurrency: 1 });
    await w.start();
    await w.close();
    await app.close();
    const warning = lines.find((l) => l.includes('maxmemory-policy'));
    if (expectWarning) {
      assert.ok(warning, lines.join(''));
      assert.match(warning, /WARNING/);
      assert.match(warning, /'allkeys-lru'/);
      assert.match(warning, /noeviction/);
    } else {
      assert.equal(warning, undefined, warning);
    }
  }
});

test("publishing through an exchange whose _kombu.binding key vanished raises InconsistencyError naming the key", async () => {
  safe.cli('FLUSHALL');
  const { app } = appOn(safe);
  const w = app.worker({ concurrency: 1 });
  await w.start(); // declares _kombu.binding.celery, as a Celery worker does
  try {
    const ok = await app.sendTask('tasks.add', [1, 2], {}, { exchange: 'celery', routing_key: 'celery' });
    assert.ok(ok.id);
    assert.equal(safe.cli('DEL', '_kombu.binding.celery').trim(), '1'); // what an eviction does
    const t0 = Date.now();
    await assert.rejects(app.sendTask('tasks.add', [3, 4], {}, { exchange: 'celery', routing_key: 'celery' }), (err: Error) => {
      assert.equal(err.name, 'InconsistencyError');
      assert.match(err.message, /Probably the key \('_kombu\.binding\.celery'\) has been removed from the Redis database/);
      assert.match(err.message, /maxmemory-policy/);
      assert.match(err.message, /maxmemory/);
      return true;
    });
    assert.ok(Date.now() - t0 < 1000, 'InconsistencyError is not worth retrying: it must surface at once');
    // A routing key that no binding matches is an error too, not a silent drop.
    await assert.rejects(app.sendTask('tasks.add', [1, 1], {}, { exchange: 'celery', routing_key: 'nowhere' }), /InconsistencyError|Cannot route/);
  } finally {
    await w.close();
    await app.close();
  }
});

test('a held message whose binding vanished is never deleted: kept in unacked, restored once the binding is back', async () => {
  safe.cli('FLUSHALL');
  const VT = 1;
  const holder = appOn(safe, { task_acks_late: true, broker_transport_options: { visibility_timeout: VT } });
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  holder.app.task('tasks.hold', () => { started(); return new Promise(() => { /* held */ }); });
  const w1 = holder.app.worker({ concurrency: 1 });
  await w1.start();
  const r = await holder.app.sendTask('tasks.hold', [], {}, { exchange: 'celery', routing_key: 'celery' });
  await running;
  safe.cli('DEL', '_kombu.binding.celery');
  // Warm shutdown gives up on the running task and tries to restore it: it cannot be routed.
  await w1.close({ timeout: 200 });
  await holder.app.close();
  assert.ok(holder.lines.some((l) => l.includes(`Could not restore message`) && l.includes('_kombu.binding.celery')), holder.lines.join(''));
  assert.equal(safe.cli('HLEN', 'unacked').trim(), '1', 'the unroutable message must stay in unacked');

  // Another worker (on another queue, so it does not re-declare 'celery') sweeps stale entries: it parks this one.
  const sweeper = appOn(safe, { broker_transport_options: { visibility_timeout: VT } });
  const w2 = sweeper.app.worker({ queues: ['other'], concurrency: 1 });
  await w2.start();
  try {
    await sleep(2500);
    assert.equal(safe.cli('HLEN', 'unacked').trim(), '1');
    assert.equal(safe.cli('LLEN', 'celery').trim(), '0');
    const parked = sweeper.lines.filter((l) => l.includes('_kombu.binding.celery') && l.includes('ERROR'));
    assert.equal(parked.length, 1, `logged once, not on every sweep:\n${sweeper.lines.join('')}`);
    // Its score is kept fresh, so a Python worker's restore (which would drop it) leaves it alone.
    const score = Number(safe.cli('ZSCORE', 'unacked_index', safe.cli('HKEYS', 'unacked').trim()).trim());
    assert.ok(Date.now() / 1000 - score < VT + 1.5, `stale score ${score}`);

    // A worker restart re-declares the binding; the next sweep puts the message back on its queue.
    safe.cli('SADD', '_kombu.binding.celery', 'celery\x06\x16\x06\x16celery');
    const t0 = Date.now();
    while (safe.cli('LLEN', 'celery').trim() !== '1' && Date.now() - t0 < 6000) await sleep(100);
    assert.equal(safe.cli('LLEN', 'celery').trim(), '1');
    assert.equal(safe.cli('HLEN', 'unacked').trim(), '0');
    const item = JSON.parse(safe.cli('LINDEX', 'celery', '0')) as { headers: { id: string; redelivered?: boolean } };
    assert.equal(item.headers.id, r.id);
    assert.equal(item.headers.redelivered, true);
  } finally {
    await w2.close();
    await sweeper.app.close();
  }
});
