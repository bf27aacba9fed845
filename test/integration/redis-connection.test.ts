// The seed's Redis URL forms and connection options, each against a private redis-server:
// redis://:password@host:port/db, redis+socket:///path[?virtual_host=N], rediss:// with ssl_cert_reqs,
// broker_use_ssl / redis_backend_use_ssl, global_keyprefix, socket_timeout, health_check_interval,
// max_connections — for the broker and for result_backend.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import type { RedisBroker } from '../../src/brokers/redis/broker.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

let plain: RedisServer; // unix socket + TLS port, no password
let secured: RedisServer; // requirepass

before(async () => {
  [plain, secured] = await Promise.all([
    startRedisServer({ unixSocket: true, tls: true }),
    startRedisServer({ password: 's3cret/p@ss' }),
  ]);
});

after(async () => {
  await Promise.all([plain?.destroy(), secured?.destroy()]);
});

function capture(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, logger: createLogger('info', (l) => lines.push(l)) };
}

/** Start a worker on `app`, run tasks.add(2, 3) through it, return the task id. */
async function roundTrip(settings: Record<string, unknown>): Promise<{ id: string; app: Celeriac }> {
  const app = new Celeriac('conn', { result_expires: 600, ...settings });
  app.task('tasks.add', (x: number, y: number) => x + y);
  const worker = app.worker({ concurrency: 2 });
  try {
    await worker.start();
    const r = await app.sendTask('tasks.add', [2, 3]);
    assert.equal(await r.get({ timeout: 10_000 }), 5);
    return { id: r.id, app };
  } finally {
    await worker.close();
    await app.close();
  }
}

test('redis://:password@hostname:port/db_number for broker and result_backend: the right databases, password never shown', async () => {
  const broker = secured.url(5);
  const backend = secured.url(6);
  assert.match(broker, /^redis:\/\/:s3cret%2Fp%40ss@127\.0\.0\.1:\d+\/5$/);
  const { id } = await roundTrip({ broker_url: broker, result_backend: backend });
  assert.equal(secured.cli('-n', '5', 'SISMEMBER', '_kombu.binding.celery', 'celery\x06\x16\x06\x16celery').trim(), '1');
  assert.equal(secured.cli('-n', '6', 'EXISTS', `celery-task-meta-${id}`).trim(), '1');
  assert.equal(secured.cli('-n', '0', 'DBSIZE').trim(), '0');

  const wrong = new Celeriac('conn', { broker_url: `redis://:nope@127.0.0.1:${secured.port}/5`, broker_connection_timeout: 2 });
  await assert.rejects(wrong.sendTask('tasks.add', [1, 1]), (err: Error) => {
    assert.match(err.message, /WRONGPASS|invalid password|NOAUTH/i);
    assert.match(err.message, new RegExp(`redis://:\\*\\*@127\\.0\\.0\\.1:${secured.port}/5`));
    assert.doesNotMatch(err.message, /nope/);
    return true;
  });
  await wrong.close();
});

test('redis+socket:///path/to/redis.sock for broker and result_backend uses database 0', async () => {
  const url = `redis+socket://${plain.socketPath}`;
  plain.cli('FLUSHALL');
  const { id } = await roundTrip({ broker_url: url, result_backend: url });
  assert.equal(plain.cli('-n', '0', 'EXISTS', `celery-task-meta-${id}`).trim(), '1');
  assert.equal(plain.cli('-n', '0', 'EXISTS', '_kombu.binding.celery').trim(), '1');
  // The socket really was used: the server saw a unix-socket client (addr "/path:0").
  assert.match(plain.cli('INFO', 'stats'), /total_connections_received:\d+/);
});

