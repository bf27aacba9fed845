// Canvases end to end on TS workers, with the chord join of each backend: Redis joins on Celery's keys
// (celery-taskset-meta-<gid>.j/.s), memory:// and sqlite:// through celery.chord_unlock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { Celeriac, createLogger, type TaskContext } from '../../src/index.js';
import { chain, chord, group, type AnySignature } from '../../src/canvas/index.js';
import { GroupResult, type ResultNode } from '../../src/app/result.js';
import { eventually, redisDb, requireRedis, sleep, uniqueName } from '../helpers/services.js';

const BACKENDS = [
  { name: 'memory', url: () => `memory://${uniqueName('canvas')}`, check: async () => undefined },
  { name: 'sqlite', url: () => `sqlite:///${path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-canvas-')), 'c.db')}`, check: async () => undefined },
  { name: 'redis', url: () => redisDb(15), check: requireRedis },
];

async function setup(url: string, settings: Record<string, unknown> = {}) {
  const logger = createLogger('critical');
  const app = new Celeriac('canvas', { broker: url, backend: url, task_default_queue: uniqueName('canvas'), logger, result_chord_retry_interval: 0.2, ...settings });
  const add = app.task('c.add', (x: number, y: number) => x + y);
  const tsum = app.task('c.tsum', (xs: unknown[]) => xs.flat(3).reduce((a: number, b) => a + Number(b), 0));
  const identity = app.task('c.identity', <T>(x: T) => x);
  const fail = app.task('c.fail', (..._a: unknown[]) => { throw new RangeError('bad thing'); });
  const seen: Record<string, unknown[]> = {};
  // Bound: an errback that is sent (Celery never calls a bound errback in-process).
  app.task('c.seen', (_t: TaskContext, value: unknown, tag: string) => { (seen[tag] ??= []).push(value); return value; }, { bind: true });
  app.task('c.on_error', (request: { id: string }, exc: Error, _tb: string, tag: string) => { (seen[tag] ??= []).push([request.id, exc.name]); });
  app.task('c.spawn', async (n: number) => {
    for (let i = 0; i < n; i++) await add.delay(i, i);
    return n;
  });
  const ran: string[] = [];
  const worker = app.worker({ concurrency: 4, logger, queues: [app.conf.task_default_queue] });
  worker.on('taskPostrun', (e: { name: string }) => ran.push(e.name));
  await worker.start();
  return { app, add, tsum, identity, fail, seen, ran, close: async () => { await worker.close(); await app.close(); } };
}

const get = (r: ResultNode) => r.get({ timeout: 15_000 });
const error = (r: ResultNode) => get(r).then(() => null, (e: Error) => e);

