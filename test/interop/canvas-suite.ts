// The canvas interop suite, run on Redis (canvas-redis.test.ts) and on RabbitMQ with results in Redis
// (canvas-amqp.test.ts): a TS worker and a Python Celery worker, each on its own queue (ts.* and py.*
// routed to them), canvases built in either language, each with a failing member, and every result
// read back in the other language.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import type { Celeriac } from '../../src/index.js';
import { chain, chord, group, xmap, xstarmap, chunks, type AnySignature } from '../../src/canvas/index.js';
import { resultFromTuple, type ResultNode, type ResultTuple } from '../../src/app/result.js';
import { eventually, uniqueName } from '../helpers/services.js';
import { runPythonProducer, type ManagedProcess } from './harness.js';
import {
  assertSameInPython, assertSameInTs, readInTs, runCanvasProducer, s, startCanvasWorker, startTsSide, type CanvasEnv, type PyCanvasCall, type PyOutcome, type TsSide,
} from './canvas-harness.js';

export interface Transport {
  label: string;
  broker: () => string;
  /** A Redis URL: results, and the lists the record tasks push to. */
  backend: () => string;
  check: () => Promise<void>;
}

const DEPENDENCY = /^Dependency [0-9a-f-]{36} raised ValueError\('bad thing'\)$/;

