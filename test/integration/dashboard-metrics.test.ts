// The dashboard's /metrics, read with a Prometheus text-format parser (parse-prometheus-text-format):
// Flower's metric names and types, and counters, the runtime histogram and the gauges moving when a
// Celeriac worker (-E) runs tasks on a private Redis; queue lengths as celeriac_queue_length.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Celeriac, dashboard, createLogger, type Dashboard, type Worker } from '../../src/index.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { eventually } from '../helpers/services.js';

interface Sample { labels?: Record<string, string>; value?: string; buckets?: Record<string, string>; count?: string; sum?: string }
interface Family { name: string; help: string; type: string; metrics: Sample[] }
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

const HOST = 'w@metrics';
let redis: RedisServer;
let dir: string;
let app: Celeriac;
let worker: Worker;
let d: Dashboard;

before(async () => {
  redis = await startRedisServer();
  dir = mkdtempSync(path.join(tmpdir(), 'celeriac-dash-metrics-'));
  app = new Celeriac('metrics', { broker: redis.url(0), backend: redis.url(0), task_default_queue: 'waiting', logger: createLogger('critical') });
  app.task('m.sleep', async (ms: number) => {
    await new Promise((r) => setTimeout(r, ms));
    return ms;
  });
  app.task('m.fail', () => {
    throw new Error('nope');
  });
  worker = app.worker({ hostname: HOST, queues: ['work'], concurrency: 4, taskEvents: true, heartbeatInterval: 0.5, logger: createLogger('critical'), mingle: false });
  await worker.start();
  d = await dashboard(app, { port: 0, db: path.join(dir, 'history.sqlite') });
});

after(async () => {
  await d?.close();
  await worker?.close();
  await app?.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function scrape(): Promise<{ text: string; families: Map<string, Family> }> {
  const res = await fetch(new URL('/metrics', d.url));
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return { text, families: new Map(parsePrometheus(text).map((f) => [f.name, f])) };
}

function value(f: Family | undefined, labels: Record<string, string>): number | undefined {
  const s = f?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return s?.value === undefined ? undefined : Number(s.value);
}

/**
 * One series of a labelled histogram, through the parser: it folds a family's series into one, so each
 * series is given to it alone, its labels (all equal) left off.
 */
function histogramSeries(text: string, name: string, labels: Record<string, string>): { buckets: Record<string, number>; count: number; sum: number } {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const lines = text.split('\n').filter((l) => l.startsWith(`${name}_`) && want.every((w) => l.includes(w)))
    .map((l) => l.replace(/\{([^}]*)\}/, (_, inner: string) => {
      const le = /le="[^"]*"/.exec(inner);
      return le ? `{${le[0]}}` : '';
    }));
  assert.ok(lines.length > 0, `no ${name} series with ${want.join(',')}`);
  const [family] = parsePrometheus(`# TYPE ${name} histogram\n${lines.join('\n')}\n`);
  const s = family!.metrics[0]!;
  return { buckets: Object.fromEntries(Object.entries(s.buckets ?? {}).map(([k, v]) => [k, Number(v)])), count: Number(s.count), sum: Number(s.sum) };
}

test('/metrics parses as Prometheus text with Flower\'s metric names and types', async () => {
  await eventually(async () => value((await scrape()).families.get('flower_worker_online'), { worker: HOST }) === 1, 'the worker online in /metrics', 10_000, 100);
  const { families } = await scrape();
  const types = Object.fromEntries([...families.values()].map((f) => [f.name, f.type]));
  assert.deepEqual(types, {
    flower_events_total: 'COUNTER',
    flower_task_runtime_seconds: 'HISTOGRAM',
    flower_task_prefetch_time_seconds: 'GAUGE',
    flower_worker_online: 'GAUGE',
    flower_worker_number_of_currently_executing_tasks: 'GAUGE',
    celeriac_queue_length: 'GAUGE',
  });
  for (const f of families.values()) assert.ok(f.help.length > 0, `${f.name} has HELP`);
});

