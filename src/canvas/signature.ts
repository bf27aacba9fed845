// Celery's Signature: a task call not yet made (task, args, kwargs, options), serialised exactly as
// Celery's signature dict, with partial application, options, links and freezing. Chain, group, chord
// and the map/chunks signatures (chain.ts, group.ts, chord.ts, map.ts) subclass it.
import { randomUUID } from 'node:crypto';
import type { AsyncResult, ResultNode } from '../app/result.js';
import type { CanvasHost, Suffix, Remaining } from './types.js';
import { Dispatch } from './dispatch.js';
import type { SignatureDict } from '../protocol/message.js';

/** The JSON form of a signature, in Celery's key order (a message's callbacks, chain and chord carry them). */
export type { SignatureDict };

/** What freeze() records in the options (Celery's freeze keywords). */
export interface FreezeOptions {
  groupId?: string | null;
  chord?: Signature | SignatureDict | null;
  rootId?: string | null;
  parentId?: string | null;
  groupIndex?: number | null;
}

/** Options no merge may change once set: changing them would stall the group or chord waiting on them. */
const IMMUTABLE_OPTIONS = new Set(['group_id', 'stamped_headers']);
const SIGNATURE_KEYS = new Set(['task', 'args', 'kwargs', 'options', 'subtask_type', 'immutable']);

type SignatureClass = { fromDict(d: SignatureDict, app?: CanvasHost): Signature };
const TYPES = new Map<string, SignatureClass>();

/** Register a subclass by its subtask_type, for fromDict (Celery's Signature.register_type). */
export function registerType(name: string, cls: SignatureClass): void {
  TYPES.set(name, cls);
}

export class Signature<P extends unknown[] = any[], R = any, I extends boolean = boolean, H extends ResultNode = ResultNode> {
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: Record<string, unknown>;
  subtaskType: string | null;
  immutable: boolean;
  /** The app that sends it: set by task.s(), app.signature() and whoever reads it from a message. */
  app: CanvasHost | undefined;
  /** Keys a peer's dict had beyond Celery's six: kept and written back. */
  protected extra: Record<string, unknown> | undefined;
  /** Type-only: the parameters still open, the result, whether the parent's result is ignored. */
  declare readonly __types?: { params: P; result: R; immutable: I };

  constructor(task: string, args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: Record<string, unknown> = {}, subtaskType: string | null = null, immutable = false, app?: CanvasHost) {
    this.task = task;
    this.args = [...args];
    this.kwargs = kwargs;
    this.options = options;
    this.subtaskType = subtaskType;
    this.immutable = immutable;
    this.app = app;
  }

  /** A signature from its dict (a message's callbacks, chain, chord), as its subtask_type's class. */
  static fromDict(d: SignatureDict, app?: CanvasHost): Signature {
    const cls = d.subtask_type ? TYPES.get(d.subtask_type) : undefined;
    if (cls && cls !== Signature) return cls.fromDict(d, app);
    const s = new Signature(String(d.task), Array.isArray(d.args) ? d.args : [], asRecord(d.kwargs), asRecord(d.options), d.subtask_type ?? null, d.immutable === true, app);
    s.keepExtra(d);
    return s;
  }

  protected keepExtra(d: SignatureDict): void {
    for (const k of Object.keys(d)) if (!SIGNATURE_KEYS.has(k)) (this.extra ??= {})[k] = d[k];
  }

  get id(): string | undefined {
    return this.options.task_id as string | undefined;
  }

  set id(value: string | undefined) {
    this.options.task_id = value;
  }

  /** The dict Celery sends: {task, args, kwargs, options, subtask_type, immutable}. */
  toJSON(): SignatureDict {
    return { task: this.task, args: this.args, kwargs: this.kwargs, options: this.options, subtask_type: this.subtaskType, immutable: this.immutable, ...this.extra };
  }

  /** A deep plain copy of toJSON() (nested signatures as dicts). */
  toDict(): SignatureDict {
    return plain(this) as SignatureDict;
  }

