// The beat service on a fake clock: due runs sent once as ordinary task messages, missed runs
// collapsed, a restart across a due run, a stale leader fenced, runtime changes, beat_schedule merging.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Celeriac } from '../../src/app/celeriac.js';
import { Beat, type SentRun } from '../../src/beat/beat.js';
import { crontab } from '../../src/beat/crontab.js';
import { MemoryBeatStore, newMemoryState } from '../../src/beat/memory-store.js';
import { SqliteBeatStore } from '../../src/beat/sqlite-store.js';
import type { BeatStore } from '../../src/beat/store.js';
import type { Message } from '../../src/protocol/message.js';
import { decodeTask } from '../../src/protocol/message.js';
import { createLogger } from '../../src/app/log.js';
import { defineEntry, encodeEntry } from '../../src/beat/entry.js';

class Clock {
  constructor(public t: number) {}
  now = () => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

function memoryApp(queue: string, extra: Record<string, unknown> = {}): Celeriac {
  return new Celeriac('beat-unit', { broker: 'memory://', backend: 'memory://', task_default_queue: queue, ...extra });
}

function uniqueQueue(): string {
  return `beat-unit-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

function beatOn(app: Celeriac, clock: Clock, store: BeatStore, id: string): { beat: Beat; sent: SentRun[] } {
  const beat = new Beat(app, { store, now: clock.now, id });
  const sent: SentRun[] = [];
  beat.on('sent', (r: SentRun) => sent.push(r));
  return { beat, sent };
}

/** Every message waiting in a memory:// queue. */
async function drain(app: Celeriac, queue: string): Promise<Message[]> {
  const broker = await app.broker();
  const got: Message[] = [];
  const consumer = await broker.consume([queue], (d) => {
    got.push(d.message);
    void d.ack();
  }, { prefetch: 0 });
  await new Promise((r) => setTimeout(r, 20));
  await consumer.stop();
  return got;
}

const T0 = Date.parse('2026-01-05T12:00:00Z');

test('an interval entry is sent once per due time, as an ordinary task message with its name and due time in the headers', async () => {
  const queue = uniqueQueue();
  const app = memoryApp(queue);
  app.conf.beat_schedule = { 'add-every-10s': { task: 'tasks.add', schedule: 10, args: [16, 16], kwargs: { z: 1 }, options: { priority: 3, expires: 60 } } };
  const clock = new Clock(T0);
  const { beat, sent } = beatOn(app, clock, new MemoryBeatStore(newMemoryState(), clock.now), 'b1');
  await beat.tick();
  assert.equal(beat.isLeader, true);
  assert.equal(sent.length, 0, 'a new entry first runs one interval after it was added (Celery)');
  for (let i = 0; i < 20; i++) {
    clock.advance(2_500);
    await beat.tick();
  }
  assert.deepEqual(sent.map((r) => r.dueAt.getTime() - T0), [10_000, 20_000, 30_000, 40_000, 50_000]);
  const messages = await drain(app, queue);
  assert.equal(messages.length, 5);
  const m = decodeTask(messages[0]!);
  assert.equal(m.task, 'tasks.add');
  assert.deepEqual([m.args, m.kwargs], [[16, 16], { z: 1 }]);
  assert.equal(m.headers.periodic_task_name, 'add-every-10s');
  assert.equal(m.headers.periodic_task_due_at, new Date(T0 + 10_000).toISOString());
  assert.equal(messages[0]!.properties.priority, 3);
  assert.ok(m.expires, 'options.expires becomes the message expiry');
  assert.equal(new Set(messages.map((x) => x.headers.id)).size, 5);
  await beat.close();
  await app.close();
});

test('runs missed while beat was stopped are sent once at start-up, and a restart across a due run neither skips nor repeats it', async () => {
  const queue = uniqueQueue();
  const app = memoryApp(queue);
  app.conf.beat_schedule = { every10: { task: 'tasks.tick', schedule: 10 } };
  const clock = new Clock(T0);
  const state = newMemoryState();
  const first = beatOn(app, clock, new MemoryBeatStore(state, clock.now), 'before-restart');
  await first.beat.tick();
  clock.advance(10_000);
  await first.beat.tick();
  assert.deepEqual(first.sent.map((r) => r.dueAt.getTime() - T0), [10_000]);
  // The process dies (no clean close) at +15 s, before the run due at +20 s; a new one starts at +27 s.
  clock.advance(5_000);
  clock.advance(12_000);
  const second = beatOn(app, clock, new MemoryBeatStore(state, clock.now), 'after-restart');
  await second.beat.tick();
  assert.equal(second.beat.isLeader, true, 'the dead holder\'s lease lapsed');
  assert.deepEqual(second.sent.map((r) => r.dueAt.getTime() - T0), [20_000], 'the run due while it was down, once');
  clock.advance(3_000);
  await second.beat.tick();
  assert.deepEqual(second.sent.map((r) => r.dueAt.getTime() - T0), [20_000, 30_000]);
  // Down across three due runs (+40, +50, +60): one catch-up run, then the original phase.
  clock.advance(35_000);
  const third = beatOn(app, clock, new MemoryBeatStore(state, clock.now), 'third');
  await third.beat.tick();
  assert.deepEqual(third.sent.map((r) => r.dueAt.getTime() - T0), [60_000]);
  assert.equal((await drain(app, queue)).length, 4);
  await app.close();
});

test('restart across a due run on the SQLite store: the last run survives in the file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-beat-unit-'));
  const url = `sqlite:///${path.join(dir, 'beat.db')}`;
  const app = new Celeriac('beat-unit', { broker: url, backend: url });
  app.conf.beat_schedule = { nightly: { task: 'tasks.report', schedule: crontab({ minute: 30, hour: 2 }) } };
  const clock = new Clock(Date.parse('2026-01-05T01:00:00Z'));
  const store1 = new SqliteBeatStore(url, true);
  const a = beatOn(app, clock, store1, 'a');
  await a.beat.tick();
  clock.t = Date.parse('2026-01-05T02:30:00Z');
  await a.beat.tick();
  assert.deepEqual(a.sent.map((r) => r.dueAt.toISOString()), ['2026-01-05T02:30:00.000Z']);
  await a.beat.close(); // gives the lease up
  await store1.close();
  // Stopped from 03:00 until 02:45 the next day: the 02:30 run was due meanwhile.
  clock.t = Date.parse('2026-01-06T02:45:00Z');
  const store2 = new SqliteBeatStore(url, true);
  const b = beatOn(app, clock, store2, 'b');
  await b.beat.tick();
  assert.deepEqual(b.sent.map((r) => r.dueAt.toISOString()), ['2026-01-06T02:30:00.000Z']);
  await b.beat.tick();
  assert.equal(b.sent.length, 1, 'not repeated');
  const broker = await app.broker();
  assert.equal(await broker.queueLength('celery'), 2, 'both runs are in the embedded broker');
  await b.beat.close();
  await store2.close();
  await app.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a leader paused past its lease is fenced: the run it still thinks is due is refused, the new leader sends it once', async () => {
  const queue = uniqueQueue();
  const app = memoryApp(queue);
  app.conf.beat_schedule = { every1: { task: 'tasks.tick', schedule: 1 } };
  const clock = new Clock(T0);
  const state = newMemoryState();
  const a = beatOn(app, clock, new MemoryBeatStore(state, clock.now), 'a');
  const b = beatOn(app, clock, new MemoryBeatStore(state, clock.now), 'b');
  const fenced: unknown[] = [];
  a.beat.on('fenced', (f) => fenced.push(f));
  await a.beat.tick();
  await b.beat.tick();
  assert.equal(a.beat.isLeader, true);
  assert.equal(b.beat.isLeader, false);
  clock.advance(1_000);
  await a.beat.tick();
  await b.beat.tick();
  // a is paused for 8 s (longer than the 5 s lease): b takes over and sends.
  clock.advance(8_000);
  await b.beat.tick();
  assert.equal(b.beat.isLeader, true);
  assert.equal(a.beat.isLeader, true, 'a does not know yet');
  await a.beat.tick(); // a wakes and tries to send the run due now
  assert.equal(fenced.length, 1);
  assert.equal(a.beat.isLeader, false);
  assert.deepEqual(a.sent.map((r) => r.dueAt.getTime() - T0), [1_000]);
  assert.deepEqual(b.sent.map((r) => r.dueAt.getTime() - T0), [9_000]);
  const due = (await drain(app, queue)).map((m) => m.headers.periodic_task_due_at);
  assert.equal(due.length, new Set(due).size, 'no due time sent twice');
  assert.equal(due.length, 2);
  await a.beat.close();
  await b.beat.close();
  await app.close();
});