test('counters move when tasks run: events by type and task, the runtime histogram, executing tasks and queue lengths', async () => {
  const before = await scrape();
  const succeededBefore = value(before.families.get('flower_events_total'), { worker: HOST, type: 'task-succeeded', task: 'm.sleep' }) ?? 0;
  assert.equal(succeededBefore, 0);

  // Two tasks held running while /metrics is read: the executing-tasks gauge follows the heartbeats.
  const slow = [await app.sendTask('m.sleep', [2600], {}, { queue: 'work' }), await app.sendTask('m.sleep', [2600], {}, { queue: 'work' })];
  await eventually(async () => value((await scrape()).families.get('flower_worker_number_of_currently_executing_tasks'), { worker: HOST }) === 2, 'two executing tasks', 10_000, 100);
  for (const r of slow) await r.get({ timeout: 10_000 });
  const fast = await Promise.all([10, 20, 30].map((ms) => app.sendTask('m.sleep', [ms], {}, { queue: 'work' })));
  for (const r of fast) await r.get({ timeout: 10_000 });
  const bad = await app.sendTask('m.fail', [], {}, { queue: 'work' });
  await assert.rejects(bad.get({ timeout: 10_000 }));
  // Three messages nobody consumes, in the default queue.
  for (let i = 0; i < 3; i++) await app.sendTask('m.sleep', [1]);

  await eventually(async () => value((await scrape()).families.get('flower_events_total'), { worker: HOST, type: 'task-failed', task: 'm.fail' }) === 1, 'the failure counted', 10_000, 100);
  const { text, families } = await scrape();
  const events = families.get('flower_events_total');
  assert.equal(value(events, { worker: HOST, type: 'task-received', task: 'm.sleep' }), 5);
  assert.equal(value(events, { worker: HOST, type: 'task-started', task: 'm.sleep' }), 5);
  assert.equal(value(events, { worker: HOST, type: 'task-succeeded', task: 'm.sleep' }), 5);
  assert.equal(value(events, { worker: HOST, type: 'task-failed', task: 'm.fail' }), 1);
  assert.ok((value(events, { worker: HOST, type: 'worker-heartbeat', task: '' }) ?? 0) >= 1, 'heartbeats counted');

  const h = histogramSeries(text, 'flower_task_runtime_seconds', { worker: HOST, task: 'm.sleep' });
  assert.equal(h.count, 5);
  assert.equal(h.buckets['+Inf'], 5);
  assert.equal(h.buckets['0.005'], 0, 'every run slept at least 10 ms');
  assert.equal(h.buckets['1'], 3, 'the 10, 20 and 30 ms runs (with room for a busy machine)');
  assert.equal(h.buckets['2.5'], 3, 'the 2.6 s runs are above the 2.5 s bound');
  const cumulative = Object.entries(h.buckets).sort(([a], [b]) => Number(a.replace('+Inf', 'Infinity')) - Number(b.replace('+Inf', 'Infinity'))).map(([, v]) => v);
  assert.equal(cumulative.length, 15, "Flower's 14 buckets and +Inf");
  assert.ok(cumulative.every((v, i) => i === 0 || v >= cumulative[i - 1]!), 'cumulative buckets');
  assert.ok(h.sum > 5.26 && h.sum < 30, `sum of runtimes ${h.sum}`);

  const prefetch = value(families.get('flower_task_prefetch_time_seconds'), { worker: HOST, task: 'm.sleep' });
  assert.ok(prefetch !== undefined && prefetch >= 0 && prefetch < 5, `prefetch time ${prefetch}`);
  await eventually(async () => value((await scrape()).families.get('flower_worker_number_of_currently_executing_tasks'), { worker: HOST }) === 0, 'no executing task', 10_000, 100);
  assert.equal(value(families.get('celeriac_queue_length'), { queue: 'waiting' }), 3);
  assert.equal(value(families.get('celeriac_queue_length'), { queue: 'work' }), 0);
});