export function canvasInteropSuite(t: Transport): void {
  const qTs = uniqueName(`canvas-${t.label}-ts`);
  const qPy = uniqueName(`canvas-${t.label}-py`);
  const routes = { 'ts.*': { queue: qTs }, 'py.*': { queue: qPy } };
  let e: CanvasEnv;
  let app: Celeriac;
  let ts: TsSide | undefined;
  let py: ManagedProcess | undefined;
  let redis: Redis;
  const key = (name: string) => uniqueName(`canvas:${name}`);
  const tsName = `ts-canvas-${t.label}-${process.pid}@interop`;
  const pyName = `py-canvas-${t.label}-${process.pid}@interop`;
  const records = async (k: string) => (await redis.lrange(k, 0, -1)).map((x) => JSON.parse(x) as Record<string, unknown>);

  before(async () => {
    await t.check();
    e = { broker: t.broker(), backend: t.backend(), queue: qTs, routes };
    redis = new Redis(t.backend());
    ts = await startTsSide(e, tsName);
    app = ts.app;
    py = await startCanvasWorker(e, [qPy], 4, pyName);
  });

  after(async () => {
    await py?.stop();
    await ts?.close();
    redis?.disconnect();
  });

  test(`${t.label}: Python-built chain, group, chord, map, starmap, chunks and link run on the TS worker, each also with a failing member; TS reads the same results`, async () => {
    const [kPy, kInline, kTs] = [key('py-errback'), key('inline-errback'), key('ts-errback')];
    const calls: (PyCanvasCall & { expect: unknown })[] = [
      { canvas: { chain: [s('ts.add', [1, 2]), s('ts.add', [10]), s('ts.mul', [3])] }, expect: 39 },
      { canvas: { chain: [s('ts.add', [1, 2]), s('ts.fail_any'), s('ts.add', [1])] }, expect: 'ValueError' },
      { canvas: { group: [s('ts.add', [1, 1]), s('ts.add', [2, 2]), s('ts.mul', [3, 3])] }, expect: [2, 4, 9] },
      { canvas: { group: [s('ts.add', [1, 1]), s('ts.fail_any', [1])] }, expect: 'ValueError' },
      { canvas: { chord: [0, 1, 2, 3, 4].map((i) => s('ts.add', [i, i])), body: s('ts.tsum') }, expect: 20 },
      // Celery's get() on the applied chord looks at its header first, so it raises the member's error;
      // the body's own result (by_id, and in TS) is the ChordError.
      { canvas: { chord: [s('ts.add', [1, 1]), s('ts.fail_any', [2])], body: s('ts.tsum') }, expect: 'ValueError' },
      { canvas: { map: s('ts.double'), it: [1, 2, 3] }, expect: [2, 4, 6] },
      { canvas: { map: s('ts.fail_any'), it: [1] }, expect: 'ValueError' },
      { canvas: { starmap: s('ts.add'), it: [[1, 2], [3, 4]] }, expect: [3, 7] },
      { canvas: { chunks: s('ts.add'), it: [[0, 0], [1, 1], [2, 2]], n: 2 }, options: { queue: qTs }, expect: [[0, 2], [4]] },
      { canvas: { chunks: s('ts.fail_any'), it: [[1], [2]], n: 1 }, options: { queue: qTs }, expect: 'ValueError' },
      { canvas: s('ts.add', [2, 3], { link: [s('ts.mul', [10])] }), expect: 5 },
      { canvas: s('ts.fail_any', [], { link_error: [s('py.record', [kPy])] }), expect: 'ValueError' },
      { canvas: s('ts.fail_any', [], { link_error: [s('ts.on_error', [kInline])] }), expect: 'ValueError' },
      { canvas: s('ts.fail_any', [], { link_error: [s('ts.record', [kTs])] }), expect: 'ValueError' },
    ];
    const out = await runCanvasProducer(e, calls.map(({ expect: _x, ...c }) => c));
    for (const [i, c] of calls.entries()) {
      const o = out[i]!;
      const what = `call ${i} ${JSON.stringify(c.canvas).slice(0, 80)}`;
      if (typeof c.expect === 'string') assert.equal(o.error?.type, c.expect, `${what}: Python raised ${JSON.stringify(o.error)}`);
      else assert.deepEqual(o.result, c.expect, `${what}: ${JSON.stringify(o.error)}`);
      await assertSameInTs(app, o, what);
    }
    assert.equal(out[0]!.parents.length, 2, 'the chain result has the two earlier steps as parents');
    assert.equal(await app.AsyncResult(out[0]!.parents[0]!).get({ timeout: 30_000 }), 13, 'the middle step is stored too');
    assert.deepEqual(out[1]!.state, 'FAILURE', 'a failed step fails the chain\'s last result');
    assert.equal(out[5]!.by_id?.error?.type, 'ChordError');
    assert.match(out[5]!.by_id!.error!.args[0] as string, DEPENDENCY);
    assert.deepEqual(out[3]!.state, ['SUCCESS', 'FAILURE']);
    // link: the callback is the task's child, in both languages.
    assert.equal(out[11]!.children?.length, 1, 'Python sees the callback among the children');
    const kids = await app.AsyncResult(out[11]!.id).children();
    assert.deepEqual(kids?.map((k) => k.id), out[11]!.children);
    assert.equal(await kids![0]!.get({ timeout: 30_000 }), 50);
    // errbacks: sent to Python with the failed id; called in-process on the TS worker; sent to a bound TS task.
    const [m, n, o] = [out[12]!, out[13]!, out[14]!];
    await eventually(async () => (await records(kPy)).length === 1, 'the Python errback');
    assert.deepEqual((await records(kPy))[0]!.value, m.id);
    assert.equal((await records(kPy))[0]!.parent_id, m.id, 'the errback is a child of the failed task');
    await eventually(async () => (await records(kInline)).length === 1, 'the in-process TS errback');
    assert.deepEqual((await records(kInline))[0], { lang: 'ts', failed: n.id, exc: 'ValueError', message: 'bad thing', traceback: true });
    await eventually(async () => (await records(kTs)).length === 1, 'the bound TS errback');
    assert.equal((await records(kTs))[0]!.value, o.id);
  });

  test(`${t.label}: TS-built chain, group, chord, map, starmap, chunks and link run on the Python worker, each also with a failing member; Python reads the same results`, async () => {
    const sig = (name: string, ...args: unknown[]) => app.signature(name, args);
    const kErr = key('ts-built-errback');
    const linked = sig('py.add', 2, 3);
    linked.link(sig('py.mul', 10));
    const failing = sig('py.fail_any');
    failing.linkError(app.signature('ts.record', [kErr]));
    const canvases: [string, AnySignature, unknown][] = [
      ['chain', chain(sig('py.add', 1, 2), sig('py.add', 10), sig('py.mul', 3)), 39],
      ['chain with a failing step', chain(sig('py.add', 1, 2), sig('py.fail_any'), sig('py.add', 1)), 'ValueError'],
      ['group', group(sig('py.add', 1, 1), sig('py.add', 2, 2), sig('py.mul', 3, 3)), [2, 4, 9]],
      ['group with a failing member', group(sig('py.add', 1, 1), sig('py.fail_any', 1)), 'ValueError'],
      ['chord', chord([0, 1, 2, 3, 4].map((i) => sig('py.add', i, i)), sig('py.tsum')), 20],
      ['chord with a failing member', chord([sig('py.add', 1, 1), sig('py.fail_any', 2)], sig('py.tsum')), 'ChordError'],
      ['map', xmap(sig('py.double'), [1, 2, 3]), [2, 4, 6]],
      ['map with a failing item', xmap(sig('py.fail_any'), [1]), 'ValueError'],
      ['starmap', xstarmap(sig('py.add'), [[1, 2], [3, 4]]), [3, 7]],
      ['chunks', chunks(sig('py.add'), [[0, 0], [1, 1], [2, 2]], 2), [[0, 2], [4]]],
      ['chunks with a failing chunk', chunks(sig('py.fail_any'), [[1], [2]], 1), 'ValueError'],
      ['link', linked, 5],
      ['link_error', failing, 'ValueError'],
    ];
    const results: ResultNode[] = [];
    for (const [, c] of canvases) results.push(await c.applyAsync());
    const items: Parameters<typeof assertSameInPython>[1] = [];
    for (const [i, [what, , expect]] of canvases.entries()) {
      const r = results[i]!;
      const ts = await readInTs(r);
      if (typeof expect === 'string') assert.equal(ts.error?.name, expect, `${what}: TS get() gave ${String(ts.error ?? JSON.stringify(ts.value))}`);
      else assert.deepEqual(ts.value, expect, `${what}: ${String(ts.error)}`);
      if (r.isGroup) {
        // Each member as Python reads it (a group's result is its members').
        const values = await Promise.all(r.results.map((m) => m.get({ timeout: 30_000 }).then((value) => ({ value }), (error: Error) => ({ error }))));
        r.results.forEach((m, k) => items.push({ id: m.id, ts: { ...values[k]!, state: (ts.state as string[])[k]! }, what: `${what} member ${k}` }));
      } else items.push({ id: r.id, ts: { value: ts.value, error: ts.error, state: ts.state as string }, what });
    }
    assert.match(results[5] && (await readInTs(results[5])).error!.message, DEPENDENCY);
    await assertSameInPython(e, items);
    const kids = await (results[11] as ReturnType<Celeriac['AsyncResult']>).children();
    assert.equal(kids?.length, 1, 'the Python worker stored the callback among the children');
    assert.equal(await kids![0]!.get({ timeout: 30_000 }), 50);
    await eventually(async () => (await records(kErr)).length === 1, 'the TS errback of a Python task');
    assert.equal((await records(kErr))[0]!.value, results[12]!.id);
  });

  test(`${t.label}: the TS worker registers Celery's built-ins: registered lists the same celery.* tasks as a Python worker when asked for builtins, and none by default`, async () => {
    const names = (replies: Record<string, unknown>[], node: string) => (replies.find((r) => node in r)?.[node] ?? []) as string[];
    const builtins = (list: string[]) => list.filter((n) => n.startsWith('celery.')).sort();
    const all = await app.control.call('registered', { builtins: true }, { destination: [tsName, pyName], timeout: 5 });
    assert.deepEqual(builtins(names(all, tsName)), builtins(names(all, pyName)), 'the same built-ins as Python Celery');
    assert.deepEqual(builtins(names(all, tsName)), [
      'celery.accumulate', 'celery.backend_cleanup', 'celery.chain', 'celery.chord', 'celery.chord_unlock', 'celery.chunks', 'celery.group', 'celery.map', 'celery.starmap',
    ]);
    const plain = await app.control.call('registered', {}, { destination: [tsName, pyName], timeout: 5 });
    assert.deepEqual(builtins(names(plain, tsName)), [], 'inspect registered leaves them out, as Celery does');
    assert.deepEqual(builtins(names(plain, pyName)), []);
    assert.ok(names(plain, tsName).includes('ts.add'));
  });

  test(`${t.label}: Celery's built-ins sent by name from Python run on the TS worker: celery.chunks, celery.accumulate and celery.chord_unlock`, async () => {
    const sigDict = (name: string, args: unknown[] = [], options: Record<string, unknown> = {}) => ({ task: name, args, kwargs: {}, options, subtask_type: null, immutable: false });
    // Two finished tasks for chord_unlock to join, and the body it applies, with a known id.
    const done = await Promise.all([app.signature('ts.add', [1, 1]).applyAsync(), app.signature('ts.add', [2, 2]).applyAsync()]);
    await Promise.all(done.map((r) => r.get({ timeout: 10_000 })));
    const bodyId = uniqueName('unlock-body');
    const [chunked, picked] = await runPythonProducer(e, [
      { task: 'celery.chunks', kwargs: { task: sigDict('ts.add'), it: [[1, 1], [2, 2], [3, 3]], n: 2 } },
      { task: 'celery.accumulate', args: [1, 2, 3], kwargs: { index: 1 } },
      { task: 'celery.chord_unlock', args: [uniqueName('unlock-group'), sigDict('ts.tsum', [], { task_id: bodyId })], kwargs: { result: done.map((r) => r.asTuple()), interval: 0.2 }, wait: false },
    ]);
    assert.equal(chunked!.error, null, JSON.stringify(chunked!.error));
    const group = resultFromTuple(chunked!.result as ResultTuple, app);
    assert.ok(group.isGroup, 'celery.chunks returns its GroupResult as a tuple, as Celery does');
    assert.deepEqual(await group.get({ timeout: 10_000 }), [[2, 4], [6]]);
    assert.equal(picked!.result, 2);
    assert.equal(await app.AsyncResult(bodyId).get({ timeout: 10_000 }), 6, 'chord_unlock applied the body with both results');
  });

  test(`${t.label}: a chain whose steps alternate between Python and TS tasks completes, built in either language; a failing step fails its last result`, async () => {
    const steps = [s('py.add', [1, 2]), s('ts.add', [10]), s('py.mul', [3]), s('ts.add', [1])];
    const [built, broken] = await runCanvasProducer(e, [
      { canvas: { chain: steps } },
      { canvas: { chain: [s('py.add', [1, 2]), s('ts.fail_any'), s('py.add', [1])] } },
    ]);
    assert.equal(built!.result, 40, JSON.stringify(built!.error));
    assert.equal(broken!.error?.type, 'ValueError');
    await assertSameInTs(app, built!, 'Python-built alternating chain');
    await assertSameInTs(app, broken!, 'Python-built alternating chain with a failing TS step');
    const sig = (name: string, ...args: unknown[]) => app.signature(name, args);
    const tsBuilt = await chain(sig('ts.add', 1, 2), sig('py.add', 10), sig('ts.mul', 3), sig('py.add', 1)).applyAsync();
    const tsBroken = await chain(sig('ts.add', 1, 2), sig('py.fail_any'), sig('ts.add', 1)).applyAsync();
    const [ok, bad] = [await readInTs(tsBuilt), await readInTs(tsBroken)];
    assert.equal(ok.value, 40);
    assert.equal(bad.error?.name, 'ValueError');
    assert.equal(bad.state, 'FAILURE');
    await assertSameInPython(e, [
      { id: tsBuilt.id, ts: { value: 40, state: 'SUCCESS' }, what: 'TS-built alternating chain' },
      { id: tsBroken.id, ts: { error: bad.error, state: 'FAILURE' }, what: 'TS-built alternating chain with a failing Python step' },
    ]);
    // The steps ran where they live: every parent is stored, in both languages' hands.
    const parents: string[] = [];
    for (let n = tsBuilt.parent; n; n = n.parent) parents.push(n.id);
    assert.equal(parents.length, 3);
    assert.deepEqual(await Promise.all(parents.map((id) => app.AsyncResult(id).get({ timeout: 30_000 }))), [39, 13, 3]);
  });
}

export type { PyOutcome };
