// A registered task: its handler, options, and the calling API (delay / applyAsync).
import type { Celeriac } from './celeriac.js';
import type { AsyncResult } from './result.js';
import type { ApplyOptions, TaskOptions } from './options.js';
import { checkTimingOptions, normalizeOptions } from './options.js';
import { applyEagerly, type EagerOptions, type EagerResult } from './eager.js';
import { runInTaskContext, type TaskContext } from './context.js';
import { parameterNames, bindArguments } from './params.js';
import { Signature } from '../canvas/signature.js';
import type { AsyncResult as Result } from './result.js';
import { Chunks, XMap, XStarmap } from '../canvas/map.js';
import type { Remaining, Suffix } from '../canvas/types.js';

export type Handler<A extends unknown[], R> = (...args: A) => R | Promise<R>;
export type BoundHandler<A extends unknown[], R> = (task: TaskContext, ...args: A) => R | Promise<R>;

/** One call in task.applyBulk: what applyAsync takes, as one object. */
export interface BulkCall<A extends unknown[] = unknown[]> {
  args?: A | unknown[];
  kwargs?: Record<string, unknown>;
  options?: ApplyOptions;
}

export class Task<A extends unknown[] = unknown[], R = unknown> {
  /** Options with Celery's names (acks_late, max_retries, …). */
  readonly options: Record<string, unknown>;
  /** Parameter names for keyword arguments; null when the handler's source cannot be read. */
  private readonly params: (string | undefined)[] | null;

  constructor(
    readonly app: Celeriac,
    readonly name: string,
    private readonly handler: Handler<A, R> | BoundHandler<A, R>,
    options: TaskOptions = {},
  ) {
    this.options = normalizeOptions(options);
    const names = Array.isArray(options.params) ? options.params : parameterNames(handler as (...a: never[]) => unknown);
    this.params = names && this.bound && !Array.isArray(options.params) ? names.slice(1) : names;
  }

  get bound(): boolean {
    return this.options.bind === true;
  }

  /** Positional parameters of the handler (the bound task not counted). */
  get arity(): number {
    return this.params ? this.params.length : Math.max(0, this.handler.length - (this.bound ? 1 : 0));
  }

  /**
   * A signature of this task with `args` bound at the end of its parameters (Celery's task.s): in a
   * chain the previous step's result comes first. add.s(2, 2) is complete; add.s(4) still takes x.
   */
  s<B extends Suffix<Required<A>>>(...args: B): Signature<Remaining<A, B>, R, false, Result<R>> {
    return new Signature(this.name, args, {}, {}, null, false, this.app);
  }

  /** An immutable signature (Celery's task.si): it ignores the result of the step before it. */
  si(...args: A): Signature<[], R, true, Result<R>> {
    return new Signature(this.name, args, {}, {}, null, true, this.app) as Signature<[], R, true, Result<R>>;
  }

  /** A signature with args, kwargs and options (Celery's task.signature); untyped in its open parameters. */
  signature(args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: ApplyOptions = {}): Signature<any[], R, false, Result<R>> {
    return new Signature(this.name, args, kwargs, normalizeOptions(options), null, false, this.app);
  }

  private bare(): Signature {
    return new Signature(this.name, [], {}, {}, null, false, this.app);
  }

  /** celery.map: this task called for each item, in one worker (Celery's task.map). */
  map(it: Iterable<A[0]>): XMap<R> {
    return new XMap<R>(this.bare(), it, {}, this.app);
  }

  /** celery.starmap: this task called with each item as its arguments (Celery's task.starmap). */
  starmap(it: Iterable<A>): XStarmap<R> {
    return new XStarmap<R>(this.bare(), it as Iterable<unknown[]>, {}, this.app);
  }

  /** The items in chunks of n, one celery.starmap task each, as a group (Celery's task.chunks). */
  chunks(it: Iterable<A>, n: number): Chunks<R> {
    return new Chunks<R>(this.bare(), it as Iterable<unknown[]>, n, {}, this.app);
  }

  /** Send the task with positional arguments (Celery's delay). */
  delay(...args: A): Promise<AsyncResult<R>> {
    return this.applyAsync(args);
  }

  /**
   * Send the task with arguments, keyword arguments and options (Celery's apply_async). With
   * task_always_eager it runs here instead, as apply() does, and resolves to its EagerResult.
   */
  applyAsync(args: A | unknown[] = [], kwargs: Record<string, unknown> = {}, options: ApplyOptions = {}): Promise<AsyncResult<R>> {
    if (this.app.conf.task_always_eager === true) return this.apply(args, kwargs, options);
    return this.app.sendTask<R>(this.name, args, kwargs, options);
  }

  /**
   * Run the task here and now, without a broker or worker (Celery's apply): resolves to an EagerResult
   * holding the value, or the error it threw (rejects with that error instead when `throw` is set or
   * task_eager_propagates is true). A retry runs the task again at once, up to its retry limit.
   */
  async apply(args: A | unknown[] = [], kwargs: Record<string, unknown> = {}, options: ApplyOptions & { throw?: boolean } = {}): Promise<EagerResult<R>> {
    const where = `${this.name}.apply`;
    if (!Array.isArray(args)) throw new TypeError(`${where}: args must be an array, got ${typeof args}`);
    if (kwargs === null || typeof kwargs !== 'object' || Array.isArray(kwargs)) throw new TypeError(`${where}: kwargs must be an object`);
    const o = normalizeOptions(options);
    checkTimingOptions(where, o);
    return applyEagerly(this, args, kwargs, o as EagerOptions);
  }

  /**
   * Send many calls of this task at once, each encoded as applyAsync would encode it, published in
   * bulk (one broker round trip per chunk where the transport allows). Results in the order of `calls`.
   */
  async applyBulk(calls: readonly BulkCall<A>[]): Promise<AsyncResult<R>[]> {
    if (!Array.isArray(calls)) throw new TypeError(`${this.name}.applyBulk: calls must be an array of { args?, kwargs?, options? }, got ${typeof calls}`);
    if (this.app.conf.task_always_eager === true) {
      const results: AsyncResult<R>[] = [];
      for (const c of calls) results.push(await this.apply(c?.args ?? [], c?.kwargs ?? {}, c?.options ?? {}));
      return results;
    }
    // A call that is not an object goes through as it is, for sendTasks to reject with its index.
    return this.app.sendTasks<R>(calls.map((c) => (c !== null && typeof c === 'object' ? { ...c, name: this.name } : (c as never))));
  }

  /** Call the handler with Python-style argument binding. Used by the worker. */
  invoke(ctx: TaskContext, args: unknown[], kwargs: Record<string, unknown>): Promise<R> {
    return Promise.resolve(this.call(ctx, args, kwargs));
  }

  /** Call the handler as the current task; returns what it returned (a value or a promise). */
  call(ctx: TaskContext, args: unknown[], kwargs: Record<string, unknown>): R | Promise<R> {
    const positional = bindArguments(this.name, this.params, args, kwargs, this.bound);
    if (this.bound) return runInTaskContext(this.handler, ctx, () => (this.handler as BoundHandler<A, R>)(ctx, ...(positional as A))) as R | Promise<R>;
    return runInTaskContext(this.handler, ctx, () => (this.handler as Handler<A, R>)(...(positional as A))) as R | Promise<R>;
  }

  toString(): string {
    return `<@task: ${this.name}>`;
  }
}
