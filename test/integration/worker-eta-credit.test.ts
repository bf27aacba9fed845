// #15 item 18: a worker holding many ETA messages keeps serving the rest of its queue, on every transport.
// 1,000 tasks with countdown=120, then one plain task, worker -c 10: the plain task runs at once, not
// when the countdowns expire.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Celeriac, type TaskEvent } from '../../src/index.js';
import { AMQP_URL, eventually, redisDb, requireRabbit, requireRedis, uniqueName } from '../helpers/services.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
});

const TRANSPORTS = [
  { name: 'memory', url: () => `memory://eta-credit-${process.pid}`, check: async () => undefined },
  { name: 'sqlite', url: () => `sqlite:///${path.join(mkdtempSync(path.join(tmpdir(), 'celeriac-eta-')), 'q.db')}`, check: async () => undefined },
  { name: 'redis', url: () => redisDb(9), check: requireRedis },
  { name: 'amqp', url: () => AMQP_URL, check: requireRabbit },
];

for (const t of TRANSPORTS) {
  test(`[${t.name}] 1,000 held countdown tasks do not stop a -c 10 worker from running the next plain task`, async () => {
    await t.check();
    const queue = uniqueName('eta-credit');
    const app = new Celeriac('eta-credit', { broker: t.url(), backend: 'memory://', task_default_queue: queue });
    const noop = app.task('eta.noop', (tag: string) => tag);
    const worker = app.worker({ concurrency: 10, loglevel: 'critical', remoteControl: false });
    const ran = new Set<string>();
    worker.on('taskSuccess', (e: TaskEvent) => ran.add(String(e.result)));
    await worker.start();
    cleanup.push(async () => {
      await worker.close();
      await (await app.broker()).purge(queue).catch(() => undefined);
      await app.close();
    });

    await noop.applyBulk(Array.from({ length: 1000 }, (_, i) => ({ args: [`later-${i}`], options: { countdown: 120 } })));
    await noop.applyAsync(['now']);
    const started = Date.now();
    // Before the fix the Redis worker held 160 ETA messages and fetched nothing more for 120 s.
    await eventually(() => ran.has('now'), 'the plain task to run while 1,000 ETA tasks are held', 60_000);
    assert.ok(Date.now() - started < 60_000);
    assert.equal([...ran].filter((r) => r.startsWith('later-')).length, 0, 'no countdown task ran early');
    await eventually(async () => (await (await app.broker()).queueLength(queue)) === 0, 'the worker to take every message', 30_000);
  });
}
