// A chord of 1,000 header tasks split across one TS and one Python worker (Redis): the body runs exactly
// once, with the 1,000 results in header order, whichever language built the chord and runs the body.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import type { Celeriac } from '../../src/index.js';
import { chord } from '../../src/canvas/index.js';
import { eventually, redisDb, requireRedis, sleep, uniqueName } from '../helpers/services.js';
import type { ManagedProcess } from './harness.js';
import { runCanvasProducer, s, startCanvasWorker, startTsSide, type CanvasEnv, type TsSide } from './canvas-harness.js';

const N = 1000;
const qTs = uniqueName('chord1000-ts');
const qPy = uniqueName('chord1000-py');
const expected = Array.from({ length: N }, (_, i) => 2 * i);
let e: CanvasEnv;
let app: Celeriac;
let ts: TsSide | undefined;
let py: ManagedProcess | undefined;
let redis: Redis;
/** Who ran the header tasks, from the TS worker's side. */
let tsRan = 0;

before(async () => {
  await requireRedis();
  const url = redisDb(6);
  e = { broker: url, backend: url, queue: qTs, routes: { 'ts.*': { queue: qTs }, 'py.*': { queue: qPy } } };
  redis = new Redis(url);
  ts = await startTsSide(e, `ts-chord1000-${process.pid}@interop`);
  app = ts.app;
  ts.worker.on('taskPostrun', (ev: { name: string }) => { if (ev.name === 'ts.add') tsRan++; });
  py = await startCanvasWorker(e, [qPy], 8);
});

after(async () => {
  await py?.stop();
  await ts?.close();
  redis?.disconnect();
});

/** The TS worker's taskPostrun for its last header task may come after the body's result: wait for it, then check none more came. */
async function ranItsHalf(before: number): Promise<void> {
  await eventually(() => tsRan - before >= N / 2, 'the TS worker running its half of the header', 10_000).catch(() => undefined);
  await sleep(200);
  assert.equal(tsRan - before, N / 2, 'the TS worker ran its half of the header');
}

async function checkOnce(key: string, gid: string, lang: string): Promise<void> {
  await sleep(1500); // a second call would have come by now
  const calls = (await redis.lrange(key, 0, -1)).map((x) => JSON.parse(x) as { lang: string; n: number });
  assert.deepEqual(calls, [{ ...calls[0]!, lang, n: N }], 'the body ran exactly once, with every result');
  const left = await redis.exists(`celery-taskset-meta-${gid}.j`, `celery-taskset-meta-${gid}.s`, `celery-taskset-meta-${gid}.t`);
  assert.equal(left, 0, 'the join keys are removed once the body is applied');
}

test('a TS-built chord of 1,000 header tasks, half on the Python worker and half on the TS worker, calls its Python body once with the results in order', async () => {
  const key = uniqueName('chord1000:py-body');
  const header = expected.map((_, i) => app.signature(i % 2 ? 'ts.add' : 'py.add', [i, i]));
  const before = tsRan;
  const r = await chord(header, app.signature('py.collect', [key])).applyAsync();
  assert.deepEqual(await r.get({ timeout: 120_000 }), expected);
  await ranItsHalf(before);
  await checkOnce(key, r.parent!.id, 'py');
});

test('a Python-built chord of 1,000 header tasks split the same way calls its TS body once with the results in order', async () => {
  const key = uniqueName('chord1000:ts-body');
  const before = tsRan;
  const [out] = await runCanvasProducer(e, [{ canvas: { chord: expected.map((_, i) => s(i % 2 ? 'ts.add' : 'py.add', [i, i])), body: s('ts.collect', [key]) } }], 120);
  assert.equal(out!.error, null, JSON.stringify(out!.error));
  assert.deepEqual(out!.result, expected);
  await ranItsHalf(before);
  assert.deepEqual(await app.AsyncResult(out!.id).get({ timeout: 5000 }), expected, 'TS reads the same body result');
  await checkOnce(key, out!.parents[0]!, 'ts');
});
