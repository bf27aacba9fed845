// result_backend_transport_options = { retry_policy: { timeout: 5.0 } } and the rest of Celery's retry policy,
// against private redis-servers: an unreachable or hung result backend gives up when configured, and a
// backend outage neither hangs the worker nor runs a finished task again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import { RedisBackend } from '../../src/backends/redis.js';
import { pendingMeta } from '../../src/backends/types.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

let brokerServer: RedisServer;
let backendServer: RedisServer;

before(async () => {
  [brokerServer, backendServer] = await Promise.all([startRedisServer(), startRedisServer()]);
});

after(async () => {
  await Promise.all([brokerServer?.destroy(), backendServer?.destroy()]);
});

function backendFor(url: string, retryPolicy: Record<string, number>): RedisBackend {
  const app = new Celeriac('rp', { result_backend: url, result_backend_transport_options: { retry_policy: retryPolicy } });
  return new RedisBackend(url, { settings: app.conf, logger: createLogger('critical') });
}

async function timeStore(b: RedisBackend): Promise<{ ms: number; err: Error }> {
  const t0 = Date.now();
  const err = await b.store({ ...pendingMeta('t-' + t0), status: 'SUCCESS', result: 1 }).then(() => null, (e: Error) => e);
  assert.ok(err, 'storing to an unavailable backend must fail');
  return { ms: Date.now() - t0, err };
}

test("retry_policy: { timeout: 5.0 } — the seed's snippet — gives up after 5 s against an unreachable result backend", async (t) => {
  const port = await freePort(); // nobody listens there
  const b = backendFor(`redis://127.0.0.1:${port}/0`, { timeout: 5.0 });
  const { ms, err } = await timeStore(b);
  await b.close();
  assert.equal(err.name, 'BackendUnavailable');
  assert.match(err.message, new RegExp(`redis://127\\.0\\.0\\.1:${port}/0`));
  assert.ok(ms >= 4500 && ms < 6500, `gave up after ${ms} ms, expected ~5000`);
  t.diagnostic(`unreachable backend, timeout 5.0: gave up after ${ms} ms`);
});

test('retry_policy.timeout bounds a store to a server that stopped answering (SIGSTOP), and it works again after', async (t) => {
  const b = backendFor(backendServer.url(2), { timeout: 2.0 });
  await b.store({ ...pendingMeta('ok-1'), status: 'SUCCESS', result: 1 });
  backendServer.pause();
  try {
    const { ms, err } = await timeStore(b);
    assert.equal(err.name, 'BackendUnavailable');
    assert.ok(ms >= 1800 && ms < 3500, `gave up after ${ms} ms, expected ~2000`);
    t.diagnostic(`hung backend, timeout 2.0: gave up after ${ms} ms`);
  } finally {
    backendServer.resume();
  }
  await b.store({ ...pendingMeta('ok-2'), status: 'SUCCESS', result: 2 });
  assert.equal((await b.get('ok-2')).result, 2);
  await b.close();
});

test('max_retries / interval_start / interval_step / interval_max follow Celery\'s schedule', async () => {
  const port = await freePort();
  // 3 retries after the first attempt, sleeping 0.2, 0.5, 0.6 (capped) s: about 1.3 s in all.
  const b = backendFor(`redis://127.0.0.1:${port}/0`, { max_retries: 3, interval_start: 0.2, interval_step: 0.3, interval_max: 0.6 });
  const { ms, err } = await timeStore(b);
  await b.close();
  assert.match(err.message, /after 4 attempt\(s\)/);
  assert.ok(ms >= 1200 && ms < 2500, `took ${ms} ms, expected ~1300`);
});

test('a result backend outage neither hangs the worker nor runs a finished task again', async () => {
  const runs = new Map<string, number>();
  const lines: string[] = [];
  const app = new Celeriac('rp', {
    broker_url: brokerServer.url(0),
    result_backend: backendServer.url(3),
    result_backend_transport_options: { retry_policy: { timeout: 2.0 } },
    logger: createLogger('warning', (l) => lines.push(l)),
  });
  app.task('tasks.add', (x: number, y: number) => x + y);
  const worker = app.worker({ concurrency: 2 });
  worker.on('taskPrerun', (e: { id: string }) => runs.set(e.id, (runs.get(e.id) ?? 0) + 1));
  const done = new Set<string>();
  worker.on('taskPostrun', (e: { id: string }) => done.add(e.id));
  await worker.start();
  try {
    const first = await app.sendTask('tasks.add', [1, 1]);
    assert.equal(await first.get({ timeout: 10_000 }), 2);

    backendServer.pause();
    let during: string;
    try {
      during = (await app.sendTask('tasks.add', [2, 2])).id;
      const t0 = Date.now();
      while (!done.has(during) && Date.now() - t0 < 8000) await new Promise((r) => setTimeout(r, 50));
      assert.ok(done.has(during), 'the worker hung on the unavailable backend');
      assert.ok(lines.some((l) => l.includes(`Could not store the SUCCESS state of task tasks.add[${during}]`)), lines.join(''));
    } finally {
      backendServer.resume();
    }
    // The worker carries on, and the task that finished during the outage is not run again.
    const after = await app.sendTask('tasks.add', [3, 3]);
    assert.equal(await after.get({ timeout: 10_000 }), 6);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(runs.get(during), 1);
    assert.equal(brokerServer.cli('-n', '0', 'HLEN', 'unacked').trim(), '0');
    assert.equal(brokerServer.cli('-n', '0', 'LLEN', 'celery').trim(), '0');
  } finally {
    await worker.close();
    await app.close();
  }
});