test('app.beat.upsert/remove/list: a change is seen at the next tick, and an upsert keeps the last run', async () => {
  const queue = uniqueQueue();
  const app = memoryApp(queue);
  const beat = new Beat(app, { id: 'runtime' });
  const changes: unknown[] = [];
  beat.on('changed', (c) => changes.push(c));
  await beat.tick();
  assert.deepEqual(await app.beat.list(), []);
  await app.beat.upsert('cleanup', { task: 'tasks.cleanup', schedule: crontab({ minute: 0, hour: 4 }), options: { queue } });
  await beat.tick();
  assert.deepEqual(changes, [{ added: ['cleanup'], changed: [], removed: [] }]);
  const [info] = await app.beat.list();
  assert.equal(info!.name, 'cleanup');
  assert.equal(info!.schedule, '<crontab: 0 4 * * * (m/h/dM/MY/d)>');
  assert.equal(info!.source, 'runtime');
  assert.equal(info!.nextRunAt!.getUTCHours(), 4);
  const added = info!.lastRunAt;
  await app.beat.upsert('cleanup', { task: 'tasks.cleanup', schedule: 3600, options: { queue } });
  await beat.tick();
  const [changed] = await app.beat.list();
  assert.equal(changed!.schedule, '<freq: 1.00 hour>');
  assert.equal(changed!.lastRunAt.getTime(), added.getTime(), 'an update keeps the last run');
  assert.equal(await app.beat.remove('cleanup'), true);
  assert.equal(await app.beat.remove('cleanup'), false);
  await beat.tick();
  assert.deepEqual(changes.at(-1), { added: [], changed: [], removed: ['cleanup'] });
  assert.equal((await app.beat.leader())!.id, 'runtime');
  await assert.rejects(app.beat.upsert('bad name', { task: 't', schedule: 1 }), /without spaces/);
  await assert.rejects(app.beat.upsert('x', { task: 't', schedule: crontab({ minute: 0 }), args: 'no' as never }), /args must be an array/);
  await beat.close();
  await app.close();
});

