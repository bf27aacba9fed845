// Redis URLs at their edges, against private servers: redis+socket:// with a password (kombu's
// ":secret@/path" form), and a database number the server does not have or that is not a number.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Celeriac } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

let secured: RedisServer; // unix socket + requirepass
const PASSWORD = 'se:cr@t/pw';

before(async () => {
  secured = await startRedisServer({ unixSocket: true, password: PASSWORD });
});
after(async () => {
  await secured?.destroy();
});

const quiet = () => createLogger('critical');

test('redis+socket://:password@/path?virtual_host=N: the password is read from the URL, for broker and result backend', async () => {
  const pw = encodeURIComponent(PASSWORD);
  const url = (db: number) => `redis+socket://:${pw}@${secured.socketPath}?virtual_host=${db}`;
  const app = new Celeriac('sock', { broker_url: url(3), result_backend: url(4), logger: quiet() });
  app.task('tasks.add', (x: number, y: number) => x + y);
  const w = app.worker({ concurrency: 1 });
  await w.start();
  try {
    const r = await app.sendTask('tasks.add', [2, 3]);
    assert.equal(await r.get({ timeout: 10_000 }), 5);
    assert.equal(secured.cli('-n', '3', 'EXISTS', '_kombu.binding.celery').trim(), '1');
    assert.equal(secured.cli('-n', '4', 'EXISTS', `celery-task-meta-${r.id}`).trim(), '1');
    // The clients came through the socket (redis-cli -s), not TCP.
    const clients = secured.cli('CLIENT', 'LIST');
    assert.match(clients, /addr=\/[^ ]*redis\.sock/);
  } finally {
    await w.close();
    await app.close();
  }
  // The user:password form and a wrong password, which is named without being shown.
  const withUser = new Celeriac('sock', { broker_url: `redis+socket://default:${pw}@${secured.socketPath}?virtual_host=2`, logger: quiet() });
  await withUser.sendTask('tasks.add', [1, 1]);
  assert.equal(secured.cli('-n', '2', 'LLEN', 'celery').trim(), '1');
  await withUser.close();
  const wrong = new Celeriac('sock', { broker_url: `redis+socket://:nope@${secured.socketPath}`, logger: quiet() });
  await assert.rejects(wrong.sendTask('tasks.add', [1, 1]), (err: Error) => /WRONGPASS|invalid password/i.test(err.message) && err.message.includes('redis+socket://:**@') && !err.message.includes('nope'));
  await wrong.close();
});

test('a database the server does not have is an error naming the URL (password masked) and the limit', async () => {
  const url = `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${secured.port}/99`;
  for (const which of ['broker', 'backend'] as const) {
    const app = new Celeriac('db', which === 'broker' ? { broker_url: url, logger: quiet() } : { broker_url: 'memory://', result_backend: url, logger: quiet() });
    await assert.rejects(which === 'broker' ? app.broker() : app.backend(), (err: Error) => {
      assert.match(err.message, new RegExp(`Redis database 99 in redis://:\\*\\*@127\\.0\\.0\\.1:${secured.port}/99 does not exist: the server has 16 databases \\(0 to 15\\)`));
      assert.ok(!err.message.includes(PASSWORD));
      return true;
    });
    await app.close();
  }
  assert.equal(secured.cli('-n', '0', 'EXISTS', '_kombu.binding.celery').trim(), '0', 'nothing was written to database 0');
  // Not a number: refused before connecting.
  for (const bad of ['abc', '1e1', '-1']) {
    const app = new Celeriac('db', { broker_url: `redis://127.0.0.1:${secured.port}/${bad}`, logger: quiet() });
    await assert.rejects(app.broker(), new RegExp(`Invalid Redis database "${bad}" in redis://127\\.0\\.0\\.1:${secured.port}/${bad}: it must be a database number from 0`));
    await app.close();
  }
});

test('celeriac worker -b redis://…/99 exits 1 with one line, instead of consuming database 0', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '-A', 'test/fixtures/cli-app.ts', '-b', `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${secured.port}/99`, 'worker'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 1, r.stderr);
  const errors = r.stderr.trim().split('\n').filter((l) => l.startsWith('Error:'));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0]!, /Redis database 99 in redis:\/\/:\*\*@127\.0\.0\.1:\d+\/99 does not exist: the server has 16 databases/);
  assert.doesNotMatch(r.stderr, /Trying again/, 'retrying cannot create a database');
});
