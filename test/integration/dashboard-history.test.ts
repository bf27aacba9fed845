// The dashboard's own JSON API, its live stream and its SQLite history, with a Celeriac worker (-E) on a
// private Redis: filters and search, a task with its parent and children, retry of a failed task,
// queues with a .dlq read raw and a purge that needs confirmation, chart buckets, SSE messages
// coalesced per tick, the history surviving a restart on the same file, and retention pruning it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { Celeriac, dashboard, createLogger, type Dashboard, type Worker, type TaskView, type WorkerView } from '../../src/index.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { eventually, sleep } from '../helpers/services.js';

const HOST = 'w@history';
let redis: RedisServer;
let dir: string;
let db: string;
let app: Celeriac;
let worker: Worker;
let d: Dashboard;
const failedOnce = new Set<string>();

before(async () => {
  redis = await startRedisServer();
  dir = mkdtempSync(path.join(tmpdir(), 'celeriac-dash-history-'));
  db = path.join(dir, 'nested', 'history.sqlite');
  app = new Celeriac('history', { broker: redis.url(0), backend: redis.url(0), task_default_queue: 'hq', logger: createLogger('critical') });
  app.task('h.add', (x: number, y: number) => x + y);
  app.task('h.parent', async (n: number) => {
    const child = await app.sendTask('h.add', [n, 1]);
    return child.id;
  });
  app.task('h.flaky', (tag: string, opts: { times: number }) => {
    if (!failedOnce.has(tag)) {
      failedOnce.add(tag);
      throw new Error(`first run of ${tag} fails (${opts.times})`);
    }
    return `${tag} ok`;
  });
  worker = app.worker({ hostname: HOST, queues: ['hq'], concurrency: 8, taskEvents: true, heartbeatInterval: 0.5, logger: createLogger('critical'), mingle: false });
  await worker.start();
  d = await dashboard(app, { port: 0, db });
});