for (const b of BACKENDS) {
  test(`${b.name}: chain, group, chord (also of chains and groups, and empty), map, starmap, chunks and link, each also with a failing member`, async () => {
    await b.check();
    const s = await setup(b.url());
    const { app, add, tsum, identity, fail } = s;
    try {
      const c = await chain(add.s(1, 2), add.s(10), add.s(100)).applyAsync();
      assert.equal(await get(c), 113);
      assert.equal(await get(c.parent!), 13, 'the chain\'s earlier result is its parent');
      const broken = await chain(add.s(1, 2), fail.s(), add.s(1), add.s(2)).applyAsync();
      assert.equal((await error(broken))?.name, 'RangeError');
      await eventually(async () => (await app.AsyncResult(broken.parent!.id).state()) === 'FAILURE', 'every later step of the chain failed too');
      assert.deepEqual(await get(await group(add.s(1, 1), add.s(2, 2)).applyAsync()), [2, 4]);
      const g = await group(add.s(1, 1), fail.s(2)).applyAsync();
      assert.equal((await error(g))?.name, 'RangeError');
      assert.equal(await get(await chord([add.s(1, 1), add.s(2, 2), add.s(3, 3)], tsum.s()).applyAsync()), 12);
      const cf = await chord([add.s(1, 1), fail.s(2)], tsum.s()).applyAsync();
      const ce = await error(cf);
      assert.equal(ce?.name, 'ChordError');
      assert.match(ce!.message, /^Dependency [0-9a-f-]{36} raised RangeError\('bad thing'\)$/);
      assert.equal(await get(await chord([add.s(1, 1), add.s(2, 2)], chain(tsum.s(), add.s(100))).applyAsync()), 106, 'a chord body can be a chain');
      assert.deepEqual(await get(await chord([], identity.s()).applyAsync()), [], 'an empty header applies the body with []');
      assert.equal(await get(await chain(add.s(1, 2), group(add.s(1), add.s(2)), tsum.s()).applyAsync()), 9, 'a group followed by a step is a chord');
      assert.deepEqual(await get(await chain(add.s(1, 2), group(add.s(1), add.s(2))).applyAsync()), [4, 5], 'a chain may end in a group');
      // A header member that is a chain ending in a group: the join keeps the nesting.
      assert.deepEqual(await get(await chord([chain(add.s(1, 1), group(add.s(1), add.s(2))), add.s(5, 5)], identity.s()).applyAsync()), [[3, 4], 10]);
      assert.deepEqual(await get(await identity.map([1, 'two']).applyAsync()), [1, 'two']);
      assert.deepEqual(await get(await add.starmap([[1, 2], [3, 4]]).applyAsync()), [3, 7]);
      assert.deepEqual(await get(await add.chunks([[1, 1], [2, 2], [3, 3]], 2).applyAsync()), [[2, 4], [6]]);
      assert.equal((await error(await fail.map([1]).applyAsync()))?.name, 'RangeError');
      assert.equal((await error(await fail.chunks([[1], [2]], 1).applyAsync()))?.name, 'RangeError');
      const linked = add.s(2, 3);
      linked.link(add.s(10));
      const lr = await linked.applyAsync();
      assert.equal(await get(lr), 5);
      const kids = await eventually(() => lr.children(), 'the callback among the children');
      assert.equal(await get(kids![0]!), 15);
      if (b.name === 'redis') assert.ok(!s.ran.includes('celery.chord_unlock'), 'Redis joins chords itself');
      else assert.ok(s.ran.includes('celery.chord_unlock'), `${b.name} joins chords through celery.chord_unlock`);
    } finally {
      await s.close();
    }
  });

  test(`${b.name}: errbacks run in-process (a handler of more than one argument) or as tasks with the failed id; a revoked chord member fails the chord`, async () => {
    await b.check();
    const s = await setup(b.url());
    const { app, add, tsum, fail, seen } = s;
    try {
      const f = fail.s();
      f.linkError(app.signature('c.seen', ['sent']));
      f.linkError(app.signature('c.on_error', ['inline']));
      const r = await f.applyAsync();
      await error(r);
      await eventually(() => seen.sent?.length === 1 && seen.inline?.length === 1, 'both errbacks');
      assert.deepEqual(seen.sent, [r.id]);
      assert.deepEqual(seen.inline, [[r.id, 'RangeError']]);
      // The chord body's errbacks run when the chord fails.
      const body = tsum.s();
      body.linkError(app.signature('c.seen', ['chord']));
      const cr = await chord([fail.s(1)], body).applyAsync();
      await error(cr);
      await eventually(() => seen.chord?.length === 1, 'the body\'s errback');
      assert.deepEqual(seen.chord, [cr.id]);
      const late = await chord([add.s(1, 1), add.s(2, 2).set({ countdown: 2 })], tsum.s()).applyAsync();
      const header = late.parent as unknown as GroupResult;
      await sleep(300);
      await header.results[1]!.revoke();
      const e = await error(late);
      assert.equal(e?.name, 'ChordError');
      assert.match(e!.message, /raised TaskRevokedError\('revoked'\)$/);
    } finally {
      await s.close();
    }
  });

  test(`${b.name}: GroupResult save and restore, ResultSet counts; a task's children are what it sent, with its parent_id and root_id, and collect() walks them`, async () => {
    await b.check();
    const s = await setup(b.url());
    const { app, add, fail } = s;
    try {
      const g = await group(add.s(1, 1), add.s(2, 2), fail.s(3)).applyAsync();
      await g.join({ propagate: false, timeout: 15_000 });
      assert.equal(await g.completedCount(), 2);
      assert.equal(await g.ready(), true);
      assert.equal(await g.successful(), false);
      assert.equal(await g.failed(), true);
      await g.save();
      const back = await GroupResult.restore(app, g.id);
      assert.deepEqual(back?.results.map((r) => r.id), g.results.map((r) => r.id));
      await back!.delete();
      assert.equal(await GroupResult.restore(app, g.id), null);
      const spawn = app.tasks.get('c.spawn') as unknown as { delay(n: number): Promise<ResultNode> };
      const root = await spawn.delay(3);
      assert.equal(await get(root), 3);
      const kids = (await (root as ReturnType<Celeriac['AsyncResult']>).children())!;
      assert.equal(kids.length, 3);
      await Promise.all(kids.map((k) => get(k)));
      const metas = await Promise.all(kids.map((k) => (k as ReturnType<Celeriac['AsyncResult']>).meta()));
      for (const m of metas) assert.equal(m.parent_id, root.id);
      const collected: unknown[] = [];
      for await (const [, value] of (root as ReturnType<Celeriac['AsyncResult']>).collect({ timeout: 15_000 })) collected.push(value);
      assert.deepEqual(collected, [3, 0, 2, 4]);
    } finally {
      await s.close();
    }
  });
}

