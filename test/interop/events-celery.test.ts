// Task events of a Celeriac -E worker read by Celery's own event receiver (app.events.Receiver, what
// `celery events` and Flower use), with Celery 5.2.6 (Debian) and 5.6.3, on Redis. The worker sends
// task events as text bodies (body_encoding null, no base64) built directly in their escaped form:
// these tests fail if Celery cannot decode that envelope, if a field arrives changed (quotes, newlines,
// non-ASCII and astral characters in reprs), or if events are lost or duplicated under load.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { childEnv, ManagedProcess, PY_DIR, PYTHON, PYTHON56, requireCelery56, requirePythonCelery } from './harness.js';
import { redisDb, requireRedis, uniqueName } from '../helpers/services.js';
import { Celeriac } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import { repr, reprArgs } from '../../src/protocol/repr.js';
import path from 'node:path';

// test-timeout: 600000
const BROKER = redisDb(6);
const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
});

interface Capture {
  timed_out: boolean;
  counts: Record<string, number>;
  distinct: Record<string, number>;
  duplicates: number;
  clock_backwards: number;
  kept: Record<string, unknown>[];
}

/** Start event_capture.py with `python`; resolves once Celery's receiver is set up. */
async function startCapture(python: string, o: { hostname: string; expect: number; keep?: string[]; timeout?: number }): Promise<{ proc: ManagedProcess; result: Promise<Capture> }> {
  const proc = new ManagedProcess('event_capture.py', python, [path.join(PY_DIR, 'event_capture.py'), JSON.stringify({ broker: BROKER, ...o })], { cwd: PY_DIR, env: childEnv({}) });
  cleanup.push(() => proc.kill());
  const result = new Promise<Capture>((resolve, reject) => {
    proc.child.once('close', (code) => {
      const last = proc.logs.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      if (code !== 0 || !last) reject(new Error(`event_capture.py failed (exit ${code})\n${proc.tail()}`));
      else resolve(JSON.parse(last) as Capture);
    });
  });
  result.catch(() => undefined); // awaited by the test; a failure before then must not be unhandled
  await proc.waitForOutput(/^CAPTURING$/m, 30_000, 'the receiver to start');
  return { proc, result };
}

function tsApp(queue: string): Celeriac {
  const app = new Celeriac('events-celery', { broker: BROKER, backend: BROKER, task_default_queue: queue });
  app.task('ev.add', (x: number, y: number) => x + y);
  app.task('ev.echo', (...args: unknown[]) => args);
  app.task('ev.fail', (why: string) => {
    throw new TypeError(why);
  });
  cleanup.push(() => app.close());
  return app;
}

/** Strings a repr may carry: quotes, backslashes, a newline and a tab, non-ASCII, an astral character. */
const AWKWARD = ['it\'s "quoted" \\ here', 'line\nbreak\ttab', 'café ünïcödé', 'emoji 🎉 and 中文'];

const CELERIES = [
  { name: 'Celery 5.2.6', python: PYTHON, check: () => requirePythonCelery() },
  { name: 'Celery 5.6.3', python: PYTHON56, check: () => requireCelery56() },
];

