// publishWire: the RESP bytes Celeriac writes itself for an event PUBLISH are, byte for byte, what
// ioredis writes for client.publish(channel, encodeEventEnvelope(...)) — for task.multi lists and
// single events, with non-ASCII and escaped text, and across many commands cut from one slab.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'ioredis';
import { publishWire } from '../../../src/brokers/redis/resp.js';
import { eventEnvelopeEnds } from '../../../src/protocol/envelope.js';
import { encodeEventEnvelope } from '../../helpers/event-envelope.js';
import { quoteJson } from '../../../src/events/event.js';

/** What ioredis itself writes for PUBLISH channel message. */
function ioredisWire(channel: string, message: string): Buffer {
  const w = new Command('publish', [channel, message]).toWritable({});
  return typeof w === 'string' ? Buffer.from(w, 'utf8') : w;
}

const events = [
  quoteJson(JSON.stringify({ hostname: 'w1@h', type: 'task-received', args: "('a', 1)", uuid: 'u-1' })),
  quoteJson(JSON.stringify({ hostname: 'w1@h', type: 'task-started', note: 'café ☕ \u{1F600} "quoted" \\ back\nline' })),
  quoteJson(JSON.stringify({ hostname: 'w1@h', type: 'task-succeeded', result: "'\u00e9t\u00e9'" })),
];

test('a task.multi PUBLISH written by publishWire is the bytes ioredis writes for the same envelope', () => {
  const info = { exchange: 'celeryev', routing_key: 'task.multi' };
  for (const hostname of ['w1@host', 'wörker@hôte']) {
    for (let n = 1; n <= events.length; n++) {
      const quoted = events.slice(0, n);
      const [head, tail] = eventEnvelopeEnds(true, hostname, info, 'tag-1');
      const wire = publishWire('/0.celeryev/task.multi', head, quoted, tail);
      const expected = ioredisWire('/0.celeryev/task.multi', encodeEventEnvelope(quoted, true, hostname, info, 'tag-1'));
      assert.ok(wire.equals(expected), `n=${n}, hostname ${hostname}:\n${wire.toString('utf8')}\n!=\n${expected.toString('utf8')}`);
    }
  }
});

test('a single event (body not a list) and a channel with non-ASCII text are written as ioredis writes them', () => {
  const info = { exchange: 'celeryev', routing_key: 'worker.heartbeat' };
  const [head, tail] = eventEnvelopeEnds(false, 'w1@h', info, 'tag-2');
  const wire = publishWire('/0.celeryév/worker.heartbeat', head, [events[1]!], tail);
  assert.ok(wire.equals(ioredisWire('/0.celeryév/worker.heartbeat', encodeEventEnvelope([events[1]!], false, 'w1@h', info, 'tag-2'))));
  // The envelope still reads back as the event it carries.
  const text = wire.toString('utf8').split('\r\n')[6]!;
  assert.deepEqual(JSON.parse(JSON.parse(text).body), JSON.parse(JSON.parse(`"${events[1]}"`)));
});

test('commands cut one after another from the slab keep their own bytes (none overwrites another)', () => {
  const info = { exchange: 'celeryev', routing_key: 'task.multi' };
  const wires: Buffer[] = [];
  const expected: Buffer[] = [];
  for (let i = 0; i < 400; i++) {
    const quoted = Array.from({ length: 1 + (i % 24) }, (_, k) => events[(i + k) % events.length]!);
    const [head, tail] = eventEnvelopeEnds(true, `w${i}@h`, info, `tag-${i}`);
    wires.push(publishWire('/0.celeryev/task.multi', head, quoted, tail));
    expected.push(ioredisWire('/0.celeryev/task.multi', encodeEventEnvelope(quoted, true, `w${i}@h`, info, `tag-${i}`)));
  }
  // A large message goes in a buffer of its own.
  const big = Array.from({ length: 24 }, () => quoteJson(JSON.stringify({ result: 'x'.repeat(4000) })));
  const [head, tail] = eventEnvelopeEnds(true, 'w@h', info, 'tag-big');
  wires.push(publishWire('/0.celeryev/task.multi', head, big, tail));
  expected.push(ioredisWire('/0.celeryev/task.multi', encodeEventEnvelope(big, true, 'w@h', info, 'tag-big')));
  for (let i = 0; i < wires.length; i++) assert.ok(wires[i]!.equals(expected[i]!), `command ${i} differs`);
});
