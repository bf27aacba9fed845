// Celery's map, starmap and chunks: one message (celery.map / celery.starmap) that calls a task
// in-process for each item, or a group of starmaps over chunks of the items. They travel as plain
// signatures of those built-in tasks (subtask_type null, as Celery writes them), routed where the task
// they call is routed.
import type { AsyncResult, GroupResult, ResultNode } from '../app/result.js';
import type { CanvasHost } from './types.js';
import type { Dispatch } from './dispatch.js';
import { Group } from './group.js';
import { Signature, type SignatureDict } from './signature.js';

type Inner = Signature | SignatureDict;

function innerName(task: Inner): string {
  return task instanceof Signature ? task.task : String(task.task);
}

class BaseMap<R> extends Signature<[], R[], true, AsyncResult<R[]>> {
  constructor(builtin: string, task: Inner, it: Iterable<unknown>, options: Record<string, unknown>, app?: CanvasHost) {
    super(builtin, [], { task, it: [...it] }, options, null, true, app ?? (task instanceof Signature ? task.app : undefined));
  }

  override applyTo(d: Dispatch, _args: readonly unknown[], _kwargs: Record<string, unknown>, options: Record<string, unknown>): ResultNode {
    const task = this.kwargs.task as Inner;
    return d.send(this.task, [], { task, it: this.kwargs.it }, { ...this.options, ...options, route_name: innerName(task) });
  }
}

/** celery.map: [task(item) for item in it], in one task (Celery's xmap; task.map(it)). */
export class XMap<R = unknown> extends BaseMap<R> {
  constructor(task: Inner, it: Iterable<unknown>, options: Record<string, unknown> = {}, app?: CanvasHost) {
    super('celery.map', task, it, options, app);
  }
}

/** celery.starmap: [task(*item) for item in it], in one task (Celery's xstarmap; task.starmap(it)). */
export class XStarmap<R = unknown> extends BaseMap<R> {
  constructor(task: Inner, it: Iterable<unknown[]>, options: Record<string, unknown> = {}, app?: CanvasHost) {
    super('celery.starmap', task, it, options, app);
  }
}

/** The items in chunks of n, each a celery.starmap task of one group (Celery's chunks; task.chunks(it, n)). */
export class Chunks<R = unknown> extends Signature<[], R[][], true, GroupResult<R[][]>> {
  constructor(task: Inner, it: Iterable<unknown[]>, n: number, options: Record<string, unknown> = {}, app?: CanvasHost) {
    if (!Number.isInteger(n) || n < 1) throw new TypeError(`chunks: n must be a positive integer, got ${JSON.stringify(n)}`);
    super('celery.chunks', [], { task, it: [...it], n }, options, null, true, app ?? (task instanceof Signature ? task.app : undefined));
  }

  /** The group of starmaps this applies. */
  group(): Group<R[][]> {
    const { task, it, n } = this.kwargs as { task: Inner; it: unknown[][]; n: number };
    const parts: XStarmap<R>[] = [];
    for (let i = 0; i < it.length; i += n) parts.push(new XStarmap<R>(task, it.slice(i, i + n), {}, this.app));
    return new Group<R[][]>(parts, {}, this.app);
  }

  override applyTo(d: Dispatch, args: readonly unknown[], kwargs: Record<string, unknown>, options: Record<string, unknown>): ResultNode {
    return this.group().applyTo(d, args, kwargs, { ...this.options, ...options, route_name: innerName(this.kwargs.task as Inner) });
  }
}
