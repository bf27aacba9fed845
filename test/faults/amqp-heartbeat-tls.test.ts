// RabbitMQ faults on a private node started for this file (never the shared server): amqps:// against a
// real TLS listener, and heartbeats finding a connection whose broker stopped answering (the node's VM
// paused with SIGSTOP: its sockets stay open, so only heartbeats can tell).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import { rabbitmqctl, startRabbitNode, type RabbitNode } from '../helpers/rabbit-node.js';
import { eventually, uniqueName } from '../helpers/services.js';

let node: RabbitNode;

before(async () => {
  node = await startRabbitNode(`celeriac-hb-tls-${process.pid}`, { tls: true });
});

after(async () => {
  await node?.stop();
});

function capture() {
  const lines: string[] = [];
  return { lines, logger: createLogger('info', (l) => lines.push(l)) };
}

test('amqps:// to a TLS listener: tasks and rpc:// results go over TLS, verified against the CA; an unknown CA is refused at once', async () => {
  const tlsUrl = `amqps://guest:guest@localhost:${node.tlsPort}//`;
  const queue = uniqueName('tls');
  const app = new Celeriac('tls', { broker: tlsUrl, backend: 'rpc://', task_default_queue: queue, broker_use_ssl: { ssl_cert_reqs: 'required', ssl_ca_certs: node.tlsFiles!.ca }, logger: createLogger('critical') });
  app.task('tasks.add', (x: number, y: number) => x + y);
  const w = app.worker({ concurrency: 1 });
  await w.start();
  try {
    const r = await app.sendTask('tasks.add', [40, 2]);
    assert.equal(await r.get({ timeout: 15_000 }), 42);
    // Every connection of this app is a TLS one.
    const conns = (await rabbitmqctl(['list_connections', 'ssl', 'ssl_protocol', '--quiet', '--no-table-headers'], node.node)).trim().split('\n').filter(Boolean);
    assert.ok(conns.length >= 2, conns.join('\n'));
    for (const c of conns) assert.match(c, /^true\s+tlsv1\.[23]/);
  } finally {
    await w.close();
    await app.close();
  }
  // Without the CA the self-signed certificate is refused, once (retrying cannot fix it), naming broker_use_ssl.
  const { lines, logger } = capture();
  const strict = new Celeriac('tls', { broker: tlsUrl, task_default_queue: queue, broker_use_ssl: { ssl_cert_reqs: 'required' }, logger });
  const t0 = Date.now();
  await assert.rejects(strict.worker().start(), /TLS handshake with RabbitMQ at amqps:\/\/guest:\*\*@localhost:\d+\/\/ failed: .*self[- ]signed.*\(see broker_use_ssl\)/);
  assert.ok(Date.now() - t0 < 10_000);
  assert.ok(!lines.some((l) => l.includes('Trying again')), lines.join(''));
  await strict.close();
  // ssl_cert_reqs none: encrypted without verification, as Celery's CERT_NONE.
  const loose = new Celeriac('tls', { broker: tlsUrl, task_default_queue: queue, broker_use_ssl: { ssl_cert_reqs: 'none' }, logger: createLogger('critical') });
  await loose.sendTask('tasks.add', [1, 1]);
  const b = await loose.broker();
  assert.equal(await b.purge(queue), 1);
  await loose.close();
});

test('heartbeats find a broker that stopped answering within 2-3 intervals; the worker resumes when it answers again', async (t) => {
  const queue = uniqueName('hb');
  const { lines, logger } = capture();
  const heartbeat = 2;
  const app = new Celeriac('hb', { broker: node.url, task_default_queue: queue, broker_heartbeat: heartbeat, logger });
  const runs: number[] = [];
  app.task('tasks.mark', (n: number) => runs.push(n));
  const w = app.worker({ concurrency: 1, logger });
  await w.start();
  try {
    await app.sendTask('tasks.mark', [1]);
    await eventually(() => runs.includes(1), 'the first task to run');
    const before = lines.length;
    const pausedAt = Date.now();
    node.pause();
    let detectedAt = 0;
    try {
      await eventually(() => lines.slice(before).some((l) => /Lost the AMQP connection \(consumer\)/.test(l)), 'the consumer to notice the dead connection', 20_000, 20);
      detectedAt = Date.now();
    } finally {
      node.resume();
    }
    const detected = detectedAt - pausedAt;
    t.diagnostic(`broker_heartbeat = ${heartbeat} s: a paused broker was noticed after ${detected} ms`);
    assert.match(lines.slice(before).join(''), /Lost the AMQP connection \(consumer\).*[Hh]eartbeat/);
    // amqplib checks once per interval and gives up after two silent ones (2-3 intervals); a margin for a busy machine.
    assert.ok(detected >= heartbeat * 1000 && detected < heartbeat * 1000 * 5, `noticed after ${detected} ms`);
    // The node answers again: the worker reconnects by itself and runs new work.
    await eventually(() => lines.slice(before).some((l) => /Resumed consuming/.test(l)), 'the consumer to resume', 60_000);
    await app.sendTask('tasks.mark', [2]);
    await eventually(() => runs.includes(2), 'a task sent after the pause to run', 30_000);
  } finally {
    node.resume();
    await w.close();
    await app.close();
  }
});
