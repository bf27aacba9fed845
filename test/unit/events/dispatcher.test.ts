// EventDispatcher: Celery's fields and order, task events batched as task.multi (at most 24, flushed
// once per event-loop turn), groups, and buffer_while_offline (a sink that fails loses nothing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventDispatcher, BUFFER_LIMIT, type EventSink } from '../../../src/events/dispatcher.js';
import { clock } from '../../../src/events/clock.js';
import { createLogger } from '../../../src/app/log.js';
import type { Message } from '../../../src/protocol/message.js';
import { eventually } from '../../helpers/services.js';

interface Published {
  exchange: string;
  routingKey: string;
  message: Message;
  body: unknown;
}

/** A sink that records what it is given; `down` makes it fail, as a broker that went away. */
class RecordingSink implements EventSink {
  readonly published: Published[] = [];
  down = false;
  attempts = 0;
  async publishEvent(exchange: string, routingKey: string, message: Message): Promise<void> {
    this.attempts++;
    if (this.down) throw new Error('Connection is closed.');
    this.published.push({ exchange, routingKey, message, body: JSON.parse(message.body.toString('utf8')) });
  }
  events(): Record<string, unknown>[] {
    return this.published.flatMap((p) => (Array.isArray(p.body) ? p.body : [p.body])) as Record<string, unknown>[];
  }
}

const quiet = () => createLogger('critical');
const nextTurn = () => new Promise((r) => setImmediate(r));

test('an event carries hostname, utcoffset, pid, clock, its own fields, then timestamp and type, as Celery orders them', async () => {
  const sink = new RecordingSink();
  const d = new EventDispatcher(sink, { hostname: 'w1@h', logger: quiet() });
  const before = clock.value;
  d.send('worker-heartbeat', { freq: 2, active: 0, processed: 5, loadavg: [0.1, 0.2, 0.3], sw_ident: 'celeriac', sw_ver: '0', sw_sys: 'Linux' });
  await eventually(() => sink.published.length === 1, 'the heartbeat');
  const [p] = sink.published;
  assert.equal(p!.exchange, 'celeryev');
  assert.equal(p!.routingKey, 'worker.heartbeat', "routing key: the type with '-' as '.'");
  assert.deepEqual(p!.message.headers, { hostname: 'w1@h' });
  assert.equal(p!.message.properties.delivery_mode, 1, 'transient, as Celery publishes events');
  const e = p!.body as Record<string, unknown>;
  assert.deepEqual(Object.keys(e), ['hostname', 'utcoffset', 'pid', 'clock', 'freq', 'active', 'processed', 'loadavg', 'sw_ident', 'sw_ver', 'sw_sys', 'timestamp', 'type']);
  assert.equal(e.type, 'worker-heartbeat');
  assert.equal(e.pid, process.pid);
  assert.ok((e.clock as number) > before, 'the clock moves forward');
  assert.equal(e.utcoffset, Math.floor(new Date().getTimezoneOffset() / 60));
  assert.ok(Math.abs((e.timestamp as number) - Date.now() / 1000) < 5);
  await d.close();
});

test('task events of one turn leave as task.multi lists of at most 24; worker events leave alone', async () => {
  const sink = new RecordingSink();
  const d = new EventDispatcher(sink, { hostname: 'w1@h', logger: quiet() });
  for (let i = 0; i < 50; i++) d.send('task-started', { uuid: `t${i}` });
  d.send('worker-heartbeat', { freq: 2, active: 0, processed: 0, loadavg: [], sw_ident: 'x', sw_ver: '0', sw_sys: 'Linux' });
  assert.equal(sink.attempts, 0, 'nothing is published before the turn ends');
  await nextTurn();
  await d.flush();
  const multi = sink.published.filter((p) => p.routingKey === 'task.multi');
  assert.deepEqual(multi.map((p) => (p.body as unknown[]).length), [BUFFER_LIMIT, BUFFER_LIMIT, 2]);
  assert.deepEqual(sink.events().filter((e) => e.type === 'task-started').map((e) => e.uuid), Array.from({ length: 50 }, (_, i) => `t${i}`), 'in order');
  assert.equal(sink.published.filter((p) => p.routingKey === 'worker.heartbeat').length, 1);
  await d.close();
});