  /**
   * Partial args go before the stored ones, kwargs merge over them, options merge except those that
   * must not change (Celery's _merge); an immutable signature keeps its args and kwargs.
   */
  merge(args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options?: Record<string, unknown>, force = false): [unknown[], Record<string, unknown>, Record<string, unknown>] {
    let opts = this.options;
    if (options) {
      const stamped = Array.isArray(this.options.stamped_headers) ? (this.options.stamped_headers as string[]) : [];
      const fixed = (k: string) => (IMMUTABLE_OPTIONS.has(k) || stamped.includes(k)) && k in this.options;
      opts = { ...this.options };
      for (const [k, v] of Object.entries(options)) if (!fixed(k)) opts[k] = v;
    }
    if (this.immutable && !force) return [this.args, this.kwargs, opts];
    return [args.length ? [...args, ...this.args] : this.args, Object.keys(kwargs).length ? { ...this.kwargs, ...kwargs } : this.kwargs, opts];
  }

  /** A copy, with partial args, kwargs and options applied (Celery's clone / partial). */
  clone(args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options?: Record<string, unknown>): this {
    const [a, k, o] = args.length || Object.keys(kwargs).length || (options && Object.keys(options).length) ? this.merge(args, kwargs, options) : [this.args, this.kwargs, this.options];
    const d: SignatureDict = { task: this.task, args: [...a], kwargs: k, options: copyOptions(o), subtask_type: this.subtaskType, immutable: this.immutable, ...this.extra };
    return (this.constructor as unknown as SignatureClass).fromDict(d, this.app) as this;
  }

  /** Set execution options (queue, countdown, priority, …; camelCase or Celery's names); returns this. */
  set(options: Record<string, unknown> & { immutable?: boolean }): this {
    const { immutable, ...rest } = options;
    if (immutable !== undefined) this.setImmutable(immutable);
    for (const [k, v] of Object.entries(rest)) if (v !== undefined) this.options[snake(k)] = v;
    return this;
  }

  setImmutable(immutable: boolean): void {
    this.immutable = immutable;
  }

  /** Apply `callback` with this task's result when it succeeds; returns the callback. */
  link<S extends Signature>(callback: S): S {
    return this.appendToListOption('link', callback);
  }

  /** Apply `errback` with this task's id when it fails; returns the errback. */
  linkError<S extends Signature>(errback: S): S {
    return this.appendToListOption('link_error', errback);
  }

  /** linkError that returns this signature, for chaining. */
  onError(errback: Signature): this {
    this.linkError(errback);
    return this;
  }

  protected listOption(key: string): unknown[] {
    let items = this.options[key];
    if (!Array.isArray(items)) items = this.options[key] = items == null ? [] : [items];
    return items as unknown[];
  }

  appendToListOption<T>(key: string, value: T): T {
    const items = this.listOption(key);
    if (!items.includes(value)) items.push(value);
    return value;
  }

  extendListOption(key: string, value: unknown): void {
    this.listOption(key).push(...(Array.isArray(value) ? value : [value]));
  }

  /**
   * Stamp this signature, its links and, for a chain, group or chord, every task in it (Celery ≥ 5.3
   * stamping): the stamps travel as message headers, and workers carry them on untouched.
   */
  stamp(headers: Record<string, unknown>): this {
    const k = this.kwargs;
    const header = k.header instanceof Signature ? [k.header] : k.header;
    const inner = [this.options.link, this.options.link_error, k.tasks, header, k.body].flatMap((v) => (Array.isArray(v) ? v : [v]));
    for (const s of inner) if (s instanceof Signature) s.stamp(headers);
    const names = new Set<string>(Array.isArray(this.options.stamped_headers) ? (this.options.stamped_headers as string[]) : []);
    for (const [key, v] of Object.entries(headers)) {
      names.add(key);
      this.options[key] = v;
    }
    this.options.stamped_headers = [...names];
    return this;
  }

  /** Give the signature its task id (and group, chord, …) without sending it; returns its result. */
  freeze(id?: string | null, o: FreezeOptions = {}): ResultNode {
    const opts = this.options;
    let tid = opts.task_id as string | undefined;
    if (!tid) tid = opts.task_id = id || randomUUID();
    if (o.rootId) opts.root_id = o.rootId;
    if (o.parentId) opts.parent_id = o.parentId;
    if (!('reply_to' in opts)) opts.reply_to = this.host().oid;
    if (o.groupId && !('group_id' in opts)) opts.group_id = o.groupId;
    if (o.chord) opts.chord = o.chord;
    if (o.groupIndex != null) opts.group_index = o.groupIndex;
    return this.host().AsyncResult(tid);
  }

