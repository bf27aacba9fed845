// The seed's Sentinel snippets against a private, password-protected deployment: a master, a replica and
// three sentinels. broker_url = 'sentinel://…;sentinel://…;sentinel://…' with broker_transport_options
// { master_name, sentinel_kwargs: { password } }, the result backend through result_backend_transport_options,
// and a forced failover while tasks flow: worker and producer follow the new master by themselves.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import { startSentinelDeployment, type RedisServer, type SentinelDeployment, type SentinelServer } from '../helpers/redis-server.js';

const MASTER = 'cluster1';
const MASTER_PW = 'master-pw';
const SENTINEL_PW = 'sentinel-pw';

let deployment: SentinelDeployment;
let master: RedisServer;
let replica: RedisServer;
let sentinels: SentinelServer[] = [];

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until(what: string, fn: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

before(async () => {
  // min-replicas-to-write: a master that lost its replica (the old one, once the replica is promoted)
  // refuses writes instead of accepting ones the failover would throw away; clients then follow the sentinels.
  deployment = await startSentinelDeployment({ masterName: MASTER, password: MASTER_PW, sentinelPassword: SENTINEL_PW, serverArgs: ['--min-replicas-to-write', '1', '--min-replicas-max-lag', '10'] });
  ({ master, replica, sentinels } = deployment);
});

after(async () => {
  await deployment?.destroy();
});

function sentinelUrl(db: number): string {
  // The seed's form; the URL's password authenticates to the master, sentinel_kwargs.password to the sentinels.
  return sentinels.map((s, i) => `sentinel://${i === 0 ? `:${MASTER_PW}@` : ''}127.0.0.1:${s.port}${i === 0 ? `/${db}` : ''}`).join(';');
}

function settings(): Record<string, unknown> {
  return {
    broker_url: sentinelUrl(0),
    broker_transport_options: { master_name: MASTER, sentinel_kwargs: { password: SENTINEL_PW }, visibility_timeout: 20 },
    result_backend: sentinelUrl(1),
    result_backend_transport_options: { master_name: MASTER, sentinel_kwargs: { password: SENTINEL_PW } },
    result_expires: 600,
  };
}

test('sentinel:// without master_name fails with the setting to add; a wrong sentinel password is refused', async () => {
  const app = new Celeriac('s', { broker_url: sentinelUrl(0) });
  await assert.rejects(app.broker(), /master_name/);
  await app.close();
  const wrong = new Celeriac('s', { broker_url: sentinelUrl(0), broker_transport_options: { master_name: MASTER, sentinel_kwargs: { password: 'nope' } }, broker_connection_timeout: 2 });
  await assert.rejects(wrong.broker(), /Cannot connect to sentinel:/);
  await wrong.close();
});

test('tasks keep flowing through a forced Sentinel failover: none lost, worker and producer follow the new master', async (t) => {
  const lines: string[] = [];
  const logger = createLogger(process.env.CELERIAC_TEST_DEBUG ? 'debug' : 'warning', (l) => { lines.push(l); if (process.env.CELERIAC_TEST_DEBUG) process.stderr.write(l); });
  const workerApp = new Celeriac('sentinel', { ...settings(), logger });
  const runs = new Map<string, number>();
  workerApp.task('tasks.add', (x: number, y: number) => x + y);
  const worker = workerApp.worker({ concurrency: 4 });
  worker.on('taskPrerun', (e: { id: string }) => runs.set(e.id, (runs.get(e.id) ?? 0) + 1));
  await worker.start();
  const producer = new Celeriac('sentinel', { ...settings(), logger });
  try {

  const oldMasterPort = master.port;
  assert.equal(sentinels[0]!.masterPort(), oldMasterPort);
  const N = 150;
  const sent: { id: string; i: number; at: number }[] = [];
  const failures: string[] = [];
  let failoverAt = 0;
  let switchedAt = 0;
  let slowest = 0;
  const poll = setInterval(() => {
    if (failoverAt && !switchedAt && sentinels[0]!.masterPort() !== oldMasterPort) switchedAt = Date.now();
  }, 50);
  for (let i = 0; i < N; i++) {
    if (i === 50) {
      failoverAt = Date.now();
      assert.match(sentinels[1]!.cli('SENTINEL', 'FAILOVER', MASTER), /OK/);
    }
    try {
      const t0 = Date.now();
      const r = await producer.sendTask('tasks.add', [i, 1]);
      slowest = Math.max(slowest, Date.now() - t0);
      sent.push({ id: r.id, i, at: Date.now() });
    } catch (err) {
      failures.push(`#${i}: ${(err as Error).message}`);
    }
    await sleep(25);
  }
  // A failover that does not complete shows in the servers' own logs.
  const logs = () => [master, replica, sentinels[1]!].map((s) => `--- port ${s.port}:\n${s.logs.split('\n').slice(-25).join('\n')}`).join('\n');
  await until('the sentinels to report the new master', () => sentinels.every((s) => s.masterPort() === replica.port), 15_000)
    .catch((err: Error) => { throw new Error(`${err.message}\n${logs()}`); });
  clearInterval(poll);
  switchedAt ||= Date.now();
  assert.deepEqual(failures, [], `publishing must not fail during the failover (a refused publish is resent for a minute, then fails)\n${logs()}`);

  // Every task comes back SUCCESS with its value (results are read through the sentinels too).
  const results = await Promise.all(sent.map(async (s) => {
    const v = await producer.AsyncResult(s.id).get({ timeout: 40_000 });
    return { ...s, v, done: Date.now() };
  }));
  for (const r of results) assert.equal(r.v, r.i + 1);
  const lost = sent.filter((s) => !runs.has(s.id));
  assert.deepEqual(lost, [], 'no task lost');
  const duplicates = [...runs.values()].filter((n) => n > 1).length;

  // Tasks published after the switch were written to the new master (the old one is a replica now).
  const late = sent.filter((s) => s.at > switchedAt + 500);
  assert.ok(late.length > 20, `only ${late.length} tasks were sent after the switch`);
  assert.match(replica.cli('INFO', 'replication'), /role:master/);
  assert.equal(replica.cli('-n', '1', 'EXISTS', `celery-task-meta-${late[late.length - 1]!.id}`).trim(), '1');
  const firstAfter = results.filter((r) => r.at >= switchedAt).sort((a, b) => a.done - b.done)[0]!;
  t.diagnostic(`failover: sentinels switched master ${switchedAt - failoverAt} ms after SENTINEL FAILOVER; first task published after the switch finished ${firstAfter.done - switchedAt} ms after it; slowest publish ${slowest} ms; ${N} tasks, ${lost.length} lost, ${duplicates} run twice`);
  assert.ok(duplicates <= 2, `${duplicates} tasks ran twice`);
  } finally {
    await worker.close();
    await workerApp.close();
    await producer.close();
  }
});
