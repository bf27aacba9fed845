// TS tasks for the canvas interop tests, beside the interop app's ts.add / ts.mul. The record tasks
// RPUSH to the Redis result backend, so a test sees that a callback or errback ran, where, and with what.
import { Redis } from 'ioredis';
import type { Celeriac, TaskContext } from '../../../src/index.js';

/** A JS error that Python reads as its built-in ValueError. */
export class ValueError extends Error {
  override name = 'ValueError';
}

export function registerCanvasTasks(app: Celeriac, redisUrl: string): { close(): void } {
  let redis: Redis | undefined;
  const r = () => (redis ??= new Redis(redisUrl));
  app.task('ts.tsum', (xs: number[]) => xs.reduce((a, b) => a + b, 0));
  app.task('ts.double', (x: number) => x * 2);
  app.task('ts.fail_any', (..._args: unknown[]) => { throw new ValueError('bad thing'); });
  // Bound, so never called in-process as an errback: it is sent with the failed task's id.
  app.task('ts.record', async (task: TaskContext, value: unknown, key: string) => {
    await r().rpush(key, JSON.stringify({ lang: 'ts', value, id: task.request.id, parent_id: task.request.parentId }));
    return value;
  }, { bind: true });
  // Unbound and taking more than one argument: Celery calls such an errback in-process with (request, exc, traceback).
  app.task('ts.on_error', async (request: { id: string }, exc: Error, traceback: string | null, key: string) => {
    await r().rpush(key, JSON.stringify({ lang: 'ts', failed: request.id, exc: exc.name, message: exc.message, traceback: typeof traceback === 'string' }));
  });
  app.task('ts.collect', async (task: TaskContext, results: unknown[], key: string) => {
    await r().rpush(key, JSON.stringify({ lang: 'ts', n: results.length, id: task.request.id }));
    return results;
  }, { bind: true });
  return { close: () => redis?.disconnect() };
}