  /** Send it: partial args first, kwargs and options merged (Celery's apply_async). A group gives a GroupResult. */
  async applyAsync(args?: P | unknown[], kwargs: Record<string, unknown> = {}, options: Record<string, unknown> = {}): Promise<H> {
    return (await Dispatch.run(this.host(), (d) => this.applyTo(d, args ?? [], kwargs, snakeOptions(options)))) as H;
  }

  /** Send it with these partial args (Celery's delay). */
  delay(...args: P): Promise<H> {
    return this.applyAsync(args);
  }

  /**
   * Build this signature's messages into `d` (published when the dispatch flushes): Celery's
   * Signature.apply_async, then Task.apply_async. Subclasses build their own.
   */
  applyTo(d: Dispatch, args: readonly unknown[], kwargs: Record<string, unknown>, options: Record<string, unknown>): ResultNode {
    const opts = dropNullish(options);
    const [a, k, o] = args.length || Object.keys(kwargs).length || Object.keys(opts).length ? this.merge(args, kwargs, opts) : [this.args, this.kwargs, this.options];
    return d.send(this.task, a, k, o);
  }

  /** The app, or an error saying how to get one. */
  host(): CanvasHost {
    if (!this.app) throw new Error(`Signature ${this.task} has no app: build it with task.s(), app.signature() or app.signature(dict)`);
    return this.app;
  }

  toString(): string {
    return `${this.task}(${this.args.map((a) => JSON.stringify(a)).join(', ')})`;
  }
}

/** A signature or its dict as a Signature (Celery's maybe_signature); `clone` copies one that already is. */
export function maybeSignature(d: Signature | SignatureDict, app?: CanvasHost, clone?: boolean): Signature;
export function maybeSignature(d: Signature | SignatureDict | null | undefined, app?: CanvasHost, clone?: boolean): Signature | null;
export function maybeSignature(d: Signature | SignatureDict | null | undefined, app?: CanvasHost, clone = false): Signature | null {
  if (d == null) return null;
  let s: Signature;
  if (d instanceof Signature) s = clone ? d.clone() : d;
  else if (typeof d === 'object') s = Signature.fromDict(d, app);
  else throw new TypeError(`Not a signature: ${JSON.stringify(d)}`);
  if (app) s.app = app;
  return s;
}

/** .s(...args): the arguments bound at the end (a chain puts the parent's result before them). */
export type PartialSignature<P extends unknown[], R, A extends unknown[]> = Signature<Remaining<P, A>, R, false, AsyncResult<R>>;
export type { Suffix };

/**
 * How many header results a signature adds to a chord (Celery's _chord._descend): a group its members',
 * a chain its last non-empty step's, a chord its body's, a task one.
 */
export function descend(sig: Signature | SignatureDict): number {
  const s = sig instanceof Signature ? sig : Signature.fromDict(sig);
  const tasks = s.kwargs.tasks;
  if (s.subtaskType === 'group') return (Array.isArray(tasks) ? (tasks as (Signature | SignatureDict)[]) : []).reduce((n, t) => n + descend(t), 0);
  if (s.subtaskType === 'chain') {
    const steps = Array.isArray(tasks) ? (tasks as (Signature | SignatureDict)[]) : [];
    for (let i = steps.length - 1; i >= 0; i--) {
      const n = descend(steps[i]!);
      if (n > 0) return n;
    }
    return 0;
  }
  if (s.subtaskType === 'chord') return s.kwargs.body ? descend(s.kwargs.body as Signature | SignatureDict) : 0;
  return 1;
}

/** Celery's option names (taskId → task_id, linkError → link_error). */
export function snake(k: string): string {
  return k.includes('_') || !/[A-Z]/.test(k) ? k : k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

export function snakeOptions(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[snake(k)] = v;
  return out;
}

/** Options whose value is null or undefined are dropped, as Celery's apply_async drops None. */
export function dropNullish(o: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const k in o) {
    if (o[k] == null) {
      out ??= { ...o };
      delete out[k];
    }
  }
  return out ?? o;
}

function asRecord(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** Celery deep-copies options on clone, but a nested signature is copied only one level (its __deepcopy__). */
function copyOptions(v: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = copyValue(x);
  return out;
}

function copyValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(copyValue);
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) return copyOptions(v as Record<string, unknown>);
  return v;
}

function plain(v: unknown): unknown {
  if (v instanceof Signature) return plain(v.toJSON());
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = plain(x);
    return out;
  }
  return v;
}
