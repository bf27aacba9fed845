// Tasks for the worker tests. Thread/process pool children import this module and take `app`;
// the worker overrides its broker and backend, so one module serves every broker under test.
import { appendFileSync } from 'node:fs';
import { isMainThread, threadId } from 'node:worker_threads';

const hoard: unknown[] = [];
import { setTimeout as sleep } from 'node:timers/promises';
import { Celeriac, SoftTimeLimitExceeded } from '../../src/index.js';

export class FlakyError extends Error {
  override name = 'FlakyError';
}

export function register(app: Celeriac): Celeriac {
  app.task('w.add', (x: number, y: number) => x + y);
  app.task('w.echo', (v: unknown) => v, { exactFloats: true });
  app.task('w.kind', (v: unknown) => (v === null || v === undefined ? String(v) : (v as object).constructor.name), { exactFloats: true });
  app.task('w.pid', () => ({ pid: process.pid, thread: Number(process.env.__never ?? 0) }));
  app.task('w.busy', (ms: number) => {
    const end = Date.now() + ms;
    let n = 0;
    while (Date.now() < end) n++;
    return n > 0;
  });
  app.task('w.sleep', async (task, ms: number, tag: string) => {
    await sleep(ms, undefined, { signal: task.signal });
    return tag;
  }, { bind: true });
  app.task('w.soft', async (task, ms: number) => {
    try {
      await sleep(ms, undefined, { signal: task.signal });
      return 'finished';
    } catch (err) {
      // A cancelled await rejects with AbortError whose cause is the signal's reason.
      if (err instanceof SoftTimeLimitExceeded || (err as Error).cause instanceof SoftTimeLimitExceeded) return 'soft-caught';
      throw err;
    }
  }, { bind: true });
  app.task('w.die', (how: string) => {
    // process.abort() is not available in worker threads; a thread exits instead.
    if (how === 'abort' && isMainThread) process.abort();
    if (how === 'kill' && isMainThread) process.kill(process.pid, 'SIGKILL');
    process.exit(3);
  });
  app.task('w.retry', (task, until: number) => {
    if (task.request.retries < until) task.retry({ countdown: 0.2, exc: new FlakyError(`attempt ${task.request.retries}`) });
    return { retries: task.request.retries };
  }, { bind: true, maxRetries: 5 });
  app.task('w.always_retry', (task) => task.retry({ countdown: 0.1, maxRetries: 2 }), { bind: true });
  app.task('w.flaky', (task, until: number) => {
    if (task.request.retries < until) throw new FlakyError(`flaky ${task.request.retries}`);
    return task.request.retries;
  }, { bind: true, autoretryFor: [FlakyError], retryBackoff: 1, retryBackoffMax: 1, retryJitter: false, maxRetries: 3 });
  app.task('w.fail', () => {
    throw new TypeError('boom');
  });
  app.task('w.ledger', async (file: string, id: string, ms: number) => {
    appendFileSync(file, `start ${id}\n`);
    await sleep(ms);
    appendFileSync(file, `end ${id}\n`);
    return id;
  });
  app.task('w.limited', (id: number) => ({ id, at: Date.now() }), { rateLimit: '5/s' });
  app.task('w.where', () => ({ pid: process.pid, mainThread: isMainThread, threadId }));
  // Keeps `mb` MiB alive in the child (V8 heap and RSS), for worker_max_memory_per_child.
  app.task('w.hog', (mb: number) => {
    hoard.push(new Array(mb * 131_072).fill(1.5));
    return { pid: process.pid, threadId };
  });
  app.task('w.ledger_late', async (file: string, id: string, ms: number) => {
    appendFileSync(file, `start ${id}\n`);
    await sleep(ms);
    appendFileSync(file, `end ${id}\n`);
    return id;
  }, { acksLate: true });
  return app;
}

export function makeApp(broker: string, backend: string, settings: Record<string, unknown> = {}): Celeriac {
  return register(new Celeriac('worker-tests', { broker, backend, ...settings }));
}

export const app = makeApp(process.env.CELERIAC_WT_BROKER ?? 'memory://', process.env.CELERIAC_WT_BACKEND ?? 'memory://');