test('redis+socket:///path/to/redis.sock?virtual_host=db_number selects that database, for broker and result_backend', async () => {
  plain.cli('FLUSHALL');
  const { id } = await roundTrip({
    broker_url: `redis+socket://${plain.socketPath}?virtual_host=3`,
    result_backend: `redis+socket://${plain.socketPath}?virtual_host=4`,
  });
  assert.equal(plain.cli('-n', '3', 'EXISTS', '_kombu.binding.celery').trim(), '1');
  assert.equal(plain.cli('-n', '4', 'EXISTS', `celery-task-meta-${id}`).trim(), '1');
  assert.equal(plain.cli('-n', '0', 'DBSIZE').trim(), '0');
});

test('rediss:// with ssl_cert_reqs in the URL, and broker_use_ssl / redis_backend_use_ssl, talk TLS to the server', async () => {
  const ca = encodeURIComponent(plain.tlsFiles!.ca);
  const tlsUrl = (db: number, q: string) => `rediss://127.0.0.1:${plain.tlsPort}/${db}?${q}`;
  plain.cli('FLUSHALL');
  // Verified against our CA, as the seed's ssl_cert_reqs=required form.
  const a = await roundTrip({ broker_url: tlsUrl(1, `ssl_cert_reqs=required&ssl_ca_certs=${ca}`), result_backend: tlsUrl(2, `ssl_cert_reqs=required&ssl_ca_certs=${ca}`) });
  assert.equal(plain.cli('-n', '2', 'EXISTS', `celery-task-meta-${a.id}`).trim(), '1');
  // The settings form: broker_use_ssl and redis_backend_use_ssl objects, Celery's key names.
  const b = await roundTrip({
    broker_url: `rediss://127.0.0.1:${plain.tlsPort}/1`,
    result_backend: `rediss://127.0.0.1:${plain.tlsPort}/2`,
    broker_use_ssl: { ssl_cert_reqs: 'CERT_REQUIRED', ssl_ca_certs: plain.tlsFiles!.ca },
    redis_backend_use_ssl: { ssl_cert_reqs: 'CERT_REQUIRED', ssl_ca_certs: plain.tlsFiles!.ca },
  });
  assert.equal(plain.cli('-n', '2', 'EXISTS', `celery-task-meta-${b.id}`).trim(), '1');
  // ssl_cert_reqs=none: no verification, still TLS.
  await roundTrip({ broker_url: tlsUrl(1, 'ssl_cert_reqs=none'), result_backend: tlsUrl(2, 'ssl_cert_reqs=CERT_NONE') });

  // required without our CA: the self-signed certificate is refused.
  const strict = new Celeriac('conn', { broker_url: tlsUrl(1, 'ssl_cert_reqs=required'), broker_connection_timeout: 2 });
  await assert.rejects(strict.sendTask('tasks.add', [1, 1]), /self[- ]signed certificate|unable to verify|certificate/i);
  await strict.close();
  // Celery's rule for a TLS result backend: ssl_cert_reqs must be given.
  const vague = new Celeriac('conn', { broker_url: plain.url(1), result_backend: `rediss://127.0.0.1:${plain.tlsPort}/2` });
  await assert.rejects(vague.backend(), /ssl_cert_reqs/);
  await vague.close();
});

test('global_keyprefix for the broker (verbatim) and the result backend (with "_") prefixes every key', async () => {
  plain.cli('FLUSHALL');
  const { id } = await roundTrip({
    broker_url: plain.url(7),
    result_backend: plain.url(7),
    broker_transport_options: { global_keyprefix: 'pfx_' },
    result_backend_transport_options: { global_keyprefix: 'res' },
  });
  const keys = plain.cli('-n', '7', 'KEYS', '*').trim().split('\n').sort();
  assert.ok(keys.includes('pfx__kombu.binding.celery'), keys.join(','));
  assert.ok(keys.includes(`res_celery-task-meta-${id}`), keys.join(','));
  for (const k of keys) assert.ok(k.startsWith('pfx_') || k.startsWith('res_'), `unprefixed key ${k}`);
});