after(async () => {
  await d?.close();
  await worker?.close();
  await app?.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function api<T>(p: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const res = await fetch(new URL(p, d.url), init);
  return { status: res.status, body: (await res.json()) as T };
}

const post = <T>(p: string, body?: unknown) => api<T>(p, { method: 'POST', body: body === undefined ? undefined : JSON.stringify(body), headers: { 'content-type': 'application/json' } });

async function taskIn(id: string, state: string): Promise<TaskView & { children: TaskView[]; parent?: TaskView }> {
  return (await eventually(async () => {
    const r = await api<TaskView & { children: TaskView[]; parent?: TaskView }>(`/dashboard/api/task/${id}`);
    return r.status === 200 && r.body.state === state ? r.body : undefined;
  }, `task ${id} ${state} in /dashboard/api/task`, 15_000, 100))!;
}

const ids: Record<string, string> = {};

test('workers: the worker with its pool, concurrency, counters, heartbeat age, registered tasks and queues', async () => {
  const w = (await eventually(async () => {
    const r = await api<{ workers: WorkerView[] }>('/dashboard/api/workers');
    const found = r.body.workers.find((x) => x.hostname === HOST);
    return found?.registered && found.queues ? found : undefined;
  }, 'the worker with its inspect details', 15_000, 100))!;
  assert.equal(w.online, true);
  assert.equal(w.pool, 'async');
  assert.equal(w.concurrency, 8);
  assert.equal(w.pid, process.pid);
  assert.deepEqual(w.queues, ['hq']);
  assert.ok(w.registered!.includes('h.add') && w.registered!.includes('h.flaky'));
  assert.ok(typeof w.heartbeatAge === 'number' && w.heartbeatAge < 5);
  assert.equal(w.sw_ident, 'celeriac');
  assert.equal(w.loadavg?.length, 3);
});

test('tasks: filters by state, name, worker and time, search by id and by argument text, paging with a total', async () => {
  const a = await app.sendTask('h.add', [2, 3]);
  const b = await app.sendTask('h.add', [40, 2], {});
  const f = await app.sendTask('h.flaky', ['needle-xyz'], { opts: { times: 1 } });
  await a.get({ timeout: 10_000 });
  await b.get({ timeout: 10_000 });
  await assert.rejects(f.get({ timeout: 10_000 }));
  Object.assign(ids, { a: a.id, b: b.id, f: f.id });
  const failed = await taskIn(f.id, 'FAILURE');
  assert.equal(failed.name, 'h.flaky');
  assert.equal(failed.args, "('needle-xyz',)");
  assert.equal(failed.kwargs, "{'opts': {'times': 1}}");
  assert.match(failed.exception ?? '', /first run of needle-xyz fails/);
  assert.match(failed.traceback ?? '', /first run/);
  assert.equal(failed.worker, HOST);
  const ok = await taskIn(a.id, 'SUCCESS');
  assert.equal(ok.result, '5');
  assert.ok(typeof ok.runtime === 'number' && typeof ok.received === 'number' && typeof ok.started === 'number' && typeof ok.succeeded === 'number');

  type List = { tasks: TaskView[]; total: number };
  const q = async (query: string) => (await api<List>(`/dashboard/api/tasks?${query}`)).body;
  assert.deepEqual((await q('state=FAILURE')).tasks.map((t) => t.uuid), [f.id]);
  assert.deepEqual(new Set((await q('name=h.add')).tasks.map((t) => t.uuid)), new Set([a.id, b.id]));
  assert.equal((await q(`worker=${encodeURIComponent(HOST)}`)).total, 3);
  assert.equal((await q('worker=nobody')).total, 0);
  assert.deepEqual((await q(`search=${f.id}`)).tasks.map((t) => t.uuid), [f.id], 'by id');
  assert.deepEqual((await q(`search=${f.id.slice(0, 8)}`)).tasks.map((t) => t.uuid), [f.id], 'by the start of an id');
  assert.deepEqual((await q('search=needle-xyz')).tasks.map((t) => t.uuid), [f.id], 'by text in args');
  assert.deepEqual((await q('search=times')).tasks.map((t) => t.uuid), [f.id], 'by text in kwargs');
  assert.deepEqual((await q('search=40%2C')).tasks.map((t) => t.uuid), [b.id]);
  const now = Date.now() / 1000;
  assert.equal((await q(`since=${now - 60}&until=${now + 60}`)).total, 3);
  assert.equal((await q(`since=${now + 60}`)).total, 0);
  const page = await q('limit=2&offset=0');
  assert.equal(page.tasks.length, 2);
  assert.equal(page.total, 3);
  assert.equal((await q('limit=2&offset=2')).tasks.length, 1);
  assert.ok(page.tasks[0]!.timestamp >= page.tasks[1]!.timestamp, 'latest change first');
  assert.equal((await api('/dashboard/api/tasks?limit=-1')).status, 400);
});

test('a task\'s page: its children and its parent; an unknown id is 404 with an error', async () => {
  const p = await app.sendTask('h.parent', [7]);
  const childId = (await p.get({ timeout: 10_000 })) as string;
  await taskIn(childId, 'SUCCESS');
  const parent = await taskIn(p.id, 'SUCCESS');
  assert.deepEqual(parent.children.map((c) => c.uuid), [childId]);
  const child = await taskIn(childId, 'SUCCESS');
  assert.equal(child.parent_id, p.id);
  assert.equal(child.parent?.uuid, p.id);
  assert.equal(child.root_id, p.id);
  const missing = await api<{ error: string }>('/dashboard/api/task/00000000-0000-0000-0000-000000000000');
  assert.equal(missing.status, 404);
  assert.match(missing.body.error, /Unknown task/);
});

test('retry: a failed task is sent again with the same name, args and kwargs and succeeds; a successful one is 409', async () => {
  const r = await post<{ task_id: string }>(`/dashboard/api/task/${ids.f}/retry`);
  assert.equal(r.status, 200);
  assert.notEqual(r.body.task_id, ids.f);
  assert.equal(await app.AsyncResult(r.body.task_id).get({ timeout: 10_000 }), 'needle-xyz ok');
  const again = await taskIn(r.body.task_id, 'SUCCESS');
  assert.equal(again.args, "('needle-xyz',)");
  assert.equal(again.kwargs, "{'opts': {'times': 1}}");
  const refused = await post<{ error: string }>(`/dashboard/api/task/${ids.a}/retry`);
  assert.equal(refused.status, 409);
  assert.match(refused.body.error, /SUCCESS/);
});

test('the live stream: event: task messages with TaskView JSON, at most one per task per tick', async () => {
  const ac = new AbortController();
  const res = await fetch(new URL('/api/stream', d.url), { signal: ac.signal });
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reader = res.body!.getReader();
  let text = '';
  const reading = (async () => {
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      text += decoder.decode(value, { stream: true });
    }
  })();
  await eventually(() => text.includes('event: worker'), 'the workers first', 5000, 20);
  const sent = await Promise.all(Array.from({ length: 50 }, (_, i) => app.sendTask('h.add', [i, i])));
  for (const r of sent) await r.get({ timeout: 10_000 });
  const wanted = new Set(sent.map((r) => r.id));
  const messages = () => text.split('\n\n').filter((m) => m.startsWith('event: task\n')).map((m) => JSON.parse(m.slice(m.indexOf('data: ') + 6)) as TaskView).filter((t) => wanted.has(t.uuid));
  await eventually(() => new Set(messages().filter((t) => t.state === 'SUCCESS').map((t) => t.uuid)).size === 50, 'SUCCESS for all 50 tasks on the stream', 10_000, 50);
  ac.abort();
  await reading;
  const got = messages();
  // Each task has three events (received, started, succeeded); ticks of 250 ms fold them.
  assert.ok(got.length < 150, `${got.length} messages for 50 tasks: their events are coalesced`);
  const last = new Map(got.map((t) => [t.uuid, t]));
  for (const t of last.values()) {
    assert.equal(t.state, 'SUCCESS');
    assert.equal(t.worker, HOST);
    assert.equal(t.name, 'h.add');
  }
});

test('queues: lengths with the transport, a .dlq read raw (and its envelope headers), purge only with a matching confirm', async () => {
  const client = new Redis(redis.port, '127.0.0.1');
  try {
    await client.lpush('hq.dlq', 'this is not a kombu envelope');
    const stray = await app.sendTask('h.add', [1, 1], {}, { queue: 'stray' });
    const envelope = await client.rpop('stray');
    await client.lpush('hq.dlq', envelope!);
    for (let i = 0; i < 4; i++) await app.sendTask('h.add', [i, 0], {}, { queue: 'parked' });
    const r = await api<{ queues: { name: string; messages: number; dlq: number; consumers?: number }[]; transport: string }>('/dashboard/api/queues');
    assert.equal(r.body.transport, 'redis');
    const hq = r.body.queues.find((q) => q.name === 'hq')!;
    assert.deepEqual(hq, { name: 'hq', messages: 0, dlq: 2, consumers: 1 });
    const dlq = await api<{ queue: string; messages: { raw: string; headers?: Record<string, unknown>; id?: string; task?: string }[] }>('/dashboard/api/queue/hq/dlq?limit=10');
    assert.equal(dlq.body.queue, 'hq.dlq');
    assert.equal(dlq.body.messages.length, 2);
    assert.deepEqual(dlq.body.messages[0], { raw: 'this is not a kombu envelope' }, 'the oldest first, raw');
    assert.equal(dlq.body.messages[1]!.raw, envelope);
    assert.equal(dlq.body.messages[1]!.id, stray.id);
    assert.equal(dlq.body.messages[1]!.task, 'h.add');
    assert.equal(dlq.body.messages[1]!.headers?.task, 'h.add');

    const refused = await post<{ error: string }>('/dashboard/api/queue/parked/purge', { confirm: 'wrong' });
    assert.equal(refused.status, 400);
    assert.match(refused.body.error, /confirm/);
    assert.equal((await post('/dashboard/api/queue/parked/purge')).status, 400);
    assert.equal(await client.llen('parked'), 4, 'nothing purged without confirmation');
    const purged = await post<{ purged: number }>('/dashboard/api/queue/parked/purge', { confirm: 'parked' });
    assert.deepEqual(purged.body, { purged: 4 });
    assert.equal(await client.llen('parked'), 0);
  } finally {
    client.disconnect();
  }
});

test('charts: this minute\'s counts by state and runtime percentiles, and queue-length samples', async () => {
  const r = await api<{ buckets: { t: number; succeeded: number; failed: number; retried: number; received: number; p50: number | null; p95: number | null; p99: number | null }[]; queues: { t: number; lengths: Record<string, number> }[] }>('/dashboard/api/charts?minutes=60');
  const total = r.body.buckets.reduce((n, b) => n + b.succeeded, 0);
  const failed = r.body.buckets.reduce((n, b) => n + b.failed, 0);
  const received = r.body.buckets.reduce((n, b) => n + b.received, 0);
  assert.ok(total >= 55, `succeeded ${total}`);
  assert.equal(failed, 1);
  assert.ok(received >= total + failed);
  const last = r.body.buckets[r.body.buckets.length - 1]!;
  assert.equal(last.t % 60, 0);
  assert.ok(last.p50 !== null && last.p50 > 0 && last.p50 <= last.p95! && last.p95! <= last.p99!, JSON.stringify(last));
  assert.ok(r.body.queues.length >= 1 && typeof r.body.queues[0]!.lengths.hq === 'number');
});

test('a restarted dashboard on the same file has the history; one with a short retention prunes it', async () => {
  await d.close();
  d = await dashboard(app, { port: 0, db });
  const { body } = await api<{ tasks: TaskView[]; total: number }>('/dashboard/api/tasks?limit=1000');
  const stored = new Map(body.tasks.map((t) => [t.uuid, t]));
  assert.equal(stored.get(ids.a!)?.state, 'SUCCESS');
  assert.equal(stored.get(ids.f!)?.state, 'FAILURE');
  assert.equal(stored.get(ids.f!)?.args, "('needle-xyz',)");
  assert.ok(body.total >= 55);
  const info = await api<Record<string, unknown>>(`/api/task/info/${ids.a}`);
  assert.equal(info.body.result, '5', "Flower's API reads the history too");
  const workers = await api<{ workers: WorkerView[] }>('/dashboard/api/workers');
  assert.ok(workers.body.workers.some((w) => w.hostname === HOST), 'workers are remembered');

  await d.close();
  await sleep(1500);
  d = await dashboard(app, { port: 0, db, retention: 1 / 3600 }); // one second
  const pruned = await api<{ tasks: TaskView[]; total: number }>('/dashboard/api/tasks');
  assert.equal(pruned.body.total, 0, 'tasks older than the retention are deleted at start');
  assert.equal((await api(`/dashboard/api/task/${ids.a}`)).status, 404);
});
