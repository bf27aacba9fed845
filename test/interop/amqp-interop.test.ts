// Celeriac ⇄ Python Celery (Debian's 5.2.6 / kombu 5.2.4 / py-amqp) over RabbitMQ, on the seed guide's
// account amqp://myuser:mypassword@localhost:5672/myvhost, with both the rpc:// and the Redis result backend.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac } from '../../src/index.js';
import type { Worker } from '../../src/worker/worker.js';
import amqplib from '../../src/brokers/amqp/amqplib.js';
import { redisDb, requireRedis, uniqueName } from '../helpers/services.js';
import { ensureSeedAccount, rabbitmqctl, SEED } from '../helpers/rabbit-node.js';
import { requirePythonCelery, runPythonProducer, startPythonWorker, type ManagedProcess } from './harness.js';
import { createInteropApp } from './ts/tasks.js';

const REDIS_BACKEND = redisDb(9);
const Q = {
  pyRpc: uniqueName('amqp-py-rpc'),
  pyRedis: uniqueName('amqp-py-redis'),
  tsRpc: uniqueName('amqp-ts-rpc'),
  tsRedis: uniqueName('amqp-ts-redis'),
};
let url: string;
let pyRpc: ManagedProcess;
let pyRedis: ManagedProcess;
const apps: Celeriac[] = [];
const workers: Worker[] = [];

async function tsWorker(backend: string, queue: string): Promise<void> {
  const app = createInteropApp({ broker: url, backend });
  apps.push(app);
  const w = app.worker({ queues: [queue], concurrency: 4, hostname: `${queue}@interop`, loglevel: 'warning' });
  await w.start();
  workers.push(w);
}

function client(backend: string, queue: string): Celeriac {
  const app = new Celeriac('amqp-interop-client', { broker: url, backend, task_default_queue: queue, result_expires: 3600 });
  apps.push(app);
  return app;
}

before(async () => {
  await requirePythonCelery();
  await requireRedis();
  url = await ensureSeedAccount();
  [pyRpc, pyRedis] = await Promise.all([
    startPythonWorker({ broker: url, backend: 'rpc://', queues: [Q.pyRpc], pool: 'threads', concurrency: 4 }),
    startPythonWorker({ broker: url, backend: REDIS_BACKEND, queues: [Q.pyRedis], pool: 'threads', concurrency: 4 }),
  ]);
  await tsWorker('rpc://', Q.tsRpc);
  await tsWorker(REDIS_BACKEND, Q.tsRedis);
});

after(async () => {
  for (const w of workers) await w.close().catch(() => undefined);
  for (const a of apps) await a.close().catch(() => undefined);
  await Promise.all([pyRpc?.stop(), pyRedis?.stop()]);
  const c = await amqplib.connect(url);
  const ch = await c.createChannel();
  for (const name of Object.values(Q)) {
    await ch.deleteQueue(name).catch(() => undefined);
    await ch.deleteExchange(name).catch(() => undefined);
  }
  await c.close();
});

const pyLogs = () => `\nPython rpc worker:\n${pyRpc.tail(20)}\nPython redis worker:\n${pyRedis.tail(20)}`;

