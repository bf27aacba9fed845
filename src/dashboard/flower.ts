// Flower's HTTP API (flower/api/*.py) with its JSON shapes, so scripts written against Flower work:
// workers, tasks, task info and result, async-apply, send-task, revoke, queue lengths, the worker
// actions (shutdown, pool grow/shrink/autoscale, add/cancel consumer) and per-task rate and time limits.
import type { Context, Hono } from 'hono';
import type { ControlReply } from '../control/replies.js';
import { boolParam, jsonResult, numberParam, type DashboardContext } from './context.js';
import type { TaskView } from './views.js';

/** celery.events.state.Task.as_dict(), with worker as its hostname (Flower's TaskInfo). */
export function flowerTask(t: TaskView, children: string[] = []): Record<string, unknown> {
  return {
    uuid: t.uuid, name: t.name, state: t.state, received: t.received, sent: t.sent, started: t.started, rejected: t.rejected,
    succeeded: t.succeeded, failed: t.failed, retried: t.retried, revoked: t.revoked, args: t.args, kwargs: t.kwargs, eta: t.eta,
    expires: t.expires, retries: t.retries, worker: t.worker, result: t.result, exception: t.exception, timestamp: t.timestamp,
    runtime: t.runtime, traceback: t.traceback, exchange: t.exchange, routing_key: t.routing_key, clock: t.clock, client: t.client,
    root: t.root_id, root_id: t.root_id, parent: t.parent_id, parent_id: t.parent_id, children,
  };
}

/** /api/tasks without a limit returns at most this many, as Flower keeps at most max_tasks (10,000). */
const FLOWER_MAX_TASKS = 10_000;

/** Flower's error replies: the status and the reason as text. */
function fail(c: Context, status: 400 | 403 | 404 | 503, message: string): Response {
  return c.text(message, status);
}

async function jsonBody(c: Context): Promise<Record<string, unknown> | Response> {
  const text = await c.req.text();
  if (!text) return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    return fail(c, 400, (err as Error).message);
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) return fail(c, 400, 'invalid options');
  return body as Record<string, unknown>;
}

/** The reason in a worker's `{ error }` reply (Flower's error_reason). */
function reason(worker: string, replies: ControlReply[]): string {
  for (const r of replies) {
    const v = r[worker] as { error?: unknown } | undefined;
    if (v) return String(v.error ?? 'Unknown reason');
  }
  return 'Unknown reason';
}

function okOf(worker: string, replies: ControlReply[] | void): string | undefined {
  const v = replies?.[0]?.[worker] as { ok?: unknown } | undefined;
  return v && 'ok' in v ? String(v.ok) : undefined;
}

