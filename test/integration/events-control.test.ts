// Issue #19 on every transport (memory, SQLite, Redis, RabbitMQ): a -E worker's task and worker events
// reach a receiver with Celery's fields, and every inspect and control command answers as Celery's do.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Celeriac, EventReceiver, State, type CeleryEvent } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import type { TaskInfo, ScheduledInfo, WorkerStats, QueueInfo } from '../../src/control/replies.js';
import { eventually, sleep, uniqueName } from '../helpers/services.js';
import { allTransports, type Transport } from '../helpers/transports.js';

// test-locks: redis-db-7
const TRANSPORTS = allTransports('events', 7);

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
});

function setup(t: Transport, queue: string, settings: Record<string, unknown> = {}) {
  const backend = `memory://${queue}`;
  const app = new Celeriac('events', { broker: t.url(), backend, task_default_queue: queue, ...settings });
  app.task('t.add', (x: number, y: number) => x + y);
  app.task('t.fail', (msg: string) => {
    throw new TypeError(msg);
  });
  cleanup.push(() => app.close());
  return app;
}

for (const t of TRANSPORTS) {
  test(`[${t.name}] requests in flight together from one client each get their own replies, and the client stays up`, async () => {
    await t.check();
    const queue = uniqueName(`together-${t.name}`);
    const hostname = `${queue}@together`;
    const app = setup(t, queue);
    const worker = app.worker({ hostname, concurrency: 1, logger: createLogger('critical'), mingle: false });
    await worker.start();
    cleanup.push(() => worker.close());
    const inspect = app.control.inspect({ destination: [hostname], timeout: 10 });
    for (let round = 0; round < 3; round++) {
      // Started together, ended one after another: each closes its listening while the others still wait.
      const [ping, registered, stats, revoked] = await Promise.all([inspect.ping(), inspect.registered(), inspect.stats(), inspect.revoked()]);
      assert.deepEqual(ping, { [hostname]: { ok: 'pong' } });
      assert.deepEqual(registered[hostname], ['t.add', 't.fail']);
      assert.equal(typeof stats[hostname]?.pid, 'number');
      assert.deepEqual(revoked[hostname], []);
    }
  });

  test(`[${t.name}] a -E worker's task and worker events reach a receiver, with Celery's fields, and leave it in State`, async () => {
    await t.check();
    const queue = uniqueName(`ev-${t.name}`);
    const hostname = `${queue}@events`;
    const app = setup(t, queue);
    const events: CeleryEvent[] = [];
    const state = new State();
    const receiver = new EventReceiver(app, { wakeup: false });
    receiver.on('*', (e) => {
      if (e.hostname !== hostname) return; // other tests share the exchange
      events.push(e);
      state.event(e);
    });
    const succeeded: string[] = [];
    receiver.on('task-succeeded', (e) => succeeded.push(e.result));
    await receiver.start();
    cleanup.push(() => receiver.close());
    const worker = app.worker({ hostname, concurrency: 2, taskEvents: true, heartbeatInterval: 0.5, logger: createLogger('critical'), mingle: false });
    await worker.start();
    const ok = await app.sendTask('t.add', [2, 3]);
    const bad = await app.sendTask('t.fail', ['boom']);
    assert.equal(await ok.get({ timeout: 10_000 }), 5);
    await assert.rejects(bad.get({ timeout: 10_000 }));
    const types = () => events.map((e) => e.type);
    await eventually(() => ['worker-online', 'worker-heartbeat', 'task-received', 'task-started', 'task-succeeded', 'task-failed'].every((x) => types().includes(x)), 'every event type', 15_000);
    await worker.close();
    await eventually(() => types().includes('worker-offline'), 'worker-offline at shutdown', 10_000);

    const of = (type: string, id: string) => events.find((e) => e.type === type && (e as { uuid?: string }).uuid === id) as Record<string, unknown>;
    const received = of('task-received', ok.id);
    assert.deepEqual(Object.keys(received).slice(0, 4), ['hostname', 'utcoffset', 'pid', 'clock']);
    assert.equal(received.name, 't.add');
    assert.equal(received.args, '(2, 3)');
    assert.equal(received.kwargs, '{}');
    assert.equal(received.retries, 0);
    assert.equal(received.root_id, ok.id);
    assert.equal(received.eta, null);
    assert.equal(of('task-succeeded', ok.id).result, '5', 'the result as its repr');
    assert.equal(typeof of('task-succeeded', ok.id).runtime, 'number');
    assert.deepEqual(succeeded, ['5'], 'typed handlers get their type only');
    const failed = of('task-failed', bad.id);
    assert.equal(failed.exception, "TypeError('boom')");
    assert.match(String(failed.traceback), /boom/);
    assert.ok(of('task-started', ok.id), 'task-started');
    const hb = events.find((e) => e.type === 'worker-heartbeat') as Record<string, unknown>;
    assert.equal(hb.freq, 0.5);
    assert.equal(hb.sw_ident, 'celeriac');
    assert.equal((hb.loadavg as number[]).length, 3);
    assert.equal(typeof hb.local_received, 'number', 'the receiver stamps local_received');
    const clocks = events.map((e) => e.clock);
    assert.deepEqual([...clocks].sort((a, b) => a - b), clocks.slice().sort((a, b) => a - b));
    assert.equal(new Set(clocks).size, clocks.length, 'one clock value per event of one sender');
    assert.equal(state.tasks.get(ok.id)!.state, 'SUCCESS');
    assert.equal(state.tasks.get(bad.id)!.state, 'FAILURE');
    assert.equal(state.tasks.get(ok.id)!.worker?.hostname, hostname);
    assert.equal(state.workers.has(hostname), false, 'worker-offline takes the worker out of the state');
  });

  test(`[${t.name}] task events are off without -E, and enable_events / disable_events turn them on and off`, async () => {
    await t.check();
    const queue = uniqueName(`evtoggle-${t.name}`);
    const hostname = `${queue}@events`;
    const app = setup(t, queue);
    const seen: string[] = [];
    const receiver = new EventReceiver(app, { wakeup: false }).on('*', (e) => {
      if (e.hostname === hostname) seen.push(e.type);
    });
    await receiver.start();
    cleanup.push(() => receiver.close());
    const worker = app.worker({ hostname, concurrency: 1, heartbeatInterval: 0.3, logger: createLogger('critical'), mingle: false });
    await worker.start();
    cleanup.push(() => worker.close());
    assert.equal(await (await app.sendTask('t.add', [1, 1])).get({ timeout: 10_000 }), 2);
    await eventually(() => seen.includes('worker-heartbeat'), 'heartbeats without -E', 10_000);
    assert.equal(seen.filter((x) => x.startsWith('task-')).length, 0, 'no task events without -E');
    assert.deepEqual(await app.control.enableEvents({ reply: true, destination: [hostname], timeout: 10 }), [{ [hostname]: { ok: 'task events enabled' } }]);
    assert.deepEqual(await app.control.enableEvents({ reply: true, destination: [hostname], timeout: 10 }), [{ [hostname]: { ok: 'task events already enabled' } }]);
    const r = await app.sendTask('t.add', [2, 2]);
    assert.equal(await r.get({ timeout: 10_000 }), 4);
    await eventually(() => seen.includes('task-succeeded'), 'task events once enabled', 10_000);
    assert.deepEqual(await app.control.disableEvents({ reply: true, destination: [hostname], timeout: 10 }), [{ [hostname]: { ok: 'task events disabled' } }]);
    const before = seen.length;
    assert.equal(await (await app.sendTask('t.add', [3, 3])).get({ timeout: 10_000 }), 6);
    await sleep(500);
    assert.equal(seen.slice(before).filter((x) => x.startsWith('task-')).length, 0, 'none once disabled');
    // The heartbeat command answers (null, as Celery's) and a heartbeat follows at once.
    const beats = seen.filter((x) => x === 'worker-heartbeat').length;
    assert.deepEqual(await app.control.heartbeat({ reply: true, destination: [hostname], timeout: 10 }), [{ [hostname]: null }]);
    await eventually(() => seen.filter((x) => x === 'worker-heartbeat').length > beats, 'the requested heartbeat', 5000);
  });

  test(`[${t.name}] inspect: active, reserved, scheduled, query_task, registered, stats, revoked, active_queues, conf, report, clock`, async () => {
    await t.check();
    const queue = uniqueName(`insp-${t.name}`);
    const hostname = `${queue}@inspect`;
    const app = setup(t, queue);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    app.task('t.block', async () => {
      await gate;
      return 'released';
    });
    app.task('t.limited', () => 1, { rateLimit: '100/s' });
    const worker = app.worker({ hostname, concurrency: 1, logger: createLogger('critical'), mingle: false });
    await worker.start();
    cleanup.push(async () => { release(); await worker.close(); });
    const inspect = app.control.inspect({ destination: [hostname], timeout: 10 });
    const block = await app.sendTask('t.block');
    await eventually(async () => ((await inspect.active())[hostname] ?? []).length === 1, 'the blocking task to run');
    const waiting = [await app.sendTask('t.add', [1, 2]), await app.sendTask('t.add', [3, 4])];
    const later = await app.sendTask('t.add', [5, 6], {}, { countdown: 120 });

    const [active] = (await inspect.active())[hostname] as TaskInfo[];
    assert.equal(active!.id, block.id);
    assert.equal(active!.name, 't.block');
    assert.equal(active!.hostname, hostname);
    assert.equal(active!.acknowledged, true, 'acked early, as Celery by default');
    assert.equal(typeof active!.time_start, 'number');
    assert.equal(active!.worker_pid, process.pid);
    assert.deepEqual(Object.keys(active!), ['id', 'name', 'args', 'kwargs', 'type', 'hostname', 'time_start', 'acknowledged', 'delivery_info', 'worker_pid']);
    await eventually(async () => ((await inspect.reserved())[hostname] ?? []).length === 2, 'two tasks waiting for the one slot');
    const reserved = (await inspect.reserved())[hostname] as TaskInfo[];
    assert.deepEqual(reserved.map((r) => r.id), waiting.map((r) => r.id));
    assert.equal(reserved[0]!.time_start, null);
    assert.deepEqual((await app.control.inspect({ destination: [hostname], timeout: 10 }).request<TaskInfo[]>('reserved', { safe: true }))[hostname]![0]!.args, '(1, 2)', 'safe: arguments as repr');
    await eventually(async () => ((await inspect.scheduled())[hostname] ?? []).length === 1, 'the countdown task held');
    const [scheduled] = (await inspect.scheduled())[hostname] as ScheduledInfo[];
    assert.equal(scheduled!.request.id, later.id);
    assert.equal(scheduled!.priority, 6);
    assert.ok(Date.parse(scheduled!.eta!) > Date.now() + 60_000, 'the ETA, as an ISO time');
    const query = (await inspect.queryTask(block.id, waiting[0]!.id, 'no-such-id'))[hostname]!;
    assert.deepEqual(Object.keys(query).sort(), [block.id, waiting[0]!.id].sort());
    assert.equal(query[block.id]![0], 'active');
    assert.equal(query[waiting[0]!.id]![0], 'reserved');

    // Celery's default attributes (exchange, routing_key, rate_limit) are shown where a task sets them.
    assert.deepEqual((await inspect.registered())[hostname], ['t.add', 't.block', 't.fail', 't.limited [rate_limit=100/s]']);
    assert.deepEqual((await inspect.registered('acks_late'))[hostname], ['t.add', 't.block', 't.fail', 't.limited']);
    const stats = (await inspect.stats())[hostname] as WorkerStats;
    assert.equal(stats.pid, process.pid);
    assert.equal(stats.pool['max-concurrency'], 1);
    assert.equal(stats.prefetch_count, 4);
    assert.equal(stats.broker.transport, t.name);
    assert.match(stats.clock, /^\d+$/);
    assert.equal(typeof stats.uptime, 'number');
    assert.equal(typeof (stats.rusage as Record<string, number>).utime, 'number');
    assert.ok((stats.rusage as Record<string, number>).maxrss > 0);

    const revokeReply = await app.control.revoke(later.id, { reply: true, destination: [hostname], timeout: 10 });
    assert.deepEqual(revokeReply, [{ [hostname]: { ok: `tasks {'${later.id}'} flagged as revoked` } }]);
    assert.ok(((await inspect.revoked())[hostname] as string[]).includes(later.id));
    await eventually(async () => ((await inspect.scheduled())[hostname] ?? []).length === 0, 'the revoked ETA task dropped');

    const [q] = (await inspect.activeQueues())[hostname] as QueueInfo[];
    assert.equal(q!.name, queue);
    assert.deepEqual(q!.exchange.name, queue);
    assert.equal(q!.exchange.type, 'direct');
    assert.equal(q!.routing_key, queue);
    const conf = (await inspect.conf())[hostname]!;
    assert.equal(conf.task_default_queue, queue, 'settings changed from the defaults');
    assert.equal('task_acks_late' in conf, false, 'defaults left out');
    assert.equal((await inspect.conf(true))[hostname]!.task_acks_late, false, 'with defaults');
    assert.match(String(((await inspect.report())[hostname] as { ok: string }).ok), /software -> celeriac:/);
    assert.equal(typeof ((await inspect.clock())[hostname] as { clock: number }).clock, 'number');
    release();
    assert.equal(await block.get({ timeout: 10_000 }), 'released');
  });

  test(`[${t.name}] control: rate_limit, time_limit, pool_grow, pool_shrink, autoscale, add_consumer, cancel_consumer; pattern, matcher and limit`, async () => {
    await t.check();
    const queue = uniqueName(`ctl-${t.name}`);
    const hostname = `${queue}@control`;
    const app = setup(t, queue);
    const worker = app.worker({ hostname, concurrency: 1, logger: createLogger('critical'), mingle: false });
    await worker.start();
    cleanup.push(() => worker.close());
    const one = { reply: true as const, destination: [hostname], timeout: 10 };
    const reply = async (p: Promise<unknown>) => ((await p) as Record<string, unknown>[])[0]![hostname];
    assert.deepEqual(await reply(app.control.rateLimit('t.add', '5/s', one)), { ok: 'new rate limit set successfully' });
    assert.deepEqual(await reply(app.control.rateLimit('t.nope', '5/s', one)), { error: 'unknown task' });
    assert.match(String((await reply(app.control.rateLimit('t.add', 'fast', one)) as { error: string }).error), /^Invalid rate limit string/);
    assert.deepEqual(await reply(app.control.rateLimit('t.add', null, one)), { ok: 'rate limit disabled successfully' });
    assert.deepEqual(await reply(app.control.timeLimit('t.add', { soft: 10, hard: 20 }, one)), { ok: 'time limits set successfully' });
    assert.deepEqual(worker.runtime.timeLimits.get('t.add'), { soft: 10, hard: 20 });
    assert.deepEqual(await reply(app.control.poolGrow(2, one)), { ok: 'pool will grow' });
    const stats = async () => ((await app.control.inspect({ destination: [hostname], timeout: 10 }).stats())[hostname] as WorkerStats);
    assert.equal((await stats()).pool['max-concurrency'], 3);
    assert.equal((await stats()).prefetch_count, 12, 'prefetch follows the pool');
    assert.deepEqual(await reply(app.control.poolShrink(1, one)), { ok: 'pool will shrink' });
    assert.equal((await stats()).pool['max-concurrency'], 2);
    assert.match(String((await reply(app.control.poolShrink(5, one)) as { error: string }).error), /keeps at least 1/);
    assert.deepEqual(await reply(app.control.autoscale(4, 2, one)), { error: 'Autoscale not enabled' });

    const other = `${queue}-extra`;
    assert.deepEqual(await reply(app.control.addConsumer(other, one)), { ok: `add consumer ${other}` });
    await eventually(async () => ((await app.control.inspect({ destination: [hostname], timeout: 10 }).activeQueues())[hostname] as QueueInfo[]).length === 2, 'two queues');
    const extra = await app.sendTask('t.add', [10, 1], {}, { queue: other });
    assert.equal(await extra.get({ timeout: 10_000 }), 11, 'a task on the added queue runs');
    assert.deepEqual(await reply(app.control.cancelConsumer(queue, one)), { ok: `no longer consuming from ${queue}` });
    await eventually(async () => ((await app.control.inspect({ destination: [hostname], timeout: 10 }).activeQueues())[hostname] as QueueInfo[]).map((q) => q.name).join() === other, 'only the added queue');
    await app.sendTask('t.add', [1, 1]);
    await sleep(1000);
    assert.equal(await (await app.broker()).queueLength(queue), 1, 'the cancelled queue is no longer consumed');
    assert.equal(await (await app.sendTask('t.add', [2, 1], {}, { queue: other })).get({ timeout: 10_000 }), 3, 'the other still is');
    await app.control.addConsumer(queue, { destination: [hostname] });
    await eventually(async () => (await (await app.broker()).queueLength(queue)) === 0, 'consumed again after add_consumer');

    // kombu's pattern/matcher select workers by name; the client keeps only the matching replies.
    const byGlob = await app.control.inspect({ pattern: `${queue}@*`, matcher: 'glob', timeout: 2 }).ping();
    assert.deepEqual(byGlob, { [hostname]: { ok: 'pong' } });
    assert.deepEqual(await app.control.inspect({ pattern: 'nobody-*', matcher: 'glob', timeout: 1 }).ping(), {});
    assert.deepEqual(await app.control.inspect({ pattern: `${queue.slice(0, 8)}.*@control`, matcher: 'pcre', timeout: 2 }).ping(), { [hostname]: { ok: 'pong' } });
    // limit: stop waiting at the first reply instead of the whole timeout.
    const started = Date.now();
    const limited = await app.control.inspect({ pattern: `${queue}@*`, matcher: 'glob', timeout: 30, limit: 1 }).ping();
    assert.deepEqual(limited, { [hostname]: { ok: 'pong' } });
    assert.ok(Date.now() - started < 20_000, 'returned at the limit, not after the 30 s timeout');
  });
}

