// EventDispatcher: Celery's fields and order, task events batched as task.multi (at most 24, flushed
// once per event-loop turn), groups, and buffer_while_offline (a sink that fails loses nothing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventDispatcher, BUFFER_LIMIT, type EventSink } from '../../../src/events/dispatcher.js';
import { clock } from '../../../src/events/clock.js';
import { createLogger } from '../../../src/app/log.js';
import type { Message } from '../../../src/protocol/message.js';
import { decodeEnvelope } from '../../../src/protocol/envelope.js';
import { encodeEventEnvelope } from '../../helpers/event-envelope.js';
import type { QuotedEvents } from '../../../src/brokers/types.js';
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

/** A sink that takes events as text, as the Redis broker does (publishEventJson); records the envelopes it would write. */
class TextSink extends RecordingSink {
  readonly envelopes: string[] = [];
  async publishEventJson(exchange: string, routingKey: string, body: QuotedEvents): Promise<void> {
    this.attempts++;
    if (this.down) throw new Error('Connection is closed.');
    this.envelopes.push(encodeEventEnvelope(body.events, body.list, body.hostname, { exchange, routing_key: routingKey }));
    const message = decodeEnvelope(this.envelopes.at(-1)!).message;
    this.published.push({ exchange, routingKey, message, body: JSON.parse(message.body.toString('utf8')) });
  }
}

// Quotes, backslashes, controls, non-ASCII, an astral character and a lone surrogate.
const AWKWARD = ['it\'s "q" \\ x', 'a\nb\tc\u0001', 'café', '🎉 中文', 'lone \ud800 surrogate', ''];

test('taskReceived / taskStarted / taskSucceeded write the events send() writes, field for field and in order, awkward strings included', async () => {
  for (const Sink of [RecordingSink, TextSink]) {
    const typed = new Sink();
    const generic = new RecordingSink();
    const a = new EventDispatcher(typed, { hostname: 'w"1@h\u00e9', logger: quiet() });
    const b = new EventDispatcher(generic, { hostname: 'w"1@h\u00e9', logger: quiet() });
    for (const s of AWKWARD) {
      const fields = { uuid: `id-${s}`, name: `n.${s}`, args: `(${s},)`, kwargs: `{'k': ${s}}`, root_id: s === '' ? `id-${s}` : `root-${s}`, parent_id: s === 'café' ? null : `p-${s}`, retries: 3, eta: s === '' ? null : `2026-01-01T00:00:00+00:00${s}`, expires: null };
      a.taskReceived(fields);
      b.send('task-received', fields);
      a.taskStarted(`id-${s}`);
      b.send('task-started', { uuid: `id-${s}` });
      a.taskSucceeded(`id-${s}`, `'${s}'`, 0.25);
      b.send('task-succeeded', { uuid: `id-${s}`, result: `'${s}'`, runtime: 0.25 });
    }
    await a.flush();
    await b.flush();
    const strip = (e: Record<string, unknown>) => {
      const { clock, timestamp, ...rest } = e;
      assert.equal(typeof clock, 'number');
      assert.ok(Math.abs((timestamp as number) - Date.now() / 1000) < 5, `timestamp in seconds: ${timestamp}`);
      return rest;
    };
    assert.deepEqual(typed.events().map((e) => Object.keys(e)), generic.events().map((e) => Object.keys(e)), `${Sink.name}: the same keys in the same order`);
    assert.deepEqual(typed.events().map(strip), generic.events().map(strip), `${Sink.name}: the same values`);
    assert.deepEqual(typed.published.map((p) => p.routingKey), generic.published.map((p) => p.routingKey));
    await a.close();
    await b.close();
  }
});

test('a runtime is written to the microsecond; clocks of a batch only go forward', async () => {
  const sink = new TextSink();
  const d = new EventDispatcher(sink, { hostname: 'w1@h', logger: quiet() });
  for (const runtime of [0, 0.0000004, 0.0000125, 1.5, 12345.000001]) d.taskSucceeded('u', 'None', runtime);
  await d.flush();
  assert.deepEqual(sink.events().map((e) => e.runtime), [0, 0, 0.000013, 1.5, 12345.000001]);
  const clocks = sink.events().map((e) => e.clock as number);
  for (let i = 1; i < clocks.length; i++) assert.equal(clocks[i], clocks[i - 1]! + 1);
  await d.close();
});

test('a text sink gets task.multi as kombu envelopes with the body as text (body_encoding null), headers and properties as Celery sends them', async () => {
  const sink = new TextSink();
  const d = new EventDispatcher(sink, { hostname: 'w1@h', logger: quiet() });
  for (let i = 0; i < 30; i++) d.taskStarted(`t${i}`);
  d.send('task-failed', { uuid: 't0', exception: "TypeError('x')", traceback: 'Traceback ...\n' });
  d.send('worker-heartbeat', { freq: 2, active: 0, processed: 0, loadavg: [0, 0, 0], sw_ident: 'celeriac', sw_ver: '0', sw_sys: 'Linux' });
  await d.flush();
  assert.deepEqual(sink.published.map((p) => [p.routingKey, Array.isArray(p.body) ? (p.body as unknown[]).length : 1]), [['task.multi', 24], ['worker.heartbeat', 1], ['task.multi', 7]]);
  const raw = JSON.parse(sink.envelopes[0]!) as { body: unknown; headers: unknown; properties: Record<string, unknown>; 'content-type': string; 'content-encoding': string };
  assert.equal(typeof raw.body, 'string', 'the body is the JSON text itself, no base64');
  assert.equal((JSON.parse(raw.body as string) as unknown[]).length, 24);
  assert.deepEqual(raw.headers, { hostname: 'w1@h' });
  assert.equal(raw['content-type'], 'application/json');
  assert.equal(raw['content-encoding'], 'utf-8');
  assert.deepEqual(Object.keys(raw.properties), ['delivery_mode', 'delivery_info', 'priority', 'body_encoding', 'delivery_tag']);
  assert.deepEqual([raw.properties.delivery_mode, raw.properties.delivery_info, raw.properties.priority, raw.properties.body_encoding], [1, { exchange: 'celeryev', routing_key: 'task.multi' }, 0, null]);
  const failed = sink.events().find((e) => e.type === 'task-failed')!;
  assert.equal(failed.traceback, 'Traceback ...\n');
  await d.close();
});

test('a text sink that is away keeps the batches and publishes them once it is back (buffer_while_offline)', async () => {
  const sink = new TextSink();
  const d = new EventDispatcher(sink, { hostname: 'w1@h', logger: quiet(), retryMs: 20 });
  sink.down = true;
  for (let i = 0; i < 50; i++) d.taskReceived({ uuid: `r${i}`, name: 'n', args: '()', kwargs: '{}', root_id: `r${i}`, parent_id: null, retries: 0, eta: null, expires: null });
  await eventually(() => sink.attempts > 0, 'a first attempt');
  assert.equal(d.pending, 50);
  sink.down = false;
  await eventually(() => sink.events().length === 50, 'every event once the sink is back', 5000);
  assert.deepEqual(sink.events().map((e) => e.uuid), Array.from({ length: 50 }, (_, i) => `r${i}`));
  await d.close();
});