test('socket_timeout drops a connection to a server that stops answering; health_check_interval notices an idle one', async () => {
  const server = await startRedisServer();
  try {
    const app = new Celeriac('conn', {
      broker_url: server.url(0),
      broker_transport_options: { socket_timeout: 1, health_check_interval: 1 },
    });
    const broker = (await app.broker()) as RedisBroker;
    const client = await broker.commandClient();
    assert.equal(await client.ping(), 'PONG');
    // socket_timeout: a command with no reply for 1 s closes the socket.
    let closedAt = 0;
    client.once('close', () => { closedAt = Date.now(); });
    server.pause();
    const t0 = Date.now();
    void client.get('x').catch(() => undefined);
    while (!closedAt && Date.now() - t0 < 6000) await new Promise((r) => setTimeout(r, 50));
    server.resume();
    assert.ok(closedAt > 0, 'the connection was not dropped after socket_timeout');
    assert.ok(closedAt - t0 >= 900 && closedAt - t0 < 3000, `dropped after ${closedAt - t0} ms, expected ~1000`);
    await app.close();

    // health_check_interval alone (no socket_timeout): the periodic PING finds the dead socket.
    const app2 = new Celeriac('conn', { broker_url: server.url(0), broker_transport_options: { health_check_interval: 1 } });
    const c2 = await ((await app2.broker()) as RedisBroker).commandClient();
    let closed2 = 0;
    c2.once('close', () => { closed2 = Date.now(); });
    server.pause();
    const t1 = Date.now();
    while (!closed2 && Date.now() - t1 < 6000) await new Promise((r) => setTimeout(r, 50));
    server.resume();
    assert.ok(closed2 > 0, 'health_check_interval did not detect the unresponsive server');
    assert.ok(closed2 - t1 < 3500, `detected after ${closed2 - t1} ms, expected ≤ 2 intervals`);
    await app2.close();
  } finally {
    await server.destroy();
  }
});

test('max_connections: a worker that needs more connections than allowed fails with the setting named', async () => {
  const { logger } = capture();
  const tight = new Celeriac('conn', { broker_url: plain.url(8), broker_transport_options: { max_connections: 1 }, logger });
  tight.task('tasks.add', (x: number, y: number) => x + y);
  const w = tight.worker({ concurrency: 1 });
  await assert.rejects(w.start(), /max_connections = 1/);
  await w.close();
  await tight.close();
  // Two are enough for one consumer (a command connection and a blocking one).
  await roundTrip({ broker_url: plain.url(8), result_backend: plain.url(9), broker_transport_options: { max_connections: 2 }, redis_max_connections: 2 });
  const clients = plain.cli('CLIENT', 'LIST');
  assert.ok(clients.split('\n').filter((l) => l.includes('db=8')).length <= 2);
});

test('a server that goes on refusing writes (NOREPLICAS) fails a publish with its error after about a minute, not never; once it accepts writes, publishes go through', async () => {
  // min-replicas-to-write with no replica: every write is refused, as by a master whose failover never completes.
  const server = await startRedisServer({ args: ['--min-replicas-to-write', '1'] });
  const { logger } = capture();
  const app = new Celeriac('refused', { broker_url: server.url(0), logger });
  try {
    const t0 = Date.now();
    await assert.rejects(app.sendTask('tasks.add', [1, 2]), /publishing task .*NOREPLICAS/);
    const waited = Date.now() - t0;
    // Resent for REFUSED_RESEND_MS (a failover's refusals end well within it), then failed, retries included.
    assert.ok(waited >= 59_000 && waited < 120_000, `the publish failed after ${waited} ms`);
    assert.equal(server.cli('LLEN', 'celery').trim(), '0');
    server.cli('CONFIG', 'SET', 'min-replicas-to-write', '0');
    const r = await app.sendTask('tasks.add', [1, 2]);
    assert.equal(server.cli('LLEN', 'celery').trim(), '1');
    assert.match(server.cli('LINDEX', 'celery', '0'), new RegExp(r.id));
  } finally {
    await app.close();
    await server.destroy();
  }
});