test('groups: a worker without task events sends only worker events until task is added', async () => {
  const sink = new RecordingSink();
  const d = new EventDispatcher(sink, { hostname: 'w1@h', logger: quiet(), groups: ['worker'] });
  assert.equal(d.sends('task'), false);
  d.send('task-started', { uuid: 'a' });
  assert.equal(d.addGroup('task'), true);
  assert.equal(d.addGroup('task'), false, 'already sent');
  d.send('task-started', { uuid: 'b' });
  assert.equal(d.removeGroup('task'), true);
  d.send('task-started', { uuid: 'c' });
  await d.flush();
  assert.deepEqual(sink.events().map((e) => e.uuid), ['b']);
  const all = new EventDispatcher(sink, { hostname: 'w1@h', logger: quiet() });
  assert.equal(all.sends('task'), true, 'no groups given: every group');
  assert.equal(all.removeGroup('task'), true);
  assert.equal(all.sends('task'), false);
  assert.equal(all.sends('worker'), true);
  await d.close();
  await all.close();
});

test('buffer_while_offline: events sent while the broker is away are published, in order, once it is back', async () => {
  const sink = new RecordingSink();
  const d = new EventDispatcher(sink, { hostname: 'w1@h', logger: quiet(), retryMs: 20 });
  sink.down = true;
  for (let i = 0; i < 30; i++) d.send('task-received', { uuid: `x${i}` });
  await eventually(() => sink.attempts > 0, 'a first attempt');
  await new Promise((r) => setTimeout(r, 60));
  for (let i = 30; i < 40; i++) d.send('task-received', { uuid: `x${i}` });
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(sink.published.length, 0);
  assert.equal(d.pending, 40, 'all kept');
  sink.down = false;
  await eventually(() => sink.events().length === 40, 'every event once the sink is back', 5000);
  assert.deepEqual(sink.events().map((e) => e.uuid), Array.from({ length: 40 }, (_, i) => `x${i}`), 'none lost, none twice, in order');
  assert.equal(d.pending, 0);
  await d.close();
});

test('beyond maxBuffered the oldest kept events are dropped (memory stays bounded while the broker is away)', async () => {
  const sink = new RecordingSink();
  const d = new EventDispatcher(sink, { hostname: 'w1@h', logger: quiet(), retryMs: 10_000, maxBuffered: 48 });
  sink.down = true;
  for (let i = 0; i < 24 * 5; i++) d.send('task-started', { uuid: `y${i}` });
  await nextTurn();
  await d.flush();
  assert.ok(d.pending <= 48, `kept ${d.pending}`);
  sink.down = false;
  await d.flush();
  const uuids = sink.events().map((e) => e.uuid);
  assert.deepEqual(uuids, Array.from({ length: 48 }, (_, i) => `y${i + 72}`), 'the newest are kept');
  await d.close();
});

test('close() publishes what is buffered, then nothing more is sent', async () => {
  const sink = new RecordingSink();
  const d = new EventDispatcher(sink, { hostname: 'w1@h', logger: quiet() });
  d.send('task-started', { uuid: 'last' });
  await d.close();
  assert.deepEqual(sink.events().map((e) => e.uuid), ['last']);
  d.send('task-started', { uuid: 'after' });
  await nextTurn();
  assert.equal(sink.events().length, 1);
});

test('a sink that throws synchronously is treated as offline, not as a crash', async () => {
  const sink: EventSink = { publishEvent: () => { throw new Error('sync boom'); } };
  const d = new EventDispatcher(sink, { hostname: 'w1@h', logger: quiet(), retryMs: 10_000 });
  d.send('task-started', { uuid: 'z' });
  await nextTurn();
  await d.flush();
  assert.equal(d.pending, 1);
  await d.close(10);
});
