// A SIGTERM under load (B.5 T4): the CLI worker stops fetching, finishes running tasks, puts prefetched
// messages back, exits 0; nothing is lost and nothing that finished runs again. Redis and RabbitMQ, async and
// process pools.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readLedger } from '../helpers/ledger.js';
import { ManagedProcess, REPO_ROOT } from '../interop/harness.js';
import { AMQP_URL, eventually, redisDb, requireRabbit, requireRedis, uniqueName } from '../helpers/services.js';
import { makeApp } from '../integration/worker-app.js';
import type { Celeriac } from '../../src/index.js';

const MODULE = fileURLToPath(new URL('../integration/worker-app.ts', import.meta.url));
const BACKEND = redisDb(11);
const apps: Celeriac[] = [];
after(async () => {
  for (const a of apps) await a.close().catch(() => undefined);
});


const CASES = [
  { name: 'redis', url: redisDb(12), check: requireRedis, pool: 'async', group: false },
  { name: 'amqp', url: AMQP_URL, check: requireRabbit, pool: 'async', group: false },
  // The process pool, with SIGTERM sent to the whole process group (Ctrl+C, systemd): children must not die of it.
  { name: 'redis', url: redisDb(12), check: requireRedis, pool: 'process', group: true },
  { name: 'amqp', url: AMQP_URL, check: requireRabbit, pool: 'process', group: true },
];

for (const b of CASES) {
  test(`[${b.name}] -P ${b.pool}: SIGTERM${b.group ? ' to the process group' : ''} under load: warm shutdown loses nothing and re-runs nothing`, async () => {
    await b.check();
    const queue = uniqueName('wt-term');
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'celeriac-ledger-')), 'ledger.txt');
    const app = makeApp(b.url, BACKEND, { task_default_queue: queue });
    apps.push(app);
    const N = 60;
    const ids = Array.from({ length: N }, (_, i) => `t${i}`);
    for (const id of ids) await app.sendTask('w.ledger', [file, id, 200], {}, { queue });
    const worker = new ManagedProcess('celeriac worker', process.execPath, [
      '--import', 'tsx', path.join(REPO_ROOT, 'src/cli/main.ts'), '-A', MODULE, '-b', b.url, '--result-backend', BACKEND,
      'worker', '-c', '4', '-Q', queue, '-n', `${queue}@test`, '-l', 'info', '-P', b.pool,
    ], { cwd: REPO_ROOT, env: process.env });
    const exited = new Promise<number | null>((r) => worker.child.once('exit', (code) => r(code)));
    await eventually(() => readLedger(file).ends.size >= 12, '12 finished tasks', 30_000);
    process.kill(b.group ? -worker.pid : worker.pid, 'SIGTERM');
    const code = await exited;
    assert.equal(code, 0, `exit code after a warm shutdown\n${worker.tail()}`);
    const atStop = readLedger(file);
    for (const [id, n] of atStop.starts) assert.equal(atStop.ends.get(id), n, `task ${id} started but did not finish before exit`);
    assert.ok(atStop.ends.size < N, 'the shutdown came before the queue was drained');
    assert.match(worker.logs, /Restoring \d+ unacknowledged message/);
    // A second worker gets everything that was put back.
    const w2 = app.worker({ queues: [queue], concurrency: 4, loglevel: 'critical' });
    await w2.start();
    try {
      await eventually(() => readLedger(file).ends.size === N, `all ${N} tasks to finish`, 30_000);
    } finally {
      await w2.close();
    }
    const done = readLedger(file);
    for (const id of ids) {
      assert.equal(done.ends.get(id), 1, `task ${id} finished ${done.ends.get(id) ?? 0} times`);
      assert.equal(done.starts.get(id), 1, `task ${id} started ${done.starts.get(id) ?? 0} times`);
    }
  });
}
