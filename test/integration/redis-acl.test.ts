// A Redis ACL user that lacks a command or a key: the worker says once which command or key, and the
// rule to add, then retries with backoff instead of flooding the log. Real ACL users on a private
// redis-server (never the shared one).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, type Worker } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { sleep, uniqueName } from '../helpers/services.js';

let redis: RedisServer;
const open: { app: Celeriac; worker: Worker }[] = [];
before(async () => {
  redis = await startRedisServer();
});
after(async () => {
  for (const o of open) {
    await o.worker.close().catch(() => undefined);
    await o.app.close().catch(() => undefined);
  }
  await redis?.destroy();
});

function setup(user: string, queue = uniqueName('acl')) {
  const url = `redis://${user}:pw@127.0.0.1:${redis.port}/0`;
  const lines: string[] = [];
  const logger = createLogger('warning', (l) => void lines.push(l));
  const app = new Celeriac('acl', { broker: url, backend: redis.url(1), task_default_queue: queue, logger });
  app.task('acl.add', (x: number, y: number) => x + y);
  const worker = app.worker({ concurrency: 1, logger, hostname: `${queue}@test`, remoteControl: false });
  open.push({ app, worker });
  return { app, worker, lines, queue };
}

test('a user without BLMOVE: one line naming BLMOVE and the rule to add, backoff instead of a flood, and tasks still run', async () => {
  redis.cli('ACL', 'SETUSER', 'noblmove', 'on', '>pw', '~*', '&*', '+@all', '-blmove');
  const { app, worker, lines } = setup('noblmove');
  await worker.start();
  await sleep(4000);
  const said = lines.filter((l) => l.includes('BLMOVE'));
  assert.equal(said.length, 1, `one line in 4 s (it was ten a second), got ${lines.length}:\n${lines.join('')}`);
  assert.match(said[0]!, /WARNING.*Redis user 'noblmove' may not run BLMOVE .*allow it with ACL SETUSER noblmove \+blmove/);
  assert.match(said[0]!, /the same error is not logged again/);
  // Fetches still work: a task runs, later than it would with BLMOVE (the wait backs off up to 5 s).
  const admin = new Celeriac('admin', { broker: redis.url(0), backend: redis.url(1) });
  try {
    const r = await admin.sendTask('acl.add', [2, 3], {}, { queue: worker.queues[0] });
    assert.equal(await r.get({ timeout: 20_000 }), 5);
  } finally {
    await admin.close();
  }
  assert.equal(lines.filter((l) => l.includes('BLMOVE')).length, 1);
  assert.ok(app);
});

test("a user whose key patterns leave out kombu's unacked keys: the start fails naming the keys and the pattern to add", async () => {
  redis.cli('ACL', 'SETUSER', 'queuesonly', 'on', '>pw', 'resetkeys', '~celery*', '~_kombu.*', '~acl-*', '&*', '+@all');
  const { worker } = setup('queuesonly');
  await assert.rejects(worker.start(), (e: Error) => {
    assert.match(e.message, /Redis user 'queuesonly' may not access the keys 'unacked_index', '_celeriac\.consumer\/[0-9a-f-]+'/);
    assert.match(e.message, /allow them with ACL SETUSER queuesonly ~unacked\* ~_celeriac\.\*/);
    assert.ok(!e.message.includes('redis.call'), 'no Lua source in the message');
    return true;
  });
});

test('a user that may not touch the queue it consumes: one line naming the queue key and its pattern', async () => {
  const queue = uniqueName('secret');
  redis.cli('ACL', 'SETUSER', 'noqueue', 'on', '>pw', 'resetkeys', '~unacked*', '~_celeriac.*', '~_kombu.*', '&*', '+@all');
  const { worker, lines } = setup('noqueue', queue);
  await worker.start();
  await sleep(3000);
  const said = lines.filter((l) => l.includes('may not access'));
  assert.equal(said.length, 1, lines.join(''));
  // The queue list and its priority lists (kombu's '\x06\x16' separator shown escaped), one pattern for all.
  assert.match(said[0]!, new RegExp(`may not access the keys '${queue}', '${queue}\\\\x06\\\\x163'.*allow them with ACL SETUSER noqueue ~${queue}\\* `));
});

test('a result backend user that may not GET: get() fails at once naming NOPERM, without the 20 retries of the retry policy', async () => {
  redis.cli('ACL', 'SETUSER', 'noget', 'on', '>pw', '~*', '&*', '+@all', '-get', '-mget');
  const app = new Celeriac('acl-get', { broker: redis.url(0), backend: `redis://noget:pw@127.0.0.1:${redis.port}/1` });
  try {
    const started = Date.now();
    await assert.rejects(app.AsyncResult('5b0b0d0e-0000-4000-8000-000000000001').get({ timeout: 60_000 }), (e: Error) => {
      assert.match(e.message, /NOPERM/);
      assert.doesNotMatch(e.message, /Gave up/);
      return true;
    });
    assert.ok(Date.now() - started < 5000, `failed after ${Date.now() - started} ms; a retried NOPERM takes about 20 s`);
  } finally {
    await app.close();
  }
});