for (const c of CELERIES) {
  test(`${c.name}'s event receiver reads a -E worker's task events field for field, awkward strings included`, { timeout: 180_000 }, async () => {
    await requireRedis();
    await c.check();
    const queue = uniqueName('evcel');
    const host = `${queue}@ts`;
    const app = tsApp(queue);
    const worker = app.worker({ hostname: host, concurrency: 4, taskEvents: true, heartbeatInterval: 0.5, logger: createLogger('critical'), mingle: false });
    // Ids known before the capture starts, so it can keep their events in full.
    const echoId = `echo-${queue}`;
    const failId = `fail-${queue}`;
    const plain = 30;
    const cap = await startCapture(c.python, { hostname: host, expect: plain + 2, keep: [echoId, failId], timeout: 60 });
    await worker.start();
    cleanup.push(() => worker.close());
    await cap.proc.waitForOutput(/^SEEN_WORKER$/m, 30_000, "the worker's first event");
    const echo = await app.sendTask('ev.echo', AWKWARD, {}, { taskId: echoId });
    const fail = await app.sendTask('ev.fail', [AWKWARD[0]!], {}, { taskId: failId });
    const adds = await app.sendTasks(Array.from({ length: plain }, (_, i) => ({ name: 'ev.add', args: [i, 1] })));
    assert.deepEqual(await echo.get({ timeout: 30_000 }), AWKWARD);
    await assert.rejects(fail.get({ timeout: 30_000 }));
    for (const [i, r] of adds.entries()) assert.equal(await r.get({ timeout: 30_000 }), i + 1);
    const got = await cap.result;

    assert.equal(got.timed_out, false, 'every task finished in events Celery decoded');
    assert.equal(got.duplicates, 0, 'no event twice');
    assert.equal(got.clock_backwards, 0, "task events arrive in the worker's clock order");
    assert.equal(got.distinct['task-received'], plain + 2);
    assert.equal(got.distinct['task-started'], plain + 2);
    assert.equal(got.distinct['task-succeeded'], plain + 1);
    assert.equal(got.distinct['task-failed'], 1);

    const of = (id: string, type: string) => {
      const e = got.kept.find((k) => k.uuid === id && k.type === type);
      assert.ok(e, `${type} of ${id} reached Celery's receiver`);
      return e;
    };
    const received = of(echoId, 'task-received');
    assert.equal(received.hostname, host);
    assert.equal(received.name, 'ev.echo');
    assert.equal(received.args, reprArgs(AWKWARD), 'args repr arrives character for character');
    assert.equal(received.kwargs, '{}');
    assert.equal(received.root_id, echoId);
    assert.equal(received.parent_id, null);
    assert.equal(received.retries, 0);
    assert.equal(received.eta, null);
    assert.equal(received.pid, process.pid);
    assert.equal(typeof received.clock, 'number');
    assert.equal(typeof received.timestamp, 'number');
    assert.ok(Math.abs((received.local_received as number) - (received.timestamp as number)) < 60, 'timestamp in seconds, as Celery reads it');
    assert.equal(typeof of(echoId, 'task-started').timestamp, 'number');
    const succeeded = of(echoId, 'task-succeeded');
    assert.equal(succeeded.result, repr(AWKWARD), 'result repr arrives character for character');
    assert.ok(typeof succeeded.runtime === 'number' && succeeded.runtime >= 0 && succeeded.runtime < 30, `runtime in seconds: ${succeeded.runtime}`);
    const failed = of(failId, 'task-failed');
    assert.equal(failed.exception, `TypeError(${repr(AWKWARD[0])})`);
    assert.match(String(failed.traceback), /TypeError/);
  });
}

test('10,000 tasks on a -E worker at concurrency 100: Celery 5.2.6\'s receiver sees exactly 10,000 of each task event, none twice', { timeout: 400_000 }, async () => {
  await requireRedis();
  await requirePythonCelery();
  const N = 10_000;
  const queue = uniqueName('evload');
  const host = `${queue}@ts`;
  const app = tsApp(queue);
  const worker = app.worker({ hostname: host, concurrency: 100, taskEvents: true, heartbeatInterval: 0.5, logger: createLogger('critical'), mingle: false });
  const cap = await startCapture(PYTHON, { hostname: host, expect: N, timeout: 90 });
  await worker.start();
  cleanup.push(() => worker.close());
  await cap.proc.waitForOutput(/^SEEN_WORKER$/m, 30_000, "the worker's first event");
  let done = 0;
  worker.on('taskPostrun', () => void done++);
  for (let i = 0; i < N; i += 1000) {
    await app.sendTasks(Array.from({ length: Math.min(1000, N - i) }, (_, j) => ({ name: 'ev.add', args: [i + j, 0], options: { ignoreResult: true } })));
  }
  const got = await cap.result;
  assert.equal(got.timed_out, false, `the receiver saw every task finish (it saw ${JSON.stringify(got.distinct)})`);
  assert.deepEqual(
    { received: got.counts['task-received'], started: got.counts['task-started'], succeeded: got.counts['task-succeeded'], failed: got.counts['task-failed'] ?? 0 },
    { received: N, started: N, succeeded: N, failed: 0 },
  );
  assert.equal(got.distinct['task-succeeded'], N);
  assert.equal(got.duplicates, 0);
  assert.equal(got.clock_backwards, 0);
  assert.equal(done, N);
});