test('redis: the join is Celery\'s: .s written before the header is published, a list with result_chord_ordered false, keys removed after the body', async () => {
  await requireRedis();
  const url = redisDb(15);
  const s = await setup(url, { result_backend_transport_options: { result_chord_ordered: false } });
  const redis = new Redis(url);
  try {
    const r = await chord([s.add.s(1, 1), s.add.s(2, 2).set({ countdown: 1.5 })], s.tsum.s()).applyAsync();
    const gid = r.parent!.id;
    assert.equal(await redis.get(`celery-taskset-meta-${gid}.s`), '2');
    await eventually(async () => (await redis.type(`celery-taskset-meta-${gid}.j`)) === 'list', 'the first outcome in the join list');
    assert.equal(await get(r), 6);
    await eventually(async () => (await redis.exists(`celery-taskset-meta-${gid}.j`, `celery-taskset-meta-${gid}.s`)) === 0, 'the join keys removed');
  } finally {
    redis.disconnect();
    await s.close();
  }
});

test('redis: a failed chain step and the rest of its chain are stored in one write: whoever sees the step\'s FAILURE finds the chain\'s last result failed too', async () => {
  await requireRedis();
  const s = await setup(redisDb(15));
  const [sub, reader] = [new Redis(redisDb(15)), new Redis(redisDb(15))];
  try {
    const [failId, lastId] = [uniqueName('failed-step'), uniqueName('last-step')];
    // Celery's get() on a chain raises a failed parent's error as soon as it reads it; a second
    // AsyncResult of the last id read then must find it stored (the first one stays registered).
    const seen = new Promise<string>((resolve) => sub.on('message', () => void reader.get(`celery-task-meta-${lastId}`).then((raw) => resolve(raw ? JSON.parse(raw).status : 'PENDING'))));
    await sub.subscribe(`celery-task-meta-${failId}`);
    const broken = await chain(s.add.s(1, 2), s.fail.s().set({ task_id: failId }), s.add.s(1).set({ task_id: lastId })).applyAsync();
    assert.equal(broken.id, lastId);
    assert.equal(broken.parent!.id, failId);
    assert.equal(await seen, 'FAILURE', 'the last result, read when the failed step\'s state was published');
    assert.equal((await error(broken))?.name, 'RangeError');
  } finally {
    sub.disconnect();
    reader.disconnect();
    await s.close();
  }
});

test('a chord without a result backend is refused before anything is sent, with Celery\'s words', async () => {
  const url = `memory://${uniqueName('nobackend')}`;
  const app = new Celeriac('nb', { broker: url, logger: createLogger('critical') });
  const add = app.task('c.add', (x: number, y: number) => x + y);
  const tsum = app.task('c.tsum', (xs: number[]) => xs.length);
  const attempts: (() => AnySignature)[] = [() => chord([add.s(1, 1)], tsum.s()), () => chain(add.s(1, 1), group(add.s(1), add.s(2)), tsum.s())];
  for (const make of attempts) await assert.rejects(make().applyAsync(), (e: Error) => e.name === 'NotImplementedError' && /Starting chords requires a result backend/.test(e.message));
  assert.equal(await (await app.broker()).queueLength(app.conf.task_default_queue), 0, 'nothing was published');
  await app.close();
});

test('tasks with a bound context see their request in an in-process errback call', async () => {
  const s = await setup(`memory://${uniqueName('ctx')}`);
  const got: string[] = [];
  s.app.task('c.echo_ctx', (task: TaskContext) => task.request.id, { bind: true });
  s.app.task('c.on_error2', (request: { id: string; task: string }) => { got.push(request.task); }, { params: ['request', 'exc', 'traceback'] });
  try {
    const f = s.fail.s();
    f.linkError(s.app.signature('c.on_error2'));
    await error(await f.applyAsync());
    await eventually(() => got.length === 1, 'the in-process errback');
    assert.deepEqual(got, ['c.fail']);
  } finally {
    await s.close();
  }
});

test('redis, thread pool: chains, groups, chords and starmap run when the handlers (and the built-ins) run in worker threads', async () => {
  await requireRedis();
  const { makeApp } = await import('./worker-app.js');
  const module = new URL('./worker-app.ts', import.meta.url).pathname;
  const queue = uniqueName('canvas-threads');
  const app = makeApp(redisDb(15), redisDb(15), { task_default_queue: queue });
  app.logger = createLogger('critical');
  const worker = app.worker({ pool: 'thread', concurrency: 2, module, queues: [queue], logger: createLogger('critical') });
  await worker.start();
  try {
    const add = (...a: number[]) => app.signature<[number?, number?], number>('w.add', a);
    assert.equal(await get(await chain(add(1, 2), add(3), add(4)).applyAsync()), 10);
    assert.deepEqual(await get(await group(add(1, 1), add(2, 2)).applyAsync()), [2, 4]);
    assert.deepEqual(await get(await chord([add(1, 1), add(2, 2)], app.signature('celery.accumulate')).applyAsync()), [[2, 4]]);
    assert.equal(await get(await add(5).applyAsync([1])), 6, 'partial arguments go first');
    const { xstarmap } = await import('../../src/canvas/index.js');
    assert.deepEqual(await get(await xstarmap(app.signature('w.add'), [[1, 2], [3, 4]]).applyAsync()), [3, 7]);
  } finally {
    await worker.close();
    await app.close();
  }
});
