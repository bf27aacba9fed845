// The dashboard's pure parts: task events folded with Celery's precedence (a late event fills in
// fields without moving the state back), Python literals read back from args/kwargs reprs for a retry,
// and runtime percentiles from the per-minute buckets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { foldTaskEvent } from '../../src/dashboard/fold.js';
import { emptyTask } from '../../src/dashboard/views.js';
import { LiteralError, parseArgsRepr, parseKwargsRepr } from '../../src/dashboard/literal.js';
import { emptyMinute, percentile, runtimeBucket, RUNTIME_BOUNDS } from '../../src/dashboard/charts.js';
import { repr, reprArgs } from '../../src/protocol/repr.js';

test('events in order move the state; a late task-received keeps SUCCESS and fills in name, args and kwargs', () => {
  const t = emptyTask('id-1');
  foldTaskEvent(t, 'started', { hostname: 'w@h', timestamp: 10 });
  assert.equal(t.state, 'STARTED');
  assert.equal(t.worker, 'w@h');
  foldTaskEvent(t, 'succeeded', { hostname: 'w@h', timestamp: 11, result: '5', runtime: 0.5 });
  assert.equal(t.state, 'SUCCESS');
  foldTaskEvent(t, 'received', { hostname: 'w@h', timestamp: 9, name: 'tasks.add', args: '(2, 3)', kwargs: '{}', retries: 0, result: 'not taken' });
  assert.equal(t.state, 'SUCCESS', 'an earlier state does not move it back');
  assert.equal(t.timestamp, 11);
  assert.equal(t.name, 'tasks.add');
  assert.equal(t.args, '(2, 3)');
  assert.equal(t.result, '5', 'only the merge rules\' fields of a late event are taken');
  assert.equal(t.runtime, 0.5);
  assert.deepEqual([t.received, t.started, t.succeeded], [9, 10, 11]);
});

test('RETRY moves either way (a retried task runs again); a task-sent names the client, not the worker', () => {
  const t = emptyTask('id-2');
  foldTaskEvent(t, 'sent', { hostname: 'gen1@client', timestamp: 1, name: 'x', queue: 'q', routing_key: 'q' });
  assert.equal(t.client, 'gen1@client');
  assert.equal(t.worker, null);
  assert.equal(t.routing_key, 'q');
  foldTaskEvent(t, 'failed', { hostname: 'w@h', timestamp: 2, exception: "ValueError('x')" });
  foldTaskEvent(t, 'retried', { hostname: 'w@h', timestamp: 3, exception: "ValueError('x')" });
  assert.equal(t.state, 'RETRY');
  foldTaskEvent(t, 'received', { hostname: 'w@h', timestamp: 4, retries: 1 });
  assert.equal(t.state, 'RECEIVED', 'out of RETRY, any state moves');
  assert.equal(t.retries, 1);
});

test('Python literals come back as the values whose repr the events carry', () => {
  const values: unknown[] = [1, -2.5, 'it\'s "quoted"\n\ttab \u00e9 \u{1F600}', null, true, false, [1, [2, 'x']], { a: { b: [null, 1e21] } }, '', 'back\\slash'];
  assert.deepEqual(parseArgsRepr(reprArgs(values)), values);
  assert.deepEqual(parseArgsRepr('(1,)'), [1]);
  assert.deepEqual(parseArgsRepr('()'), []);
  assert.deepEqual(parseArgsRepr('[1, 2]'), [1, 2]);
  assert.deepEqual(parseKwargsRepr(repr({ x: 1, y: 'two', z: [3] })), { x: 1, y: 'two', z: [3] });
  assert.deepEqual(parseKwargsRepr('{}'), {});
  assert.deepEqual(parseKwargsRepr(null), {});
  // What Python itself writes.
  const py = execFileSync('/usr/bin/python3', ['-c', "print(repr((1, 'a\\'b', {'k': [None, True, 2.5, -3]}, (4,), {1, 2}, '\\x00\\u00e9\\U0001f600')))"], { encoding: 'utf8' }).trim();
  assert.deepEqual(parseArgsRepr(py), [1, "a'b", { k: [null, true, 2.5, -3] }, [4], [1, 2], '\u0000\u00e9\u{1F600}']);
});

test('a repr that is not a literal, or was cut at 1,024 characters, is refused with the reason', () => {
  assert.throws(() => parseArgsRepr('(<object object at 0x7f>,)'), LiteralError);
  assert.throws(() => parseArgsRepr(`(${'1, '.repeat(400)}...`), { name: 'LiteralError', message: /cut at 1,024 characters/ });
  assert.throws(() => parseKwargsRepr('[1]'), { message: /is not a dict/ });
  assert.throws(() => parseArgsRepr("('unterminated"), { message: /unterminated/ });
  assert.throws(() => parseArgsRepr('(1, 2) extra'), { message: /text after/ });
});

test('runtime percentiles are read from the bucket each rank falls in, within 25 %', () => {
  const m = emptyMinute(0);
  for (let i = 1; i <= 100; i++) m.runtimes[runtimeBucket(i / 1000)]!++; // 1 ms … 100 ms
  for (const [q, exact] of [[0.5, 0.05], [0.95, 0.095], [0.99, 0.099]] as const) {
    const p = percentile(m.runtimes, q)!;
    assert.ok(p >= exact && p <= exact * 1.25, `p${q * 100} ${p} vs ${exact}`);
  }
  assert.equal(percentile(emptyMinute(0).runtimes, 0.5), null);
  assert.equal(runtimeBucket(0), 0);
  assert.equal(runtimeBucket(1e9), RUNTIME_BOUNDS.length, 'beyond the last bound');
});
