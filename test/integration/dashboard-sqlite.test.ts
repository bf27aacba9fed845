// The dashboard on the embedded SQLite transport (events through its broadcast table): a -E worker's
// tasks and the worker reach it, queue lengths and a .dlq come from the SQLite broker, purge empties a
// queue, and /api/queues/length names the transport's queues.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Celeriac, dashboard, createLogger, type Dashboard, type Worker, type TaskView, type WorkerView } from '../../src/index.js';
import { eventually } from '../helpers/services.js';

const HOST = 'w@sqlite-dash';
let dir: string;
let app: Celeriac;
let worker: Worker;
let d: Dashboard;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'celeriac-dash-sqlite-'));
  const url = `sqlite:///${path.join(dir, 'broker.db')}`;
  app = new Celeriac('sqlite-dash', { broker: url, backend: url, task_default_queue: 'sq', logger: createLogger('critical') });
  app.task('s.mul', (x: number, y: number) => x * y);
  worker = app.worker({ hostname: HOST, queues: ['sq'], concurrency: 2, taskEvents: true, heartbeatInterval: 0.5, logger: createLogger('critical'), mingle: false });
  await worker.start();
  d = await dashboard(app, { port: 0, db: path.join(dir, 'history.sqlite') });
});

after(async () => {
  await d?.close();
  await worker?.close();
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

const api = async <T>(p: string, init?: RequestInit): Promise<T> => (await (await fetch(new URL(p, d.url), init)).json()) as T;

test('SQLite transport: the worker, a task turning SUCCESS, queue lengths, a .dlq and purge', async () => {
  await eventually(async () => (await api<{ workers: WorkerView[] }>('/dashboard/api/workers')).workers.some((w) => w.hostname === HOST && w.online), 'the worker online', 15_000, 100);
  const r = await app.sendTask('s.mul', [6, 7]);
  assert.equal(await r.get({ timeout: 10_000 }), 42);
  const t = (await eventually(async () => {
    const v = await api<TaskView>(`/dashboard/api/task/${r.id}`);
    return v.state === 'SUCCESS' ? v : undefined;
  }, 'SUCCESS in the dashboard', 15_000, 100))!;
  assert.equal(t.result, '42');
  assert.equal(t.worker, HOST);

  for (let i = 0; i < 3; i++) await app.sendTask('s.mul', [i, i], {}, { queue: 'sq.dlq' });
  for (let i = 0; i < 2; i++) await app.sendTask('s.mul', [i, i], {}, { queue: 'parked' });
  const queues = await api<{ queues: { name: string; messages: number; dlq: number }[]; transport: string }>('/dashboard/api/queues');
  assert.equal(queues.transport, 'sqlite');
  assert.deepEqual(queues.queues.find((q) => q.name === 'sq'), { name: 'sq', messages: 0, dlq: 3, consumers: 1 });
  const dlq = await api<{ messages: { raw: string; task?: string; id?: string }[] }>('/dashboard/api/queue/sq/dlq?limit=2');
  assert.equal(dlq.messages.length, 2);
  assert.equal(dlq.messages[0]!.task, 's.mul');
  assert.match(dlq.messages[0]!.raw, /^\{/, 'the stored envelope, raw');
  const purged = await api<{ purged: number }>('/dashboard/api/queue/parked/purge', { method: 'POST', body: JSON.stringify({ confirm: 'parked' }) });
  assert.deepEqual(purged, { purged: 2 });
  const lengths = await api<{ active_queues: { name: string; messages: number }[] }>('/api/queues/length');
  assert.deepEqual(lengths.active_queues.find((q) => q.name === 'sq'), { name: 'sq', messages: 0 });
});
