// celery.events.state in TypeScript: task states by Celery's precedence (late events merged, not
// moving a task back), workers alive by heartbeat, and the pieces a receiver and the dump rely on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { State, heartbeatExpires, precedence } from '../../../src/events/state.js';
import { Dumper, pythonUtcTime } from '../../../src/events/dumper.js';
import { LamportClock } from '../../../src/events/clock.js';
import { adjustTimestamp } from '../../../src/events/event.js';
import { topicMatches } from '../../../src/brokers/topic.js';
import type { CeleryEvent } from '../../../src/events/event.js';

let clockValue = 0;
function ev(type: string, fields: Record<string, unknown> = {}, at = Date.now() / 1000): CeleryEvent {
  return { hostname: 'w1@h', utcoffset: 0, pid: 42, clock: ++clockValue, ...fields, timestamp: at, type, local_received: at } as CeleryEvent;
}

test('a task follows received → started → succeeded, with the fields of each event', () => {
  const s = new State();
  s.event(ev('task-received', { uuid: 'a', name: 'tasks.add', args: '(2, 2)', kwargs: '{}', retries: 0, root_id: 'a', parent_id: null }));
  s.event(ev('task-started', { uuid: 'a' }));
  const change = s.event(ev('task-succeeded', { uuid: 'a', result: '4', runtime: 0.01 }));
  assert.equal(change.kind, 'task');
  const t = s.tasks.get('a')!;
  assert.equal(t.state, 'SUCCESS');
  assert.equal(t.name, 'tasks.add');
  assert.equal(t.result, '4');
  assert.equal(t.runtime, 0.01);
  assert.ok(t.received && t.started && t.succeeded, 'each event type records when it happened');
  assert.equal(t.worker?.hostname, 'w1@h');
  assert.equal(t.ready, true);
  assert.equal(s.taskCount, 1);
  assert.deepEqual(s.taskTypes(), ['tasks.add']);
  assert.deepEqual(t.info(), { args: '(2, 2)', kwargs: '{}', retries: 0, result: '4', runtime: 0.01, root_id: 'a' });
});

test('events out of order: a late task-received adds its fields but does not move a finished task back', () => {
  const s = new State();
  s.event(ev('task-succeeded', { uuid: 'b', result: '1', runtime: 0.5 }));
  s.event(ev('task-received', { uuid: 'b', name: 'tasks.late', args: '()', kwargs: '{}', retries: 3 }));
  s.event(ev('task-started', { uuid: 'b' }));
  const t = s.tasks.get('b')!;
  assert.equal(t.state, 'SUCCESS', 'precedence: SUCCESS stays');
  assert.equal(t.name, 'tasks.late', 'RECEIVED merge rule keeps the name');
  assert.equal(t.retries, 3);
  assert.ok(precedence('SUCCESS') < precedence('RECEIVED'));
  assert.equal(precedence('PROGRESS'), precedence('SOMETHING_ELSE'), 'custom states rank together');
  // RETRY never blocks: a retried task can be received again.
  s.event(ev('task-retried', { uuid: 'c', exception: "ValueError('x')", traceback: 'tb' }));
  s.event(ev('task-received', { uuid: 'c', name: 'tasks.r' }));
  assert.equal(s.tasks.get('c')!.state, 'RECEIVED');
});

test('task-sent sets the client, children find their parent in either order', () => {
  const s = new State();
  s.event(ev('task-received', { uuid: 'child', name: 'c', parent_id: 'parent' }));
  s.event({ ...ev('task-sent', { uuid: 'parent', name: 'p' }), hostname: 'gen1@client' } as CeleryEvent);
  const parent = s.tasks.get('parent')!;
  assert.equal(parent.client, 'gen1@client');
  assert.equal(parent.state, 'PENDING');
  assert.deepEqual([...parent.children].map((c) => c.uuid), ['child']);
  assert.equal(parent.worker, null, 'a task only sent has no worker');
});

test('workers: alive while heartbeats are within 2 × freq; offline removes them; joins and leaves are reported', () => {
  const joined: string[] = [];
  const left: string[] = [];
  const s = new State({ onNodeJoin: (w) => joined.push(w.hostname), onNodeLeave: (w) => left.push(w.hostname) });
  const now = Date.now() / 1000;
  s.event(ev('worker-online', { freq: 2, active: 0, processed: 0, loadavg: [0, 0, 0], sw_ident: 'py-celery', sw_ver: '5.2.6', sw_sys: 'Linux' }, now));
  const w = s.workers.get('w1@h')!;
  assert.equal(w.alive, true);
  assert.equal(w.statusString, 'ONLINE');
  assert.equal(w.sw_ident, 'py-celery');
  assert.equal(w.id, 'w1@h.42');
  assert.equal(w.heartbeatExpires, heartbeatExpires(now, 2));
  assert.equal(heartbeatExpires(100, 2), 104);
  s.event(ev('worker-heartbeat', { freq: 2, active: 1, processed: 7 }, now - 10));
  assert.equal(w.processed, 7);
  // Stale heartbeats only: not alive.
  const stale = new State();
  stale.event(ev('worker-heartbeat', { freq: 2 }, now - 10));
  assert.equal(stale.workers.get('w1@h')!.alive, false);
  assert.equal(stale.aliveWorkers().length, 0);
  s.event(ev('worker-offline', { freq: 2 }, now));
  assert.equal(s.workers.has('w1@h'), false);
  assert.deepEqual(joined, ['w1@h']);
  assert.deepEqual(left, ['w1@h']);
});

