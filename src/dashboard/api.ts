// The JSON the dashboard's own UI reads (/dashboard/api/*) and its live stream (/api/stream, SSE).
import type { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { numberParam, type DashboardContext } from './context.js';
import { LiteralError, parseArgsRepr, parseKwargsRepr } from './literal.js';
import { RUNTIME_BOUNDS, percentile } from './charts.js';
import type { Changes } from './ingest.js';

/** States a task can be sent again from (it is over, and did not succeed). */
const RETRYABLE = new Set(['FAILURE', 'REVOKED', 'REJECTED']);
/** Task messages one SSE client gets per tick at most (the latest changes win; the UI lists 100). */
const STREAM_TASKS_PER_TICK = 200;

export function dashboardRoutes(r: Hono, d: DashboardContext): void {
  const { app, cluster, store, queues } = d;

  r.get('/dashboard/api/workers', (c) => c.json({ workers: cluster.workerViews() }));

  r.get('/dashboard/api/tasks', (c) => {
    const q = c.req.query();
    const limit = numberParam(q.limit) ?? 100;
    const offset = numberParam(q.offset) ?? 0;
    if (Number.isNaN(limit) || Number.isNaN(offset) || limit < 0 || offset < 0) return c.json({ error: 'limit and offset take whole numbers of at least 0' }, 400);
    const since = numberParam(q.since);
    const until = numberParam(q.until);
    if (Number.isNaN(since) || Number.isNaN(until)) return c.json({ error: 'since and until take unix seconds' }, 400);
    cluster.flush(); // what arrived in this tick is listed too
    return c.json(store.tasks({ state: q.state || undefined, name: q.name || undefined, worker: q.worker || undefined, since, until, search: q.search || undefined, limit: Math.min(limit, 1000), offset }));
  });

  r.get('/dashboard/api/task/:id', (c) => {
    const id = c.req.param('id');
    cluster.flush(); // its children of this tick are found too
    const t = cluster.task(id);
    if (!t) return c.json({ error: `Unknown task '${id}': no event for it has reached the dashboard (within the retention).` }, 404);
    const parent = t.parent_id ? cluster.task(t.parent_id) : undefined;
    const group = t.group_id ? store.group(t.group_id) : undefined;
    return c.json({ ...t, children: store.children(id), ...(parent ? { parent } : {}), ...(group ? { group } : {}) });
  });

  r.post('/dashboard/api/task/:id/retry', async (c) => {
    const id = c.req.param('id');
    const t = cluster.task(id);
    if (!t) return c.json({ error: `Unknown task '${id}'` }, 404);
    if (!RETRYABLE.has(t.state)) return c.json({ error: `Task ${id} is ${t.state}: only a FAILURE, REVOKED or REJECTED task can be sent again.` }, 409);
    if (!t.name) return c.json({ error: `Task ${id} has no name in its events, so it cannot be sent again.` }, 409);
    let args: unknown[];
    let kwargs: Record<string, unknown>;
    try {
      args = parseArgsRepr(t.args);
      kwargs = parseKwargsRepr(t.kwargs);
    } catch (err) {
      if (err instanceof LiteralError) return c.json({ error: `Task ${id} cannot be sent again: ${err.message}` }, 409);
      throw err;
    }
    const queue = t.routing_key || undefined;
    const result = await app.sendTask(t.name, args, kwargs, queue ? { queue } : {});
    return c.json({ task_id: result.id });
  });

  r.get('/dashboard/api/queues', async (c) => c.json({ queues: await queues.list(), transport: await queues.transport() }));

  r.get('/dashboard/api/queue/:name/dlq', async (c) => {
    const name = c.req.param('name');
    const limit = Math.min(1000, Math.max(1, numberParam(c.req.query('limit')) || 50));
    return c.json({ queue: `${name}.dlq`, messages: await queues.deadLetters(name, limit) });
  });

  r.post('/dashboard/api/queue/:name/purge', async (c) => {
    const name = c.req.param('name');
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      body = undefined;
    }
    if (!body || typeof body !== 'object' || (body as { confirm?: unknown }).confirm !== name) {
      return c.json({ error: `Purging removes every waiting message of ${name}: send {"confirm": ${JSON.stringify(name)}} to confirm.` }, 400);
    }
    return c.json({ purged: await queues.purge(name) });
  });

  r.get('/dashboard/api/charts', (c) => {
    const minutes = Math.min(7 * 24 * 60, Math.max(1, numberParam(c.req.query('minutes')) || 60));
    cluster.flush();
    const since = Math.floor(Date.now() / 1000 / 60) * 60 - (minutes - 1) * 60;
    const buckets = store.minutes(since).map((m) => ({
      t: m.t, succeeded: m.succeeded, failed: m.failed, retried: m.retried, received: m.received,
      p50: percentile(m.runtimes, 0.5), p95: percentile(m.runtimes, 0.95), p99: percentile(m.runtimes, 0.99),
    }));
    return c.json({ buckets, queues: store.queueSamples(since), runtimeResolution: RUNTIME_BOUNDS[1]! / RUNTIME_BOUNDS[0]! });
  });

  r.get('/api/stream', (c) => streamSSE(c, async (stream) => {
    const queued: Changes[] = [];
    let wake: (() => void) | undefined;
    const off = cluster.onChange((ch) => {
      queued.push(ch);
      wake?.();
    });
    let open = true;
    stream.onAbort(() => {
      open = false;
      wake?.();
    });
    // The workers as they are now, so a fresh page needs no second request to be current.
    for (const w of cluster.workerViews()) await stream.writeSSE({ event: 'worker', data: JSON.stringify(w) });
    let lastWrite = Date.now();
    try {
      while (open) {
        if (queued.length === 0) {
          await new Promise<void>((res) => {
            wake = res;
            setTimeout(res, 15_000).unref();
          });
          wake = undefined;
          if (!open) break;
          if (queued.length === 0 && Date.now() - lastWrite >= 15_000) {
            await stream.write(': keep-alive\n\n');
            lastWrite = Date.now();
          }
          continue;
        }
        const batch = queued.splice(0);
        const workers = new Map(batch.flatMap((b) => b.workers).map((w) => [w.hostname, w]));
        const tasks = new Map(batch.flatMap((b) => b.tasks).map((t) => [t.uuid, t]));
        for (const w of workers.values()) await stream.writeSSE({ event: 'worker', data: JSON.stringify(w) });
        const latest = [...tasks.values()].slice(-STREAM_TASKS_PER_TICK);
        for (const t of latest) await stream.writeSSE({ event: 'task', data: JSON.stringify(t) });
        lastWrite = Date.now();
      }
    } finally {
      off();
    }
  }));
}