for (const [label, backend, queue] of [['rpc://', 'rpc://', () => Q.pyRpc], ['Redis', REDIS_BACKEND, () => Q.pyRedis]] as const) {
  test(`TS client → Python worker over AMQP, ${label} results: values, failures, typed integer headers`, async () => {
    const app = client(backend, queue());
    const [a, m] = await Promise.all([
      app.sendTask('py.add', [2, 3]).then((r) => r.get({ timeout: 15_000 })),
      app.sendTask('py.mul', [6, 7]).then((r) => r.get({ timeout: 15_000 })),
    ]);
    assert.deepEqual([a, m], [5, 42], pyLogs());
    const f = await app.sendTask('py.fail', []);
    await assert.rejects(f.get({ timeout: 15_000 }), (err: Error) => err.name === 'ValueError' && /bad thing/.test(err.message));
    // Integer headers as py-amqp reads them: -5 would arrive as 251 with amqplib's default 'b' typing.
    const r = await app.sendTask('py.echo_request', [1], {}, { headers: { 'x-neg': -5, 'x-mid': 300, 'x-big': 5_000_000_000 }, priority: 3 });
    const req = (await r.get({ timeout: 15_000 })) as Record<string, unknown>;
    assert.deepEqual(req.custom_headers, { 'x-neg': -5, 'x-mid': 300, 'x-big': 5_000_000_000 }, pyLogs());
    assert.equal(req.correlation_id, r.id);
    assert.equal((req.delivery_info as Record<string, unknown>).routing_key, queue());
    assert.equal((req.delivery_info as Record<string, unknown>).exchange, '');
    const used = await app.backend();
    if (backend === 'rpc://') assert.equal(req.reply_to, used?.replyTo, 'reply_to names the rpc:// reply queue');
  });

  test(`Python client → TS worker over AMQP, ${label} results: values, kwargs, TS errors as Python exceptions`, async () => {
    const tsQueue = backend === 'rpc://' ? Q.tsRpc : Q.tsRedis;
    const out = await runPythonProducer({ broker: url, backend, queue: tsQueue }, [
      { task: 'ts.add', args: [2, 2] },
      { task: 'ts.add', kwargs: { x: 'é', y: 'è' } },
      { task: 'ts.type_error', args: ['nope'] },
    ], 20);
    assert.equal(out[0]!.result, 4);
    assert.equal(out[0]!.state, 'SUCCESS');
    assert.equal(out[1]!.result, 'éè', 'Python kwargs map onto TS parameters');
    assert.equal(out[2]!.state, 'FAILURE');
    assert.equal(out[2]!.error?.type, 'TypeError');
    assert.equal(out[2]!.error?.is_builtin, true);
    assert.deepEqual(out[2]!.error?.args, ['nope']);
  });
}

test('a Python header holding a 64-bit int (py-amqp tag L) reaches the TS worker, which keeps running', async () => {
  const out = await runPythonProducer({ broker: url, backend: 'rpc://', queue: Q.tsRpc }, [
    { task: 'ts.echo_request', options: { headers: { 'x-big': 2 ** 40, 'x-neg': -5, 'x-list': [1, -(2 ** 35)] } } },
    { task: 'ts.add', args: [1, 1] },
  ], 20);
  assert.equal(out[0]!.state, 'SUCCESS', JSON.stringify(out[0]));
  const headers = (out[0]!.result as Record<string, unknown>).headers as Record<string, unknown>;
  assert.equal(headers['x-big'], 2 ** 40);
  assert.equal(headers['x-neg'], -5);
  assert.deepEqual(headers['x-list'], [1, -(2 ** 35)]);
  assert.equal(out[1]!.result, 2, 'the same worker connection still consumes');
});

test('the rpc:// reply queue is declared as Celery 5.2–5.6 does (durable false, auto_delete true, x-expires = result_expires ms), and replies are matched by correlation_id', async () => {
  const app = client('rpc://', Q.tsRpc);
  const r = await app.sendTask('ts.add', [20, 22]);
  assert.equal(await r.get({ timeout: 10_000 }), 42);
  const replyQueue = (await app.backend())!.replyTo!;
  const rows = (await rabbitmqctl(['list_queues', '-p', SEED.vhost, 'name', 'durable', 'auto_delete', 'arguments'])).split('\n');
  const row = rows.find((l) => l.startsWith(`${replyQueue}\t`));
  assert.ok(row, `reply queue ${replyQueue} in:\n${rows.join('\n')}`);
  assert.match(row!, /\tfalse\ttrue\t\[\{"x-expires",3600000\}\]$/);
  // Results for tasks nobody waits for yet are buffered and returned later.
  const ids = await Promise.all([1, 2, 3].map((i) => app.sendTask('ts.mul', [i, 10])));
  await new Promise((res) => setTimeout(res, 500));
  assert.deepEqual(await Promise.all(ids.map((x) => x.get({ timeout: 5000 }))), [10, 20, 30]);
});
