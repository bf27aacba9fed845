// Canvas interop with Celery 5.6.3 (Redis), where its canvas encoding differs from 5.2's: group members
// carry their group_index, a chord body's options carry the group id, and stamped canvases (Celery 5.3
// stamping) carry stamped_headers and their values in every signature's options. Stamps travel through
// TS workers untouched, and 5.6's chains, groups and chords run on TS workers and the reverse.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, type Celeriac } from '../../src/index.js';
import { chain, chord, group } from '../../src/canvas/index.js';
import { redisDb, requireRedis, uniqueName } from '../helpers/services.js';
import type { ManagedProcess } from './harness.js';
import { createInteropApp } from './ts/tasks.js';
import { registerCanvasTasks } from './ts/canvas-tasks.js';
import {
  assertSameInTs, PYTHON56, readInTs, requireCelery56, runCanvasProducer, s, startCanvasWorker, type CanvasEnv,
} from './canvas-harness.js';

const qTs = uniqueName('canvas56-ts');
const qPy = uniqueName('canvas56-py');
let e: CanvasEnv;
let app: Celeriac;
let worker: ReturnType<Celeriac['worker']>;
let py: ManagedProcess | undefined;
let tasks: { close(): void };

before(async () => {
  await requireRedis();
  requireCelery56();
  const url = redisDb(6);
  e = { broker: url, backend: url, queue: qTs, routes: { 'ts.*': { queue: qTs }, 'py.*': { queue: qPy } }, python: PYTHON56 };
  app = createInteropApp({ broker: url, backend: url });
  app.logger = createLogger('critical');
  app.configure({ task_routes: e.routes, task_default_queue: qTs });
  tasks = registerCanvasTasks(app, url);
  worker = app.worker({ queues: [qTs], concurrency: 8, hostname: `ts-canvas56-${process.pid}@interop`, loglevel: 'critical' });
  await worker.start();
  py = await startCanvasWorker(e, [qPy]);
});

after(async () => {
  await py?.stop();
  await worker?.close();
  await app?.close();
  tasks?.close();
});

test('Celery 5.6: a stamped chain keeps its stamps through a TS step, as through a Python one; 5.6-built chain, group and chord run on the TS worker, each with a failing member', async () => {
  const stamp = { mystamp: 'x' };
  const out = await runCanvasProducer(e, [
    { canvas: { chain: [s('py.add', [1, 2]), s('ts.add', [10]), s('py.stamps')] }, stamp },
    { canvas: { chain: [s('py.add', [1, 2]), s('py.add', [10]), s('py.stamps')] }, stamp },
    { canvas: { chain: [s('ts.add', [1, 2]), s('ts.fail_any'), s('ts.add', [1])] } },
    { canvas: { group: [s('ts.add', [1, 1]), s('ts.add', [2, 2])] } },
    { canvas: { group: [s('ts.add', [1, 1]), s('ts.fail_any', [2])] } },
    { canvas: { chord: [s('ts.add', [1, 1]), s('py.add', [2, 2]), s('ts.add', [3, 3])], body: s('ts.tsum') } },
    { canvas: { chord: [s('ts.add', [1, 1]), s('ts.fail_any', [2])], body: s('ts.tsum') } },
  ]);
  const [viaTs, viaPy, failing, grp, grpFail, crd, crdFail] = out;
  assert.deepEqual(viaPy!.result, { value: 13, stamped_headers: ['mystamp'], stamps: { mystamp: 'x' } }, JSON.stringify(viaPy!.error));
  assert.deepEqual(viaTs!.result, viaPy!.result, 'the step sent by the TS worker carries the same stamps');
  assert.equal(failing!.error?.type, 'ValueError');
  assert.deepEqual(grp!.result, [2, 4]);
  assert.equal(grpFail!.error?.type, 'ValueError');
  assert.equal(crd!.result, 12);
  assert.equal(crdFail!.by_id?.error?.type, 'ChordError');
  for (const [i, o] of out.entries()) await assertSameInTs(app, o, `5.6 call ${i}`);
  // 5.6's chord body carries the group id; the TS worker stored it with the body's result.
  const meta = await app.AsyncResult(crd!.id).meta();
  assert.equal(meta.group_id, crd!.parents[0], 'the body result records its chord\'s group');
});

test('Celery 5.6: TS-built stamped chains, groups and chords run on the 5.6 worker, each with a failing member', async () => {
  const sig = (name: string, ...args: unknown[]) => app.signature(name, args);
  const stamped = await chain(sig('py.add', 1, 2), sig('py.add', 10), sig('py.stamps')).stamp({ mystamp: 'y' }).applyAsync();
  assert.deepEqual(await stamped.get({ timeout: 30_000 }), { value: 13, stamped_headers: ['mystamp'], stamps: { mystamp: 'y' } });
  const failing = await chain(sig('py.add', 1, 2), sig('py.fail_any'), sig('py.add', 1)).applyAsync();
  assert.equal((await readInTs(failing)).error?.name, 'ValueError');
  const g = await group(sig('py.add', 1, 1), sig('py.fail_any', 2)).applyAsync();
  const gOut = await readInTs(g);
  assert.equal(gOut.error?.name, 'ValueError');
  assert.deepEqual(gOut.state, ['SUCCESS', 'FAILURE']);
  const c = await chord([sig('py.add', 1, 1), sig('ts.add', 2, 2)], sig('py.tsum')).applyAsync();
  assert.equal(await c.get({ timeout: 30_000 }), 6);
  const cf = await chord([sig('py.add', 1, 1), sig('py.fail_any', 2)], sig('py.tsum')).applyAsync();
  const cfOut = await readInTs(cf);
  assert.equal(cfOut.error?.name, 'ChordError');
  assert.match(cfOut.error!.message, /^Dependency [0-9a-f-]{36} raised ValueError\('bad thing'\)$/);
});
