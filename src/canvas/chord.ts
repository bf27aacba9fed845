// Celery's chord: a header group whose members carry the body (embed.chord); when the last of them
// finishes the body is applied with the list of their results, in header order. Ported from
// celery/canvas.py (5.6): the header size is set before the header is published, the body's options
// take the group id, and a backend without a join gets celery.chord_unlock.
import { randomUUID } from 'node:crypto';
import type { AsyncResult, ResultNode } from '../app/result.js';
import type { CanvasHost } from './types.js';
import type { Dispatch } from './dispatch.js';
import { Group } from './group.js';
import { maybeSignature, registerType, Signature, type FreezeOptions, type SignatureDict } from './signature.js';

type Member = Signature | SignatureDict;
export type ChordHeader = Group | readonly Member[] | Member;

export class Chord<R = any> extends Signature<[], R, boolean, AsyncResult<R>> {
  constructor(header: ChordHeader, body: Member | null, options: Record<string, unknown> = {}, app?: CanvasHost, extraKwargs: Record<string, unknown> = { kwargs: {} }) {
    const tasks = headerTasks(header, app);
    const b = maybeSignature(body ?? null, app);
    super('celery.chord', [], { ...extraKwargs, header: tasks, body: b }, options, 'chord', false, app ?? tasks.find((t) => t.app)?.app ?? b?.app);
  }

  static override fromDict(d: SignatureDict, app?: CanvasHost): Chord {
    const { header, body, ...rest } = (d.kwargs ?? {}) as Record<string, unknown>;
    const c = new Chord(header as ChordHeader, (body as Member | undefined) ?? null, { ...(d.options ?? {}) }, app, rest);
    c.args = Array.isArray(d.args) ? [...d.args] : [];
    c.immutable = d.immutable === true;
    c.keepExtra(d);
    return c;
  }

  /** The header: a group once frozen, a list of signatures before. */
  get tasks(): Group | Signature[] {
    return this.kwargs.header as Group | Signature[];
  }

  set tasks(v: Group | Signature[]) {
    this.kwargs.header = v;
  }

  get body(): Signature {
    return this.kwargs.body as Signature;
  }

  set body(v: Signature) {
    this.kwargs.body = v;
  }

  override clone(args?: readonly unknown[], kwargs?: Record<string, unknown>, options?: Record<string, unknown>): this {
    const c = super.clone(args, kwargs, options);
    if (c.kwargs.body) c.kwargs.body = maybeSignature(c.kwargs.body as Member, this.app, true);
    return c;
  }

  /** A callback of a chord is a callback of its body. */
  override link<S extends Signature>(callback: S): S {
    this.body.link(callback);
    return callback;
  }

  /** An errback of a chord is its body's (and nested chords' in the header), as Celery's default. */
  override linkError<S extends Signature>(errback: S): S {
    for (const t of memberList(this.tasks)) if (t instanceof Chord) t.linkError(errback);
    this.body.linkError(errback);
    return errback;
  }

  override setImmutable(immutable: boolean): void {
    for (const t of memberList(this.tasks)) maybeSignature(t, this.app).setImmutable(immutable);
  }

  override applyTo(d: Dispatch, args: readonly unknown[], kwargs: Record<string, unknown>, options: Record<string, unknown>): ResultNode {
    const { task_id: taskIdArg, producer: _p, publisher: _pub, connection: _c, router: _r, result_cls: _rc, ...opts } = options;
    const partial = args.length && !this.immutable ? [...args, ...this.args] : this.args;
    const { body: bodyArg, ...kw } = kwargs;
    const body = maybeSignature((bodyArg as Member | undefined) ?? this.body, this.app).clone([], {}, opts);
    const callKwargs = { ...(this.kwargs.kwargs as Record<string, unknown> | undefined), ...kw };
    const header = this.tasks instanceof Group ? this.tasks.clone() : new Group(this.tasks, { task_id: this.options.task_id ?? randomUUID() }, this.app);
    const merged: Record<string, unknown> = { ...this.options, ...opts };
    const optionTaskId = merged.task_id as string | undefined;
    delete merged.task_id;
    return this.run(d, header, body, partial, { ...merged, task_id: (taskIdArg as string | undefined) ?? optionTaskId, kwargs: callKwargs });
  }

  /** Celery's chord.run: freeze the body and the header, set up the join, apply the header. */
  run(d: Dispatch, header: Group, body: Signature, partialArgs: readonly unknown[], options: Record<string, unknown>): ResultNode {
    const { interval, countdown = 1, max_retries: maxRetries, eager: _eager, task_id: taskId, kwargs = {}, app: _app, ...rest } = options;
    const groupId = (header.options.task_id as string | undefined) || randomUUID();
    const rootId = body.options.root_id as string | undefined;
    const opts: Record<string, unknown> = { ...this.options, ...rest };
    if (Object.keys(opts).length) {
      delete opts.task_id;
      Object.assign(body.options, opts);
    }
    const bodyResult = body.freeze((taskId as string | undefined) || randomUUID(), { groupId, rootId });
    delete opts.chain;
    delete opts.chord;
    delete opts.task_id;
    const [gid, results] = header.freezeGroupTasks({ groupId, chord: body, rootId });
    let headerResult: ResultNode;
    if (header.tasks.length) {
      d.applyChord(d.host.GroupResult(gid, results), body, { interval: interval as number | null, countdown: countdown as number, maxRetries: maxRetries as number | null });
      headerResult = header.applyTo(d, partialArgs, kwargs as Record<string, unknown>, { ...opts, task_id: groupId });
    } else {
      body.applyTo(d, [[]], {}, {});
      headerResult = d.host.GroupResult(gid, results);
    }
    bodyResult.parent = headerResult;
    return bodyResult;
  }

  override freeze(id?: string | null, o: FreezeOptions = {}): ResultNode {
    if (!(this.tasks instanceof Group)) this.tasks = new Group(this.tasks, {}, this.app);
    const header = this.tasks;
    const headerResult = header.freeze(null, { parentId: o.parentId, rootId: o.rootId, chord: this.body });
    this.id = header.id;
    const bodyResult = this.body.freeze(id, { rootId: o.rootId, chord: o.chord, groupId: o.groupId, groupIndex: o.groupIndex });
    const seen = new Set<string>();
    for (let node: ResultNode | null = bodyResult; node; node = node.parent) {
      if (seen.has(node.id)) throw new Error('Recursive result parents');
      seen.add(node.id);
      if (node.parent === null) {
        node.parent = headerResult;
        break;
      }
    }
    return bodyResult;
  }

  override toString(): string {
    return `chord(${memberList(this.tasks).map((t) => String(t)).join(', ')}) | ${String(this.body)}`;
  }
}

/** Celery's _maybe_group: a group or chain gives its tasks, one signature a list of it, a list its signatures. */
function headerTasks(header: ChordHeader, app?: CanvasHost): Signature[] {
  if (header instanceof Group) return [...header.tasks];
  if (Array.isArray(header)) return header.map((t: Member) => maybeSignature(t, app));
  const s = maybeSignature(header as Member, app);
  if (s.subtaskType === 'group' || s.subtaskType === 'chain') return (s.kwargs.tasks as Member[]).map((t) => maybeSignature(t, app));
  return [s];
}

function memberList(tasks: Group | Signature[]): Signature[] {
  return tasks instanceof Group ? tasks.tasks : tasks;
}

registerType('chord', Chord);
