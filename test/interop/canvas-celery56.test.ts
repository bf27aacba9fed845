// Canvas interop with Celery 5.6.3 (Redis), where its canvas encoding differs from 5.2's: group members
// carry their group_index, a chord body's options carry the group id, and stamped canvases (Celery 5.3
// stamping) carry stamped_headers and their values in every signature's options. Stamps travel through
// TS workers untouched, and 5.6's chains, groups and chords run on TS workers and the reverse.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Celeriac } from '../../src/index.js';
import { Redis } from 'ioredis';
import { chain, chord, chunks, group, xstarmap, type AnySignature } from '../../src/canvas/index.js';
import { readQueue } from './redis-tools.js';
import { redisDb, requireRedis, uniqueName } from '../helpers/services.js';
import type { ManagedProcess } from './harness.js';
import {
  assertSameInTs, PYTHON56, readInTs, requireCelery56, runCanvasProducer, s, startCanvasWorker, startTsSide, type Canvas, type CanvasEnv, type TsSide,
} from './canvas-harness.js';

const qTs = uniqueName('canvas56-ts');
const qPy = uniqueName('canvas56-py');
let e: CanvasEnv;
let app: Celeriac;
let ts: TsSide | undefined;
let py: ManagedProcess | undefined;

before(async () => {
  await requireRedis();
  requireCelery56();
  const url = redisDb(6);
  e = { broker: url, backend: url, queue: qTs, routes: { 'ts.*': { queue: qTs }, 'py.*': { queue: qPy } }, python: PYTHON56 };
  ts = await startTsSide(e, `ts-canvas56-${process.pid}@interop`);
  app = ts.app;
  py = await startCanvasWorker(e, [qPy]);
});

after(async () => {
  await py?.stop();
  await ts?.close();
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

test('Celery 5.6: a TS-built canvas is the message Python builds for the same canvas, byte for byte in its body (ids, reply_to and origin aside)', async () => {
  const redis = new Redis(e.broker);
  const sig = (name: string, ...args: unknown[]) => app.signature(name, args);
  const cases: [string, Canvas, () => AnySignature, Record<string, unknown>?][] = [
    ['chain', { chain: [s('tasks.add', [1, 2]), s('tasks.add', [10]), s('tasks.mul', [3])] }, () => chain(sig('tasks.add', 1, 2), sig('tasks.add', 10), sig('tasks.mul', 3))],
    ['group', { group: [s('tasks.add', [1, 2]), s('tasks.add', [3, 4])] }, () => group(sig('tasks.add', 1, 2), sig('tasks.add', 3, 4))],
    ['chord', { chord: [s('tasks.add', [1, 1]), s('tasks.add', [2, 2])], body: s('tasks.tsum') }, () => chord([sig('tasks.add', 1, 1), sig('tasks.add', 2, 2)], sig('tasks.tsum'))],
    ['chain with a group then a task (a chord inside)', { chain: [s('tasks.add', [1, 2]), { group: [s('tasks.add', [1]), s('tasks.add', [2])] }, s('tasks.tsum')] },
      () => chain(sig('tasks.add', 1, 2), group(sig('tasks.add', 1), sig('tasks.add', 2)), sig('tasks.tsum'))],
    ['chain ending in a group', { chain: [s('tasks.add', [1, 2]), { group: [s('tasks.add', [1]), s('tasks.add', [2])] }] }, () => chain(sig('tasks.add', 1, 2), group(sig('tasks.add', 1), sig('tasks.add', 2)))],
    ['link and link_error', s('tasks.add', [1, 2], { link: [s('tasks.mul', [2])], link_error: [s('tasks.err')] }), () => {
      const a = sig('tasks.add', 1, 2);
      a.link(sig('tasks.mul', 2));
      a.linkError(sig('tasks.err'));
      return a;
    }],
    ['starmap', { starmap: s('tasks.add'), it: [[1, 2], [3, 4]] }, () => xstarmap(sig('tasks.add'), [[1, 2], [3, 4]])],
    ['chunks', { chunks: s('tasks.add'), it: [[0, 0], [1, 1], [2, 2]], n: 2 }, () => chunks(sig('tasks.add'), [[0, 0], [1, 1], [2, 2]], 2)],
    ['stamped chain', { chain: [s('tasks.add', [1, 2]), s('tasks.add', [10])] }, () => chain(sig('tasks.add', 1, 2), sig('tasks.add', 10)).stamp({ mystamp: 'x' }), { mystamp: 'x' }],
  ];
  try {
    for (const [what, pyCanvas, tsCanvas, stamp] of cases) {
      const [qPyCap, qTsCap] = [uniqueName('wire56-py'), uniqueName('wire56-ts')];
      await runCanvasProducer(e, [{ canvas: pyCanvas, options: { queue: qPyCap }, wait: false, stamp }]);
      await tsCanvas().applyAsync([], {}, { queue: qTsCap });
      const [pyItems, tsItems] = [await readQueue(redis, qPyCap), await readQueue(redis, qTsCap)];
      assert.ok(pyItems.length > 0, `${what}: Python published`);
      assert.equal(tsItems.length, pyItems.length, `${what}: as many messages`);
      const norm = normalizer([qPyCap, qTsCap]);
      pyItems.forEach((p, i) => {
        const t = tsItems[i]!;
        assert.equal(norm.ts(t.bodyText), norm.py(p.bodyText), `${what}: message ${i} body`);
        const headers = (h: Record<string, unknown>, n: (x: string) => string) => {
          const out = JSON.parse(n(JSON.stringify(h))) as Record<string, unknown>;
          // Python's repr shows the tuples a map's items are; JS has only lists (informational, for logs).
          if (/^(starmap|chunks)$/.test(what)) delete out.kwargsrepr;
          return out;
        };
        assert.deepEqual(headers(t.envelope.headers, norm.ts), headers(p.envelope.headers, norm.py), `${what}: message ${i} headers`);
      });
    }
  } finally {
    redis.disconnect();
  }
});

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** Ids numbered by first appearance (per side), queue names and origins replaced: what is left must match. */
function normalizer(queues: string[]) {
  const side = () => {
    const ids = new Map<string, string>();
    return (text: string) => {
      let out = text.replace(UUID, (u) => ids.get(u) ?? (ids.set(u, `<id${ids.size}>`), ids.get(u)!));
      for (const q of queues) out = out.split(q).join('<queue>');
      return out.replace(/gen\d+@[^"]+/g, '<origin>');
    };
  };
  return { py: side(), ts: side() };
}