test('memory is bounded: the oldest tasks are forgotten beyond maxTasksInMemory; clear() keeps unfinished ones', () => {
  const s = new State({ maxTasksInMemory: 100 });
  for (let i = 0; i < 250; i++) s.event(ev('task-received', { uuid: `t${i}`, name: 'n' }));
  assert.equal(s.tasks.size, 100);
  assert.ok(s.tasks.has('t249') && !s.tasks.has('t0'));
  s.event(ev('task-succeeded', { uuid: 't249', result: 'None', runtime: 0 }));
  s.clear();
  assert.equal(s.tasks.has('t249'), false);
  assert.equal(s.tasks.size, 99);
  assert.equal(s.tasksByTime(5).length, 5);
});

test('Dumper prints lines as celery events --dump does', () => {
  const d = new Dumper();
  const at = 1796593054.96;
  const received = d.format({ hostname: 'w1@h', utcoffset: 0, pid: 1, clock: 7, uuid: 'u1', name: 'tasks.add', args: '(1, 2)', kwargs: '{}', retries: 0, timestamp: at, type: 'task-received' } as CeleryEvent);
  assert.equal(received, "w1@h [2026-12-06 21:37:34.960000+00:00] task received: tasks.add(u1) args=(1, 2) kwargs={} clock=7, pid=1, retries=0, utcoffset=0");
  const done = d.format({ hostname: 'w1@h', utcoffset: 0, pid: 1, clock: 9, uuid: 'u1', result: '3', runtime: 0.5, timestamp: at, type: 'task-succeeded' } as CeleryEvent);
  assert.equal(done, 'w1@h [2026-12-06 21:37:34.960000+00:00] task succeeded: tasks.add(u1) args=(1, 2) kwargs={} clock=9, pid=1, result=3, runtime=0.5, utcoffset=0', 'the task name comes from task-received');
  const hb = d.format({ hostname: 'w1@h', utcoffset: 0, pid: 1, clock: 3, freq: 2, active: 0, loadavg: [0.5, 1, 2], timestamp: at, type: 'worker-heartbeat' } as CeleryEvent);
  assert.equal(hb, 'w1@h [2026-12-06 21:37:34.960000+00:00] heartbeat: active=0, clock=3, freq=2, loadavg=[0.5, 1, 2], pid=1, utcoffset=0');
  assert.match(d.format({ hostname: 'w1@h', timestamp: at, type: 'worker-offline' } as CeleryEvent), /\] shutdown $/, "no fields: no colon, as Python prints it");
  assert.equal(pythonUtcTime(0), '1970-01-01 00:00:00+00:00');
});

test('Lamport clock: forward steps, adjust takes the larger and steps; junk from the wire is ignored', () => {
  const c = new LamportClock();
  assert.equal(c.forward(), 1);
  assert.equal(c.adjust(10), 11);
  assert.equal(c.adjust(3), 12);
  assert.equal(c.adjust('20'), 21);
  assert.equal(c.adjust('junk'), 22);
  assert.equal(c.adjust(1e300), 23, 'a clock that could never move forward again is ignored');
  assert.equal(String(c), '23');
});

test('adjust_timestamp moves a timestamp into our zone; topic binding keys match as AMQP does', () => {
  assert.equal(adjustTimestamp(1000, -2, 0), 1000 + 7200);
  assert.equal(adjustTimestamp(1000, 0, 0), 1000);
  assert.equal(topicMatches('#', 'task.multi'), true);
  assert.equal(topicMatches('task.#', 'task.multi'), true);
  assert.equal(topicMatches('task.*', 'task.multi'), true);
  assert.equal(topicMatches('worker.#', 'task.multi'), false);
  assert.equal(topicMatches('*.heartbeat', 'worker.heartbeat'), true);
  assert.equal(topicMatches('#.heartbeat', 'worker.heartbeat'), true);
  assert.equal(topicMatches('task.*', 'task'), false);
  assert.equal(topicMatches('task.#', 'task'), true);
  assert.equal(topicMatches('a.#.c', 'a.b.b.c'), true);
});
