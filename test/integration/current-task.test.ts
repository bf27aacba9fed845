// currentTask() in the async pool: async handlers keep their context across awaits, plain handlers see it
// while they run, and concurrent tasks never see each other's context.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, currentTask } from '../../src/index.js';
import { uniqueName } from '../helpers/services.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('currentTask() returns each running task its own request, before and after awaits', async () => {
  const url = `memory://${uniqueName('ctx')}`;
  const app = new Celeriac('ctx', { broker: url, backend: url });
  const helper = () => currentTask()?.request.id ?? null;
  const plain = app.task('ctx.plain', (n: number) => ({ n, id: helper() }));
  const awaited = app.task('ctx.awaited', async (n: number) => {
    const before = helper();
    await sleep(5 + (n % 7));
    const after = helper();
    await Promise.resolve();
    return { n, before, after, last: helper() };
  });
  // A plain function returning a promise: context while it runs synchronously.
  const thenable = app.task('ctx.thenable', (n: number) => {
    const id = helper();
    return sleep(2).then(() => ({ n, id }));
  });
  const worker = app.worker({ queues: ['celery'], concurrency: 20, loglevel: 'error' });
  await worker.start();
  try {
    const calls = [] as Promise<{ id: string; value: Promise<unknown> }>[];
    for (let n = 0; n < 30; n++) {
      for (const t of [plain, awaited, thenable] as const) {
        calls.push((t.delay as (n: number) => ReturnType<typeof plain.delay>)(n).then((r) => ({ id: r.id, value: r.get({ timeout: 10_000 }) })));
      }
    }
    let checked = 0;
    for (const c of await Promise.all(calls)) {
      const v = (await c.value) as Record<string, unknown>;
      if ('before' in v) {
        assert.equal(v.before, c.id);
        assert.equal(v.after, c.id, 'context survives an await in an async handler');
        assert.equal(v.last, c.id);
      } else {
        assert.equal(v.id, c.id);
      }
      checked++;
    }
    assert.equal(checked, 90);
    assert.equal(currentTask(), undefined, 'no task context outside a task');
  } finally {
    await worker.close();
    await app.close();
  }
});