test('[memory] two workers with one node name: the second warns as Celery does (DuplicateNodenameWarning)', async () => {
  const queue = uniqueName('dup');
  const app = setup(TRANSPORTS[0]!, queue);
  const lines: string[] = [];
  const logger = createLogger('warning', (l) => lines.push(l));
  const first = app.worker({ hostname: 'dup@node', concurrency: 1, logger: createLogger('critical') });
  await first.start();
  cleanup.push(() => first.close());
  const second = app.worker({ hostname: 'dup@node', concurrency: 1, logger });
  await second.start();
  cleanup.push(() => second.close());
  await eventually(() => lines.some((l) => l.includes('DuplicateNodenameWarning')), 'the warning', 10_000);
  assert.match(lines.find((l) => l.includes('DuplicateNodenameWarning'))!, /Received multiple replies from node name: dup@node\.\nPlease make sure you give each node a unique nodename/);
  const alone = app.worker({ hostname: 'alone@node', concurrency: 1, logger });
  await alone.start();
  cleanup.push(() => alone.close());
  await sleep(1500);
  assert.equal(lines.filter((l) => l.includes('DuplicateNodenameWarning')).length, 1, 'a unique name gets no warning');
});

test('[memory] mingle: a starting worker and the running ones swap their revoked ids (Celery\'s hello)', async () => {
  const queue = uniqueName('mingle');
  const app = setup(TRANSPORTS[0]!, queue);
  const lines: string[] = [];
  const first = app.worker({ hostname: `${queue}@one`, concurrency: 1, logger: createLogger('critical') });
  await first.start();
  cleanup.push(() => first.close());
  await app.control.revoke('aaaaaaaa-0000-4000-8000-00000000000a', { destination: [`${queue}@one`] });
  await eventually(() => first.revoked.has('aaaaaaaa-0000-4000-8000-00000000000a'), 'the first worker holding the revoke');
  // An id the starting worker revoked before it started (kept in its --statedb) goes the other way.
  const statedb = path.join(mkdtempSync(path.join(tmpdir(), 'celeriac-mingle-')), 'worker.state');
  writeFileSync(statedb, JSON.stringify({ revoked: { 'bbbbbbbb-0000-4000-8000-00000000000b': Date.now() / 1000 - 5 } }));
  const second = app.worker({ hostname: `${queue}@two`, concurrency: 1, logger: createLogger('info', (l) => lines.push(l)), statedb });
  await second.start();
  cleanup.push(() => second.close());
  await eventually(() => second.revoked.has('aaaaaaaa-0000-4000-8000-00000000000a'), 'the starting worker taking the running one\'s revoked id', 10_000);
  assert.ok(first.revoked.has('bbbbbbbb-0000-4000-8000-00000000000b'), 'the running worker took the starting one\'s revoked id');
  await eventually(() => lines.some((l) => /mingle: sync with \d+ node\(s\):.*@one/.test(l)), 'the sync logged', 10_000);
  // A task with the revoked id is discarded by the worker that learned of it at start-up.
  await first.close();
  const r = await app.sendTask('t.add', [1, 2], {}, { task_id: 'aaaaaaaa-0000-4000-8000-00000000000a' });
  await eventually(async () => (await r.state()) === 'REVOKED', 'the task discarded as REVOKED', 10_000);
});

