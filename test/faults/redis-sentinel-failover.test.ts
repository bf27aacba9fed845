// Publishing through a forced Sentinel failover with min-replicas-to-write 1 (the setting that keeps
// the old master from accepting writes the failover would discard). Measured: how long the new master
// itself refuses writes (NOREPLICAS until the old master rejoins as its replica), how long Celeriac's
// publishes stall, and how long after Redis accepts writes again the stalled ones complete. Private
// redis-server / redis-sentinel processes; nothing lost.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Celeriac } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import { startSentinelDeployment, type RedisServer, type SentinelDeployment, type SentinelServer } from '../helpers/redis-server.js';
import { sleep } from '../helpers/services.js';

const MASTER = 'failover1';
let deployment: SentinelDeployment;
let replica: RedisServer;
let sentinels: SentinelServer[] = [];

before(async () => {
  deployment = await startSentinelDeployment({ masterName: MASTER, serverArgs: ['--min-replicas-to-write', '1', '--min-replicas-max-lag', '10'] });
  ({ replica, sentinels } = deployment);
});

after(async () => {
  await deployment?.destroy();
});

test('publishing through a Sentinel failover: nothing lost, and stalled publishes complete within 3 s of Redis accepting writes again', async (t) => {
  const url = sentinels.map((s) => `sentinel://127.0.0.1:${s.port}`).join(';');
  const app = new Celeriac('failover', { broker_url: url, broker_transport_options: { master_name: MASTER }, task_default_queue: 'failover-q', logger: createLogger('critical') });
  await app.broker();
  // A direct connection to the replica that will be promoted: when does Redis itself accept a write again?
  const probe = new Redis({ port: replica.port, host: '127.0.0.1', maxRetriesPerRequest: 0, lazyConnect: true });
  await probe.connect();
  let failoverAt = 0;
  let acceptedAt = 0;
  const probing = (async () => {
    while (!acceptedAt) {
      try {
        await probe.set('failover-probe', '1');
        if (failoverAt && (await probe.role())[0] === 'master') acceptedAt = Date.now();
      } catch {
        /* READONLY before the promotion, NOREPLICAS after it until a replica is back */
      }
      await sleep(25);
    }
  })();
  const calls: { sentAt: number; doneAt?: number; error?: string }[] = [];
  const pending: Promise<void>[] = [];
  try {
    failoverAt = Date.now();
    assert.match(sentinels[1]!.cli('SENTINEL', 'FAILOVER', MASTER), /OK/);
    // A publish every 25 ms until 3 s after Redis accepts writes again (at most 60 s).
    while ((!acceptedAt || Date.now() - acceptedAt < 3000) && Date.now() - failoverAt < 60_000) {
      const call: (typeof calls)[number] = { sentAt: Date.now() };
      calls.push(call);
      pending.push(app.sendTask('tasks.noop', [calls.length]).then(() => { call.doneAt = Date.now(); }, (err: Error) => { call.error = err.message; }));
      await sleep(25);
    }
    await Promise.all(pending);
    await probing;
    assert.ok(acceptedAt > 0, 'the new master never accepted a write');
    assert.deepEqual(calls.filter((c) => c.error).map((c) => c.error), [], 'no publish may fail');
    // Nothing lost: every publish is in the queue on the new master.
    assert.equal(sentinels[0]!.masterPort(), replica.port);
    assert.equal(Number(replica.cli('LLEN', 'failover-q').trim()), calls.length);
    const stalled = calls.filter((c) => c.doneAt! - c.sentAt > 500);
    const lastStalledDone = Math.max(...stalled.map((c) => c.doneAt!));
    const slowest = Math.max(...calls.map((c) => c.doneAt! - c.sentAt));
    t.diagnostic(`Redis refused writes for ${acceptedAt - failoverAt} ms after SENTINEL FAILOVER; slowest publish ${slowest} ms; ` +
      `stalled publishes (${stalled.length}) all completed ${lastStalledDone - acceptedAt} ms after Redis accepted writes; ${calls.length} published, 0 lost`);
    assert.ok(lastStalledDone - acceptedAt < 3000, `stalled publishes completed ${lastStalledDone - acceptedAt} ms after Redis accepted writes`);
  } finally {
    probe.disconnect();
    await app.close();
  }
});
