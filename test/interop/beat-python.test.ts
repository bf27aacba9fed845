// A Celeriac beat schedule whose tasks a Python Celery worker (Debian's 5.2) runs: beat's due runs are
// ordinary Celery task messages.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Celeriac } from '../../src/app/celeriac.js';
import { redisDb, requireRedis, uniqueName } from '../helpers/services.js';
import { requirePythonCelery, startPythonWorker } from './harness.js';
import { cli } from '../integration/beat-harness.js';

// Beat keeps its store in this database without a key prefix (pyapp.py sets none): only beat's keys are removed.
const BROKER = redisDb(14);

async function dropBeatKeys(): Promise<void> {
  const r = new Redis(BROKER);
  const keys = await r.keys('_celeriac.beat.*');
  if (keys.length) await r.del(...keys);
  r.disconnect();
}

before(async () => {
  await requireRedis();
  await requirePythonCelery();
  await dropBeatKeys();
});

test('a beat schedule of py.add(16, 16) every second: a Python worker runs each run, and TS reads the results', async () => {
  const queue = uniqueName('beat-py');
  const worker = await startPythonWorker({ broker: BROKER, backend: BROKER, queues: [queue], pool: 'solo', concurrency: 1 });
  const beat = cli('beat', { broker: BROKER, backend: BROKER, queue, task: 'py.add', args: [16, 16], every: 1 }, ['beat', '-l', 'info']);
  const app = new Celeriac('beat-py', { broker: BROKER, backend: BROKER });
  try {
    await worker.waitForLines(/Task py\.add\[[0-9a-f-]+\] succeeded in [\d.e-]+s: 32/, 3, 60_000);
    const ids = [...worker.logs.matchAll(/Task py\.add\[([0-9a-f-]+)\] succeeded/g)].map((m) => m[1]!);
    assert.equal(new Set(ids).size, ids.length, 'each run is a task of its own');
    for (const id of ids.slice(0, 3)) assert.equal(await app.AsyncResult(id).get({ timeout: 5_000 }), 32);
    const [entry] = await app.beat.list();
    assert.equal(entry!.task, 'py.add');
    assert.ok(entry!.totalRunCount >= 3);
    assert.doesNotMatch(worker.logs, /Received unregistered task|KeyError|Traceback/);
  } finally {
    assert.equal(await beat.stop(), 0, beat.output);
    await worker.stop();
    await app.close();
    await dropBeatKeys();
  }
});