test('[memory] task_send_sent_event: a client sends task-sent for each task, as gen<pid>@host', async () => {
  const queue = uniqueName('sent');
  const app = setup(TRANSPORTS[0]!, queue, { task_send_sent_event: true });
  const sent: Record<string, unknown>[] = [];
  const receiver = new EventReceiver(app, { wakeup: false }).on('task-sent', (e) => sent.push(e as unknown as Record<string, unknown>));
  await receiver.start();
  cleanup.push(() => receiver.close());
  const r = await app.sendTask('t.add', [7, 8], {}, { countdown: 30 });
  const bulk = await app.sendTasks([{ name: 't.add', args: [1, 1] }, { name: 't.add', args: [2, 2] }]);
  await eventually(() => sent.length === 3, 'three task-sent events');
  const first = sent.find((e) => e.uuid === r.id)!;
  assert.match(String(first.hostname), new RegExp(`^gen${process.pid}@`));
  assert.equal(first.name, 't.add');
  assert.equal(first.args, '(7, 8)');
  assert.equal(first.queue, queue);
  assert.equal(first.routing_key, queue);
  assert.equal(first.exchange, '');
  assert.equal(typeof first.eta, 'string', 'the countdown as an ETA');
  assert.deepEqual(sent.slice(1).map((e) => e.uuid).sort(), bulk.map((b) => b.id).sort());
});

test('[memory] worker_send_task_events = true turns task events on as -E does; event_serializer other than json is refused', async () => {
  const queue = uniqueName('setting');
  const app = setup(TRANSPORTS[0]!, queue, { worker_send_task_events: true });
  const seen: string[] = [];
  const receiver = new EventReceiver(app, { wakeup: false }).on('*', (e) => {
    if (e.hostname === `${queue}@s`) seen.push(e.type);
  });
  await receiver.start();
  cleanup.push(() => receiver.close());
  const worker = app.worker({ hostname: `${queue}@s`, concurrency: 1, logger: createLogger('critical'), mingle: false });
  await worker.start();
  cleanup.push(() => worker.close());
  assert.equal(await (await app.sendTask('t.add', [1, 2])).get({ timeout: 10_000 }), 3);
  await eventually(() => seen.includes('task-succeeded'), 'task events from the setting');
  const msgpack = setup(TRANSPORTS[0]!, uniqueName('ser'), { event_serializer: 'msgpack', logger: createLogger('critical') });
  await assert.rejects(msgpack.worker({ mingle: false }).start(), /event_serializer = "msgpack" is not yet supported/);
});
