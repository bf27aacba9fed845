// Signatures as Celery's dicts, and how Celery freezes, merges, clones and unrolls them (no broker I/O:
// freezing only gives ids).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac } from '../../../src/index.js';
import { Chain, Chord, Group, Signature, chain, chord, descend, group } from '../../../src/canvas/index.js';
import { dumps } from '../../../src/protocol/json.js';

function setup() {
  const app = new Celeriac('sig', { broker: 'memory://sig', backend: 'memory://sig' });
  const add = app.task('t.add', (x: number, y: number) => x + y);
  const tsum = app.task('t.tsum', (xs: number[]) => xs.reduce((a, b) => a + b, 0));
  return { app, add, tsum };
}

/** The LAB capture of Python 5.6's chain(add.s(1, 2), group(add.s(1), add.s(2)), tsum.s()) second step (ids shortened). */
const PY_NESTED_CHORD = '{"task": "celery.chord", "args": [], "kwargs": {"kwargs": {}, "header": {"task": "celery.group", "args": [], "kwargs": {"tasks": ['
  + '{"task": "tasks.add", "args": [1], "kwargs": {}, "options": {"task_id": "a1", "reply_to": "r", "chord": {"task": "tasks.tsum", "args": [], "kwargs": {}, '
  + '"options": {"task_id": "b", "reply_to": "r"}, "subtask_type": null, "immutable": false}, "group_index": 0}, "subtask_type": null, "immutable": false}, '
  + '{"task": "tasks.add", "args": [2], "kwargs": {}, "options": {"task_id": "a2", "reply_to": "r", "chord": {"task": "tasks.tsum", "args": [], "kwargs": {}, '
  + '"options": {"task_id": "b", "reply_to": "r"}, "subtask_type": null, "immutable": false}, "group_index": 1}, "subtask_type": null, "immutable": false}]}, '
  + '"options": {"task_id": "g", "chord": {"task": "tasks.tsum", "args": [], "kwargs": {}, "options": {"task_id": "b", "reply_to": "r"}, "subtask_type": null, '
  + '"immutable": false}, "root_id": null, "parent_id": null}, "subtask_type": "group", "immutable": false}, "body": {"task": "tasks.tsum", "args": [], "kwargs": {}, '
  + '"options": {"task_id": "b", "reply_to": "r"}, "subtask_type": null, "immutable": false}}, "options": {"task_id": "g"}, "subtask_type": "chord", "immutable": false}';

test('a signature is Celery\'s dict, key for key and byte for byte: task, args, kwargs, options, subtask_type, immutable', () => {
  const { add } = setup();
  const sig = add.s(1, 2).set({ countdown: 10, taskId: 'x' });
  assert.equal(dumps(sig), '{"task": "t.add", "args": [1, 2], "kwargs": {}, "options": {"countdown": 10, "task_id": "x"}, "subtask_type": null, "immutable": false}');
  assert.equal(dumps(add.si(1, 2)), '{"task": "t.add", "args": [1, 2], "kwargs": {}, "options": {}, "subtask_type": null, "immutable": true}');
  const linked = add.s(1);
  linked.link(add.s(3));
  linked.linkError(add.si(0, 0));
  assert.deepEqual(Object.keys(linked.toDict().options), ['link', 'link_error']);
  assert.equal((linked.toDict().options.link as { args: unknown[] }[])[0]!.args[0], 3);
});

test('a dict from Python comes back as its class and serialises back to the same bytes (a chord inside a chain)', () => {
  const { app } = setup();
  const sig = app.signature(JSON.parse(PY_NESTED_CHORD));
  assert.ok(sig instanceof Chord);
  assert.ok(sig.tasks instanceof Array && sig.tasks.every((t) => t instanceof Signature), 'the header group becomes a list of signatures, as Celery\'s _maybe_group');
  assert.equal(sig.body.task, 'tasks.tsum');
  const again = JSON.parse(PY_NESTED_CHORD);
  again.kwargs.header = again.kwargs.header.kwargs.tasks;
  assert.equal(dumps(sig), dumps(again));
  const c = app.signature({ task: 'celery.chain', args: [], kwargs: { tasks: [{ task: 'a', args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false }] }, options: {}, subtask_type: 'chain', immutable: false });
  assert.ok(c instanceof Chain);
  const odd = app.signature({ task: 'x', args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false, chord_size: 3 });
  assert.match(dumps(odd), /"chord_size": 3}$/, 'keys beyond Celery\'s six are kept');
});