export function flowerRoutes(r: Hono, d: DashboardContext): void {
  const { app, cluster } = d;

  r.get('/healthcheck', (c) => c.text('OK'));

  r.get('/api/workers', async (c) => {
    const workername = c.req.query('workername');
    if (boolParam(c.req.query('refresh'))) {
      try {
        await cluster.refreshWorkers(workername ? [workername] : undefined);
      } catch (err) {
        return fail(c, 503, `Failed to update workers: ${(err as Error).message}`);
      }
    }
    if (boolParam(c.req.query('status'))) return c.json(cluster.workerStatus());
    const all = cluster.flowerWorkers();
    if (workername) {
      if (!all[workername]) return fail(c, 404, `Unknown worker '${workername}'`);
      return c.json({ [workername]: all[workername] });
    }
    return c.json(all);
  });

  r.get('/api/tasks', (c) => {
    const q = c.req.query();
    const all = (v: string | undefined) => (v === 'All' ? undefined : v || undefined);
    const limit = numberParam(q.limit);
    const offset = Math.max(0, numberParam(q.offset) ?? 0);
    const toUnix = (v: string | undefined) => {
      if (!v) return undefined;
      const t = Date.parse(v.replace(' ', 'T'));
      return Number.isNaN(t) ? undefined : t / 1000;
    };
    cluster.flush();
    const { tasks } = d.store.tasks({
      state: all(q.state), name: all(q.taskname), worker: all(q.workername), since: toUnix(q.received_start), until: toUnix(q.received_end), timeField: 'received',
      search: q.search || undefined, limit: limit === undefined || Number.isNaN(limit) ? FLOWER_MAX_TASKS : limit, offset,
    });
    // Flower: { id: task } in the order found.
    const out: Record<string, Record<string, unknown>> = {};
    for (const t of tasks) out[t.uuid] = flowerTask(cluster.task(t.uuid) ?? t, d.store.children(t.uuid).map((ch) => ch.uuid));
    return c.json(out);
  });

  r.get('/api/task/types', (c) => c.json({ 'task-types': d.store.taskTypes() }));

  r.get('/api/task/info/:id', (c) => {
    const id = c.req.param('id');
    cluster.flush();
    const t = cluster.task(id);
    if (!t) return fail(c, 404, `Unknown task '${id}'`);
    return c.json(flowerTask(t, d.store.children(id).map((ch) => ch.uuid)));
  });

  r.get('/api/task/result/:id', async (c) => {
    const id = c.req.param('id');
    const backend = await app.backend();
    if (!backend) return fail(c, 503, 'No result backend is configured (result_backend).');
    const timeout = numberParam(c.req.query('timeout'));
    let meta = await backend.get(id);
    if (timeout && !['SUCCESS', 'FAILURE', 'REVOKED'].includes(String(meta.status))) {
      meta = await backend.wait(id, { timeout: timeout * 1000 }).catch(() => meta);
    }
    const state = String(meta.status);
    const out: Record<string, unknown> = { 'task-id': id, state };
    if (['SUCCESS', 'FAILURE', 'REVOKED'].includes(state) || (timeout && state !== 'PENDING')) {
      out.result = jsonResult(state, meta.result);
      if (state === 'FAILURE') out.traceback = meta.traceback;
    }
    return c.json(out);
  });

  const apply = async (c: Context, byName: boolean): Promise<Response> => {
    const name = c.req.param('name')!;
    const body = await jsonBody(c);
    if (body instanceof Response) return body;
    const { args = [], kwargs = {}, ...options } = body;
    if (!Array.isArray(args)) return fail(c, 400, 'args must be an array');
    if (!kwargs || typeof kwargs !== 'object' || Array.isArray(kwargs)) return fail(c, 400, 'kwargs must be an object');
    if (!byName && !app.tasks.has(name)) return fail(c, 404, `Unknown task '${name}'`);
    if (typeof options.eta === 'string') options.eta = new Date(options.eta.replace(' ', 'T') + (/[zZ]|[+-]\d\d:?\d\d$/.test(options.eta) ? '' : 'Z'));
    let result;
    try {
      result = await app.sendTask(name, args, kwargs as Record<string, unknown>, options);
    } catch (err) {
      return fail(c, 400, (err as Error).message);
    }
    const out: Record<string, unknown> = { 'task-id': result.id };
    if (await app.backend()) out.state = await result.state().catch(() => 'PENDING');
    return c.json(out);
  };
  r.post('/api/task/async-apply/:name', (c) => apply(c, false));
  r.post('/api/task/send-task/:name', (c) => apply(c, true));

  r.post('/api/task/revoke/:id', async (c) => {
    const id = c.req.param('id');
    const terminate = boolParam(c.req.query('terminate'));
    const signal = c.req.query('signal') || 'SIGTERM';
    await app.control.revoke(id, { terminate, signal });
    return c.json({ message: `Revoked '${id}'` });
  });

  r.get('/api/queues/length', async (c) => {
    const queues = await d.queues.list();
    return c.json({ active_queues: queues.map((q) => ({ name: q.name, messages: q.messages })) });
  });

  // Worker actions: Flower answers { message } on success, 403 with the worker's reason otherwise.
  const known = (c: Context, name: string): Response | undefined => (cluster.hasWorker(name) ? undefined : fail(c, 404, `Unknown worker '${name}'`));
  const control = async (c: Context, name: string, run: () => Promise<ControlReply[] | void>, success: (ok: string) => string, failure: string): Promise<Response> => {
    const unknown = known(c, name);
    if (unknown) return unknown;
    const replies = await run();
    const ok = okOf(name, replies);
    if (ok !== undefined) return c.json({ message: success(ok) });
    return c.text(`${failure}: ${replies?.length ? reason(name, replies) : 'no reply from the worker'}`, 403);
  };
  const opts = (name: string) => ({ reply: true as const, destination: [name], timeout: 5 });
  const intParam = (v: string | undefined, dflt: number) => {
    const n = numberParam(v);
    return n === undefined ? dflt : Math.trunc(n);
  };

  r.post('/api/worker/shutdown/:name', async (c) => {
    const name = c.req.param('name');
    const unknown = known(c, name);
    if (unknown) return unknown;
    await app.control.shutdown({ destination: [name] });
    return c.json({ message: 'Shutting down!' });
  });
  r.post('/api/worker/pool/grow/:name', (c) => {
    const name = c.req.param('name');
    const n = intParam(c.req.query('n'), 1);
    return control(c, name, () => app.control.poolGrow(n, opts(name)), () => `Growing '${name}' worker's pool by ${n}`, `Failed to grow '${name}' worker's pool`);
  });
  r.post('/api/worker/pool/shrink/:name', (c) => {
    const name = c.req.param('name');
    const n = intParam(c.req.query('n'), 1);
    return control(c, name, () => app.control.poolShrink(n, opts(name)), () => `Shrinking '${name}' worker's pool by ${n}`, `Failed to shrink '${name}' worker's pool`);
  });
  r.post('/api/worker/pool/autoscale/:name', (c) => {
    const name = c.req.param('name');
    const min = numberParam(c.req.query('min'));
    const max = numberParam(c.req.query('max'));
    if (min === undefined || max === undefined || Number.isNaN(min) || Number.isNaN(max)) return fail(c, 400, 'autoscale takes min and max, e.g. ?min=2&max=8');
    return control(c, name, () => app.control.autoscale(max, min, opts(name)), () => `Autoscaling '${name}' worker (min=${min}, max=${max})`, `Failed to autoscale '${name}' worker`);
  });
  r.post('/api/worker/queue/add-consumer/:name', (c) => {
    const name = c.req.param('name');
    const queue = c.req.query('queue');
    if (!queue) return fail(c, 400, 'add-consumer takes ?queue=<name>');
    return control(c, name, () => app.control.addConsumer(queue, opts(name)), (ok) => ok, `Failed to add '${queue}' consumer to '${name}' worker`);
  });
  r.post('/api/worker/queue/cancel-consumer/:name', (c) => {
    const name = c.req.param('name');
    const queue = c.req.query('queue');
    if (!queue) return fail(c, 400, 'cancel-consumer takes ?queue=<name>');
    return control(c, name, () => app.control.cancelConsumer(queue, opts(name)), (ok) => ok, `Failed to cancel '${queue}' consumer from '${name}' worker`);
  });
  r.post('/api/task/rate-limit/:taskname', (c) => {
    const task = c.req.param('taskname');
    const name = c.req.query('workername');
    const limit = c.req.query('ratelimit');
    if (!name || limit === undefined) return fail(c, 400, 'rate-limit takes ?workername=<node>&ratelimit=<e.g. 10/m>');
    return control(c, name, () => app.control.rateLimit(task, limit, opts(name)), (ok) => ok, 'Failed to set rate limit');
  });
  r.post('/api/task/timeout/:taskname', (c) => {
    const task = c.req.param('taskname');
    const name = c.req.query('workername');
    if (!name) return fail(c, 400, 'timeout takes ?workername=<node>&soft=<s>&hard=<s>');
    const soft = numberParam(c.req.query('soft')) ?? null;
    const hard = numberParam(c.req.query('hard')) ?? null;
    return control(c, name, () => app.control.timeLimit(task, { soft, hard }, opts(name)), (ok) => ok, 'Failed to set timeouts');
  });
}