test('beat_schedule is merged at start: new entries added, changed ones replaced, dropped ones removed, runtime ones and last runs kept', async () => {
  const app = memoryApp(uniqueQueue());
  const clock = new Clock(T0);
  const state = newMemoryState();
  const store = () => new MemoryBeatStore(state, clock.now);
  app.conf.beat_schedule = { a: { task: 'tasks.a', schedule: 60 }, b: { task: 'tasks.b', schedule: 60 } };
  const first = beatOn(app, clock, store(), 'x');
  await first.beat.tick();
  clock.advance(60_000);
  await first.beat.tick();
  assert.deepEqual(first.sent.map((r) => r.name).sort(), ['a', 'b']);
  await first.beat.close();
  await store().upsert('r', encodeEntry('runtime', defineEntry('r', { task: 'tasks.r', schedule: 5 })), clock.t);
  clock.advance(1_000);
  app.conf.beat_schedule = { a: { task: 'tasks.a', schedule: 60, args: [1] }, c: { task: 'tasks.c', schedule: 60 } };
  const lines: string[] = [];
  const second = new Beat(app, { store: store(), now: clock.now, logger: createLogger('info', (l) => lines.push(l)) });
  await second.prepare();
  assert.ok(lines.some((l) => l.includes('added c; changed a; removed b')), lines.join(''));
  const stored = new Map((await store().load()).map((e) => [e.name, e]));
  assert.deepEqual([...stored.keys()].sort(), ['a', 'c', 'r']);
  assert.equal(stored.get('a')!.state.lastRunAt, T0 + 60_000, 'a changed entry keeps its last run');
  assert.equal(stored.get('c')!.state.lastRunAt, T0 + 61_000, 'a new entry starts now');
  assert.ok(stored.get('a')!.encoded.includes('"args": [1]'));
  await second.close();
  assert.throws(() => new Beat(app, { leaseTimeout: -1 }), /beat_lease_timeout must be a number of seconds above 0/);
  app.conf.beat_schedule = { bad: { task: 'tasks.bad', schedule: 'hourly' } };
  await assert.rejects(new Beat(app, { store: store() }).prepare(), /beat entry "bad": schedule must be a number of seconds/);
  await app.close();
});