test('partial arguments go first, kwargs merge, an immutable signature keeps its own; group_id and stamped headers never change in a merge', () => {
  const { add } = setup();
  const sig = add.s(10).set({ groupId: 'g1', queue: 'q1' }).stamp({ tenant: 'a' });
  const [args, kwargs, options] = sig.merge([5], { z: 1 }, { group_id: 'g2', queue: 'q2', tenant: 'b' });
  assert.deepEqual(args, [5, 10]);
  assert.deepEqual(kwargs, { z: 1 });
  assert.equal(options.group_id, 'g1');
  assert.equal(options.tenant, 'a');
  assert.equal(options.queue, 'q2');
  assert.deepEqual(add.si(1, 2).merge([5])[0], [1, 2]);
  const c = sig.clone([1]);
  assert.deepEqual(c.args, [1, 10]);
  c.options.queue = 'other';
  assert.equal(sig.options.queue, 'q1', 'a clone has its own options');
});

test('freeze gives a task id once, the app\'s oid as reply_to, and a group id only where none is set', () => {
  const { app, add } = setup();
  const sig = add.s(1, 2);
  const r = sig.freeze(null, { groupId: 'g', rootId: 'root', groupIndex: 3 });
  assert.equal(r.id, sig.id);
  assert.deepEqual(sig.options, { task_id: r.id, root_id: 'root', reply_to: app.oid, group_id: 'g', group_index: 3 });
  assert.equal(sig.freeze('other').id, r.id, 'a frozen signature keeps its id');
  sig.freeze(null, { groupId: 'g2' });
  assert.equal(sig.options.group_id, 'g', 'group_id is not replaced');
});

test('a chain freezes last step first: each result\'s parent is the step before, a nested chain is spliced in, and a group followed by a step becomes a chord', () => {
  const { add, tsum } = setup();
  const c = chain(add.s(1, 2), new Chain([add.s(3), add.s(4)]), add.s(5));
  const last = c.freeze();
  const ids: string[] = [];
  for (let n: typeof last | null = last; n; n = n.parent) ids.push(n.id);
  assert.equal(ids.length, 4, 'four steps once the nested chain is spliced');
  const withChord = new Chain([add.s(1, 2), group(add.s(1), add.s(2)), tsum.s()]);
  const body = withChord.freeze();
  const header = body.parent!;
  assert.equal(header.isGroup, true, 'the body\'s parent is the header group');
  assert.equal(header.results.length, 2);
  assert.equal(header.parent?.parent, null, 'and the header\'s parent is the first step');
});

test('a group freezes its members with its id and their index; nested groups are flattened (Celery\'s extendleft order)', () => {
  const { add } = setup();
  const g = new Group([add.s(1, 1), new Group([add.s(2, 2), add.s(3, 3)]), add.s(4, 4)]);
  const r = g.freeze(null, { groupId: 'G' });
  assert.equal(r.isGroup && r.results.length, 4);
  assert.deepEqual(g.tasks.map((t) => [t.args[0], t.options.group_index, t.options.group_id]), [[1, 0, 'G'], [3, 1, 'G'], [2, 2, 'G'], [4, 3, 'G']]);
});

test('descend counts what a chord waits for: members of groups, the last step of a chain, a nested chord\'s body', () => {
  const { add, tsum } = setup();
  assert.equal(descend(add.s(1, 1)), 1);
  assert.equal(descend(group(add.s(1, 1), group(add.s(2, 2), add.s(3, 3)))), 3);
  assert.equal(descend(chain(add.s(1, 1), group(add.s(1), add.s(2)))), 2);
  assert.equal(descend(chord([add.s(1, 1), add.s(2, 2)], tsum.s())), 1);
});

test('a group takes no link (use a chord); a chord\'s link is its body\'s', () => {
  const { add, tsum } = setup();
  const g = group(add.s(1, 1), add.s(2, 2));
  assert.rejects(g.applyAsync([], {}, { link: add.s(1) }), /Cannot add link to group: use a chord/);
  const c = chord([add.s(1, 1)], tsum.s());
  c.link(add.s(1));
  assert.equal((c.body.options.link as Signature[])[0]!.task, 't.add');
});
