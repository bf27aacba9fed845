// Celery's group: tasks applied in parallel under one group id, each with its group_index; the header
// of a chord is a group whose members carry the chord body. Ported from celery/canvas.py (5.6).
import { randomUUID } from 'node:crypto';
import type { GroupResult, ResultNode } from '../app/result.js';
import type { CanvasHost } from './types.js';
import type { Dispatch } from './dispatch.js';
import { descend, maybeSignature, registerType, Signature, type FreezeOptions, type SignatureDict } from './signature.js';

type Member = Signature | SignatureDict;
type Prepared = [sig: Signature, result: ResultNode, groupId: string];

const IMMUTABLE_OPTIONS = new Set(['group_id', 'stamped_headers']);

export class Group<Rs extends unknown[] = any[], P extends unknown[] = any[]> extends Signature<P, Rs, boolean, GroupResult<Rs>> {
  constructor(tasks: readonly Member[], options: Record<string, unknown> = {}, app?: CanvasHost) {
    const first = tasks.find((t): t is Signature => t instanceof Signature);
    super('celery.group', [], { tasks: [...tasks] }, options, 'group', false, app ?? first?.app);
  }

  static override fromDict(d: SignatureDict, app?: CanvasHost): Group {
    const tasks = Array.isArray(d.kwargs?.tasks) ? (d.kwargs.tasks as Member[]) : [];
    const g = new Group(tasks.map((t) => maybeSignature(t, app)), asOptions(d.options), app);
    g.keepExtra(d);
    return g;
  }

  get tasks(): Signature[] {
    return this.kwargs.tasks as Signature[];
  }

  set tasks(tasks: Member[]) {
    this.kwargs.tasks = tasks;
  }

  override setImmutable(immutable: boolean): void {
    for (const t of this.tasks) maybeSignature(t, this.app).setImmutable(immutable);
  }

  /** A callback of a group runs after its first task only, with no arguments: use a chord to wait for all. */
  override link<S extends Signature>(callback: S): S {
    this.tasks[0]!.link(callback.clone().set({ immutable: true }));
    return callback;
  }

  override linkError<S extends Signature>(errback: S): S {
    for (const t of this.tasks) t.linkError(errback.clone().set({ immutable: true }));
    return errback;
  }

  /** Give each task a countdown: start, start + step, … up to stop (Celery's skew). */
  skew(start = 1, stop: number | null = null, step = 1): this {
    let at = start;
    for (const t of this.tasks) {
      t.set({ countdown: at });
      if (stop === null || at + step <= stop) at += step;
    }
    return this;
  }

  override applyTo(d: Dispatch, args: readonly unknown[], kwargs: Record<string, unknown>, options: Record<string, unknown>): ResultNode {
    const { add_to_parent: addToParent, link, link_error: linkError, ...rest } = options;
    if (link != null) throw new TypeError('Cannot add link to group: use a chord');
    if (linkError != null) throw new TypeError('Cannot add link to group: do that on individual tasks');
    if (this.tasks.length === 0) return this.freeze();
    const [opts, groupId, rootId] = this.freezeGid(rest);
    const results = this.applyTasks(d, this.prepared(this.tasks, [], groupId, rootId), args, kwargs, opts);
    let result: ResultNode = d.host.GroupResult(groupId, results);
    if (results.length === 1 && results[0]!.isGroup) result = results[0]!;
    if (addToParent !== false) d.addToParent(result);
    return result;
  }

  /** The group id is the group's task_id (or a new one); every member gets it as group_id. */
  private freezeGid(options: Record<string, unknown>): [Record<string, unknown>, string, string | undefined] {
    const opts: Record<string, unknown> = { ...this.options };
    for (const [k, v] of Object.entries(options)) if (!(IMMUTABLE_OPTIONS.has(k) && k in this.options)) opts[k] = v;
    const groupId = (opts.task_id as string | undefined) ?? randomUUID();
    delete opts.task_id;
    opts.group_id = groupId;
    return [opts, groupId, (opts.root_id as string | undefined) ?? undefined];
  }

  /** Copies of the members, nested groups unrolled, each frozen with the group id and its index. */
  prepared(tasks: readonly Member[], partialArgs: readonly unknown[], groupId: string, rootId: string | undefined): Prepared[] {
    const out: Prepared[] = [];
    tasks.forEach((t, index) => {
      const task = t instanceof Signature ? t.clone() : Signature.fromDict(t, this.app);
      if (task instanceof Group) {
        out.push(...task.prepared(task.tasks, partialArgs, groupId, rootId));
        return;
      }
      if (partialArgs.length && !task.immutable) task.args = [...partialArgs, ...task.args];
      out.push([task, task.freeze(null, { groupId, rootId, groupIndex: index }), groupId]);
    });
    return out;
  }

  /** Apply each member; the chord size is set before the last member of a chord header is built. */
  applyTasks(d: Dispatch, tasks: Prepared[], args: readonly unknown[], kwargs: Record<string, unknown>, options: Record<string, unknown>): ResultNode[] {
    const { chord, group_index: _index, ...rest } = options;
    let size = 0;
    return tasks.map(([sig, res, groupId], i) => {
      const chordObj = chord ?? sig.options.chord;
      size += descend(sig);
      if (chordObj != null && i === tasks.length - 1) d.setChordSize(groupId, size);
      sig.applyTo(d, args, kwargs, { ...rest, add_to_parent: false, chord: chordObj });
      return res;
    });
  }

  /** Celery's _freeze_group_tasks: the group id, and the members frozen (nested groups flattened). */
  freezeGroupTasks(o: FreezeOptions = {}): [string, ResultNode[]] {
    const opts = this.options;
    let gid = opts.task_id as string | undefined;
    if (!gid) gid = opts.task_id = o.groupId || randomUUID();
    if (o.groupId) opts.group_id = o.groupId;
    if (o.chord) opts.chord = o.chord;
    if (o.groupIndex != null) opts.group_index = o.groupIndex;
    if (!('root_id' in opts)) opts.root_id = o.rootId ?? null;
    if (!('parent_id' in opts)) opts.parent_id = o.parentId ?? null;
    const rootId = opts.root_id as string | null;
    const parentId = opts.parent_id as string | null;
    const stack: Member[] = [...this.tasks];
    const flat: Signature[] = [];
    const results: ResultNode[] = [];
    while (stack.length) {
      const task = maybeSignature(stack.shift()!, this.app).clone();
      if (task instanceof Group) {
        // Celery's deque.extendleft: a nested group's tasks come first, in reverse order.
        for (const t of task.tasks) stack.unshift(t);
        continue;
      }
      flat.push(task);
      results.push(task.freeze(null, { groupId: o.groupId, chord: o.chord, rootId, parentId, groupIndex: results.length }));
    }
    this.tasks = flat;
    return [gid, results];
  }

  override freeze(_id?: string | null, o: FreezeOptions = {}): ResultNode {
    const [gid, results] = this.freezeGroupTasks(o);
    return this.host().GroupResult(gid, results);
  }

  override toString(): string {
    return `group(${this.tasks.map((t) => String(t)).join(', ')})`;
  }
}

/** A group of one task is that task (Celery's maybe_unroll_group). */
export function maybeUnrollGroup(g: Group): Signature {
  return g.tasks.length === 1 ? maybeSignature(g.tasks[0]!, g.app) : g;
}

function asOptions(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

registerType('group', Group);
