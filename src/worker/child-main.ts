// Entry point of a thread-pool or process-pool child: load the app module, run tasks by name, report back.
import { parentPort } from 'node:worker_threads';
import { getHeapStatistics } from 'node:v8';
import { pathToFileURL } from 'node:url';
import type { WorkerHost } from './host.js';
import type { RetryOptions } from '../app/context.js';
import { NotRegistered, SoftTimeLimitExceeded, TaskRevokedError } from '../app/exceptions.js';
import { makeContext, outcomeOfError, RetryRequested, type WireOutcome } from './job.js';
import { GUARDED_SIGNALS, type ChildMessage, type ParentMessage } from './child-protocol.js';
import { fromCloneable, toCloneable } from '../protocol/cloneable.js';

const isThread = parentPort !== null;
const send = (m: ChildMessage): void => {
  if (parentPort) parentPort.postMessage(m);
  else process.send?.(m);
};
const running = new Map<string, AbortController>();
let app: WorkerHost | undefined;

function memoryKiB(): number {
  // A thread shares the process RSS, so it reports its own V8 heap instead.
  return Math.round((isThread ? getHeapStatistics().used_heap_size : process.memoryUsage().rss) / 1024);
}

async function loadApp(module: string): Promise<WorkerHost> {
  const mod = (await import(module.startsWith('file:') ? module : pathToFileURL(module).href)) as Record<string, unknown>;
  for (const c of [mod.app, mod.default, (mod.default as Record<string, unknown> | undefined)?.app, mod.celery]) {
    if (c && typeof c === 'object' && 'tasks' in c && 'conf' in c) return c as WorkerHost;
  }
  throw new Error(`${module} does not export an app (export const app = new Celeriac(...))`);
}

function reasonError(r: { name: string; message: string }): Error {
  if (r.name === 'SoftTimeLimitExceeded') return new SoftTimeLimitExceeded(r.message);
  if (r.name === 'TaskRevokedError') return new TaskRevokedError(r.message);
  const e = new Error(r.message);
  e.name = r.name;
  return e;
}

async function run(m: Extract<ParentMessage, { type: 'run' }>): Promise<void> {
  const { job } = m;
  const task = app!.tasks.get(job.taskName);
  let outcome: WireOutcome;
  const abort = new AbortController();
  running.set(job.key, abort);
  try {
    if (!task) throw new NotRegistered(job.taskName);
    const ctx = makeContext(task.name, job.request, abort.signal, {
      retry: (opts: RetryOptions) => new RetryRequested(opts),
      updateState: async (state, meta) => send({ type: 'updateState', key: job.key, state, meta: toCloneable(meta) }),
    });
    const value = await task.call(ctx, fromCloneable(job.args), fromCloneable(job.kwargs));
    outcome = { kind: 'success', value: toCloneable(value) };
  } catch (err) {
    outcome = outcomeOfError(err, abort.signal);
  } finally {
    running.delete(job.key);
  }
  try {
    send({ type: 'done', key: job.key, outcome, memoryKiB: memoryKiB() });
  } catch (err) {
    // The value could not be cloned: report that instead of hanging the job.
    send({ type: 'done', key: job.key, outcome: outcomeOfError(new TypeError(`Task ${job.taskName} returned a value that cannot be sent back to the worker: ${(err as Error).message}`)), memoryKiB: memoryKiB() });
  }
}

async function onMessage(m: ParentMessage): Promise<void> {
  if (m.type === 'init') {
    try {
      app = await loadApp(m.module);
      if (m.brokerUrl) app.conf.broker_url = m.brokerUrl;
      if (m.backendUrl !== undefined) app.conf.result_backend = m.backendUrl;
      send({ type: 'ready', pid: process.pid, tasks: [...app.tasks.keys()] });
    } catch (err) {
      send({ type: 'initError', message: (err as Error).message });
    }
  } else if (m.type === 'run') {
    void run(m);
  } else if (m.type === 'interrupt') {
    running.get(m.key)?.abort(reasonError(m.reason));
  }
}

if (parentPort) parentPort.on('message', (m: ParentMessage) => void onMessage(m));
else {
  process.on('message', (m: ParentMessage) => void onMessage(m));
  // The worker owns shutdown: a signal sent to the whole process group must not kill running tasks.
  for (const sig of GUARDED_SIGNALS) process.on(sig, () => undefined);
  process.on('disconnect', () => process.exit(0));
}
