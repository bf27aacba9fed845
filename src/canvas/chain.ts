// Celery's chain: only the first task is sent; the others travel in its embed.chain, last step first,
// and each worker pops the next one and applies it with the result. A group followed by a step becomes
// a chord; nested chains are spliced in. Ported from celery/canvas.py (5.6) prepare_steps and run.
import type { AsyncResult, ResultNode } from '../app/result.js';
import type { AnySignature, CanvasHost, CheckStep, ResultOf } from './types.js';
import type { Dispatch } from './dispatch.js';
import { Group, maybeUnrollGroup } from './group.js';
import { Chord } from './chord.js';
import { maybeSignature, registerType, Signature, type FreezeOptions, type SignatureDict } from './signature.js';

type Member = Signature | SignatureDict;

interface StepOptions {
  rootId?: string | null;
  linkError?: unknown;
  lastTaskId?: string | null;
  groupId?: string | null;
  chordBody?: Signature | SignatureDict | null;
  groupIndex?: number | null;
  clone: boolean;
  /** Only when applying (freeze alone does not check): a chord in the chain needs a backend that joins. */
  dispatch?: Dispatch;
}

export class Chain<P extends unknown[] = any[], R = any> extends Signature<P, R, boolean, AsyncResult<R>> {
  constructor(tasks: readonly Member[], options: Record<string, unknown> = {}, app?: CanvasHost) {
    const first = tasks.find((t): t is Signature => t instanceof Signature);
    super('celery.chain', [], { tasks: [...tasks] }, options, 'chain', false, app ?? first?.app);
  }

  static override fromDict(d: SignatureDict, app?: CanvasHost): Chain {
    const tasks = Array.isArray(d.kwargs?.tasks) ? (d.kwargs.tasks as Member[]) : [];
    const c = new Chain(tasks.map((t) => maybeSignature(t, app)), { ...(d.options ?? {}) }, app);
    c.keepExtra(d);
    return c;
  }

  get tasks(): Signature[] {
    return this.kwargs.tasks as Signature[];
  }

  set tasks(tasks: Member[]) {
    this.kwargs.tasks = tasks;
  }

  override clone(args?: readonly unknown[], kwargs?: Record<string, unknown>, options?: Record<string, unknown>): this {
    const c = super.clone(args, kwargs, options);
    c.kwargs.tasks = (c.kwargs.tasks as Member[]).map((t) => maybeSignature(t, this.app, true));
    return c;
  }

  /** This chain followed by `next` (Celery's chain | task), which must take this chain's result. */
  pipe<S extends AnySignature>(next: S & NoInfer<CheckStep<R, S>>): Chain<P, ResultOf<S>> {
    return new Chain<P, ResultOf<S>>([...this.tasks.map((t) => t.clone()), next], {}, this.app);
  }

  override applyTo(d: Dispatch, args: readonly unknown[], kwargs: Record<string, unknown>, options: Record<string, unknown>): ResultNode {
    return this.run(d, args, kwargs, { ...this.options, ...options });
  }

  /** Celery's chain.run: prepare every step, then send the first with the rest as its chain. */
  run(d: Dispatch, args: readonly unknown[], kwargs: Record<string, unknown>, options: Record<string, unknown>): ResultNode {
    const {
      group_id: groupId, chord, task_id: taskId, link, link_error: linkError, publisher: _pub, producer: _prod,
      root_id: rootId, parent_id: _parentId, app: _app, group_index: groupIndex, ...rest
    } = options;
    const useLink = d.host.conf.task_protocol === 1;
    const partial = args.length && !this.immutable ? [...args, ...this.args] : this.args;
    const [tasks, results] = this.prepareSteps(partial, kwargs, this.tasks, {
      rootId: rootId as string | undefined, linkError, lastTaskId: taskId as string | undefined, groupId: groupId as string | undefined,
      chordBody: chord as Signature | undefined, groupIndex: groupIndex as number | undefined, clone: true, dispatch: d,
    });
    if (!results.length) throw new TypeError('An empty chain has nothing to apply: give chain() at least one signature');
    if (link) tasks[0]!.extendListOption('link', link);
    const first = tasks.pop()!;
    const chainOptions: Record<string, unknown> = { ...rest };
    if (useLink) chainOptions.chain = null;
    else if (!('chain' in rest)) chainOptions.chain = tasks;
    else chainOptions.chain = [...((rest.chain as Member[] | null) ?? []), ...tasks];
    const applied = first.applyTo(d, [], {}, chainOptions);
    return tasks.length ? results[0]! : applied;
  }

  override freeze(id?: string | null, o: FreezeOptions = {}): ResultNode {
    const [, results] = this.prepareSteps(this.args, this.kwargs, this.tasks, {
      rootId: o.rootId, lastTaskId: id, groupId: o.groupId, chordBody: o.chord, groupIndex: o.groupIndex, clone: false,
    });
    return results[0]!;
  }

  /**
   * Celery's prepare_steps: walk the steps last to first, freezing each (the last with the chain's own
   * id, group and chord), splicing nested chains, turning a group followed by a step into a chord, and
   * linking each result to the one before it. Returns the steps and their results, last step first.
   */
  prepareSteps(args: readonly unknown[], kwargs: Record<string, unknown>, steps: readonly Member[], o: StepOptions): [Signature[], ResultNode[]] {
    const useLink = this.app?.conf.task_protocol === 1;
    const pending = [...steps];
    const tasks: Signature[] = [];
    const results: ResultNode[] = [];
    let prevTask: Signature | null = null;
    let prevRes: ResultNode | null = null;
    let i = 0;
    while (pending.length) {
      let task = maybeSignature(pending.pop()!, this.app);
      const isFirst = pending.length === 0;
      const isLast = i === 0;
      if (task instanceof Group) task = maybeUnrollGroup(task);
      if (o.clone) task = isFirst ? task.clone(args, kwargs) : task.clone();
      else if (isFirst) task.args = [...args, ...task.args];
      if (task instanceof Chain) {
        pending.push(...task.tasks);
        continue;
      }
      if (task instanceof Group && prevTask) {
        tasks.pop();
        results.pop();
        const options: Record<string, unknown> = prevRes && !prevRes.isGroup ? { task_id: prevRes.id } : {};
        if (o.rootId) options.root_id = o.rootId;
        task = new Chord(task, prevTask, options, this.app);
        prevTask = tasks.at(-1) ?? null;
        prevRes = results.at(-1) ?? null;
      }
      const res = isLast
        ? task.freeze(o.lastTaskId, { rootId: o.rootId, groupId: o.groupId, chord: o.chordBody, groupIndex: o.groupIndex })
        : task.freeze(null, { rootId: o.rootId });
      i++;
      if (prevTask) {
        if (useLink) task.link(prevTask);
        if (prevRes && !prevRes.parent) prevRes.parent = res;
      }
      if (o.linkError) for (const eb of Array.isArray(o.linkError) ? o.linkError : [o.linkError]) task.linkError(maybeSignature(eb as Member, this.app));
      tasks.push(task);
      results.push(res);
      prevTask = task;
      prevRes = res;
      if (task instanceof Chord) {
        o.dispatch?.ensureChordsAllowed();
        let node: ResultNode = res;
        while (node.parent) node = node.parent;
        prevRes = node;
      }
    }
    if (o.lastTaskId) this.id = o.lastTaskId;
    return [tasks, results];
  }

  override toString(): string {
    return this.tasks.map((t) => String(t)).join(' | ');
  }
}

registerType('chain', Chain);