test('a run whose publish fails is undone: logged as Celery logs it, retried a tick later, never counted as sent', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-beat-unit-'));
  const url = `sqlite:///${path.join(dir, 'beat.db')}`;
  const app = new Celeriac('beat-unit', { broker: url, task_publish_retry_policy: { max_retries: 1, interval_start: 0, interval_step: 0.05, interval_max: 0.05 } });
  // The embedded broker refuses an exchange without a routing key: a publish that always fails.
  app.conf.beat_schedule = { broken: { task: 'tasks.x', schedule: 10, options: { exchange: 'nowhere', routing_key: '' } } };
  const clock = new Clock(T0);
  const state = newMemoryState();
  const lines: string[] = [];
  const beat = new Beat(app, { store: new MemoryBeatStore(state, clock.now), now: clock.now, logger: createLogger('info', (l) => lines.push(l)) });
  const sent: SentRun[] = [];
  beat.on('sent', (r: SentRun) => sent.push(r));
  await beat.tick();
  clock.advance(10_000);
  const sleep = await beat.tick();
  assert.equal(sent.length, 0);
  assert.ok(lines.some((l) => /ERROR.*Message Error: Couldn't apply scheduled task broken: .*without a routing key/.test(l)), lines.join(''));
  assert.equal(state.entries.get('broken')!.state.lastRunAt, T0, 'the claim was undone');
  assert.equal(state.entries.get('broken')!.state.totalRunCount, 0);
  assert.equal(sleep, beat.tickMs, 'the next try waits a tick');
  await beat.close();
  await app.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a 02:30 job in Europe/Berlin, ticked every minute on a fake clock through both DST change days, is sent once each day', async () => {
  for (const [day, expected] of [['2026-03-29', '2026-03-29T01:30:00.000Z'], ['2026-10-25', '2026-10-25T00:30:00.000Z']] as const) {
    const app = memoryApp(uniqueQueue(), { timezone: 'Europe/Berlin' });
    app.conf.beat_schedule = { nightly: { task: 'tasks.nightly', schedule: crontab({ minute: 30, hour: 2 }) } };
    const clock = new Clock(Date.parse(`${day}T00:00:00+01:00`) - 3_600_000);
    const { beat, sent } = beatOn(app, clock, new MemoryBeatStore(newMemoryState(), clock.now), 'dst');
    for (let i = 0; i < 26 * 60; i++) {
      await beat.tick();
      clock.advance(60_000);
    }
    assert.deepEqual(sent.map((r) => r.dueAt.toISOString()), [expected], day);
    await beat.close();
    await app.close();
  }
});
