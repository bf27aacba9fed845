// Results: AsyncResult (one task's state and value, its parent and children), ResultSet (many) and
// GroupResult (a group's, saved and restored by id), as Celery's celery.result.
import { setMaxListeners } from 'node:events';
import type { ResultBackend, ResultMeta } from '../backends/types.js';
import { READY_STATES, PROPAGATE_STATES } from '../backends/types.js';
import { decodeException } from './exceptions.js';
import type { RevokeOptions } from '../control/control.js';
import { TimeoutError } from '../backends/retry.js';

/** What results use of the app. */
export interface ResultHost {
  requireBackend(): Promise<ResultBackend>;
  readonly usesEmbeddedDefault: boolean;
  readonly brokerUrl: string;
  describeUrl(url: string): string;
  readonly control: { revoke(taskId: string | string[], opts?: RevokeOptions): Promise<void> };
}

export interface GetOptions {
  /** Milliseconds to wait; undefined waits forever. */
  timeout?: number;
  /** Reject with the task's error on FAILURE/REVOKED (default true). */
  propagate?: boolean;
  signal?: AbortSignal;
}

/** What the sender knows about a task it sent (for error messages). */
export interface SentTask {
  name: string;
  queue: string;
}

/** A result as Celery stores it in `children` and group metas: [[id, parent], null] or [[id, parent], [members]]. */
export type ResultTuple = [[string, ResultTuple | null], ResultTuple[] | null];

/** Any result a canvas gives: one task's or a group's. */
export type ResultNode = AsyncResult<any> | GroupResult<any>;

/** collect() reached a task that is not finished and intermediate results were not asked for (Celery's IncompleteStream). */
export class IncompleteStream extends Error {
  override name = 'IncompleteStream';
}

export class AsyncResult<R = unknown> {
  readonly isGroup = false as const;

  constructor(
    readonly id: string,
    private readonly app: ResultHost,
    /** The result this one was applied after (a chain's previous step, a chord's header). */
    public parent: ResultNode | null = null,
    /** What the sender knows of the task (for a timeout's message). */
    private readonly sent?: SentTask,
  ) {}

  private async backend() {
    return this.app.requireBackend();
  }

  /** The stored meta (PENDING when nothing is stored yet). */
  async meta(): Promise<ResultMeta> {
    return (await this.backend()).get(this.id);
  }

  /** Wait for the task to finish and return its value; reject with its error on failure. */
  async get(opts: GetOptions = {}): Promise<R> {
    const backend = await this.backend();
    let meta: ResultMeta;
    try {
      meta = await backend.wait(this.id, { timeout: opts.timeout, signal: opts.signal });
    } catch (err) {
      if ((err as Error)?.name === 'TimeoutError' && opts.timeout !== undefined) throw await this.notReady(opts.timeout);
      throw err;
    }
    if (PROPAGATE_STATES.has(String(meta.status)) && opts.propagate !== false) {
      const err = decodeException(meta.result, meta.traceback);
      err.taskId = this.id;
      throw err;
    }
    return meta.result as R;
  }

  /** The same timeout error for every backend, saying what to check when the task never started. */
  private async notReady(timeoutMs: number): Promise<TimeoutError> {
    const state = await this.state().catch((err: unknown) => `unknown: ${(err as Error)?.message ?? String(err)}`);
    const what = this.sent ? `task ${this.sent.name}[${this.id}]` : `task ${this.id}`;
    let hint: string;
    if (state === 'PENDING') {
      const queue = this.sent ? `queue ${JSON.stringify(this.sent.queue)}` : "the task's queue";
      hint = ` No worker may be consuming ${queue}: start one (celeriac -A <your app module> worker${this.sent ? ` -Q ${this.sent.queue}` : ''}) or check its -Q and broker URL.`;
      if (this.app.usesEmbeddedDefault) hint += ` The embedded default is ${this.app.describeUrl(this.app.brokerUrl)}: a worker started in another directory uses another file.`;
    } else {
      hint = ' It has not finished yet.';
    }
    return new TimeoutError(`The result of ${what} was not ready within ${timeoutMs / 1000} s (state ${state}).${hint}`);
  }

  async state(): Promise<string> {
    return String((await this.meta()).status);
  }

  /** Alias of state(), as in Celery. */
  status(): Promise<string> {
    return this.state();
  }

  async ready(): Promise<boolean> {
    return READY_STATES.has(await this.state());
  }

  async successful(): Promise<boolean> {
    return (await this.state()) === 'SUCCESS';
  }

  async failed(): Promise<boolean> {
    return (await this.state()) === 'FAILURE';
  }

  /** The result value, or the exception dict / progress meta for other states (Celery's .info). */
  async info(): Promise<unknown> {
    return (await this.meta()).result;
  }

  async traceback(): Promise<string | null> {
    return (await this.meta()).traceback;
  }

  /**
   * The results of what the task applied (callbacks, the next chain step, tasks it sent), as its
   * stored meta lists them; null when the worker stored none (Celery's children).
   */
  async children(): Promise<ResultNode[] | null> {
    const c = (await this.meta()).children;
    return Array.isArray(c) ? c.map((t) => resultFromTuple(t as ResultTuple, this.app)) : null;
  }

  /**
   * Walk this result and its children, breadth first, waiting for each and yielding [result, value]
   * (Celery's collect). A result not yet finished throws IncompleteStream unless `intermediate`.
   */
  async *collect(opts: GetOptions & { intermediate?: boolean } = {}): AsyncGenerator<[ResultNode, unknown]> {
    for await (const [, node] of iterdeps(this, opts.intermediate === true)) yield [node, await node.get(opts)];
  }

  /** Revoke this task on every worker (Celery's AsyncResult.revoke); terminate also stops it if running. */
  revoke(opts: RevokeOptions = {}): Promise<void> {
    return this.app.control.revoke(this.id, opts);
  }

  async forget(): Promise<void> {
    await (await this.backend()).forget(this.id);
  }

  /** [[id, parent], null]: how Celery stores a result in children and group metas. */
  asTuple(): ResultTuple {
    return [[this.id, this.parent ? this.parent.asTuple() : null], null];
  }

  toString(): string {
    return this.id;
  }

  /** A task that returns a result stores its tuple, as Celery's result backends do. */
  toJSON(): ResultTuple {
    return this.asTuple();
  }
}

/** Many results at once (Celery's ResultSet). */
export class ResultSet<T extends unknown[] = unknown[]> {
  readonly results: ResultNode[];

  constructor(results: Iterable<ResultNode>, protected readonly app: ResultHost) {
    this.results = [...results];
  }

  get length(): number {
    return this.results.length;
  }

  [Symbol.iterator](): Iterator<ResultNode> {
    return this.results[Symbol.iterator]();
  }

  at(index: number): ResultNode | undefined {
    return this.results.at(index);
  }

  add(result: ResultNode): void {
    if (!this.results.some((r) => r.id === result.id)) this.results.push(result);
  }

  /** Remove a result; throws when it is not in the set (discard() does not). */
  remove(result: ResultNode | string): void {
    if (!this.discard(result)) throw new Error(`KeyError: ${typeof result === 'string' ? result : result.id} is not in this result set`);
  }

  discard(result: ResultNode | string): boolean {
    const id = typeof result === 'string' ? result : result.id;
    const i = this.results.findIndex((r) => r.id === id);
    if (i >= 0) this.results.splice(i, 1);
    return i >= 0;
  }

  update(results: Iterable<ResultNode>): void {
    for (const r of results) this.add(r);
  }

  clear(): void {
    this.results.length = 0;
  }

  /** Every task succeeded. */
  async successful(): Promise<boolean> {
    return (await Promise.all(this.results.map((r) => r.successful()))).every(Boolean);
  }

  /** Some task failed. */
  async failed(): Promise<boolean> {
    return (await Promise.all(this.results.map((r) => r.failed()))).some(Boolean);
  }

  /** Some task has not finished. */
  async waiting(): Promise<boolean> {
    return !(await this.ready());
  }

  /** Every task has finished (succeeded, failed or was revoked). */
  async ready(): Promise<boolean> {
    return (await Promise.all(this.results.map((r) => r.ready()))).every(Boolean);
  }

  /** How many tasks succeeded (Celery's completed_count). */
  async completedCount(): Promise<number> {
    return (await Promise.all(this.results.map((r) => r.successful()))).filter(Boolean).length;
  }

  async forget(): Promise<void> {
    await Promise.all(this.results.map((r) => r.forget()));
  }

  /** Revoke every task of the set. */
  revoke(opts: RevokeOptions = {}): Promise<void> {
    return this.app.control.revoke(this.results.flatMap((r) => (r.isGroup ? r.results.map((x) => x.id) : [r.id])), opts);
  }

  /**
   * The values in order (Celery's join): waits for all at once, and rejects with the first failure in
   * order when propagating. `timeout` (ms) bounds the whole wait.
   */
  async join(opts: GetOptions = {}): Promise<T> {
    const stop = new AbortController();
    setMaxListeners(0, stop.signal); // one listener per result waited for
    const onAbort = () => stop.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const each: GetOptions = { timeout: opts.timeout, propagate: opts.propagate, signal: stop.signal };
    const waits = this.results.map((r) => (r.get(each) as Promise<unknown>).then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error })));
    try {
      const out: unknown[] = [];
      for (const w of waits) {
        const s = await w;
        if (!s.ok) throw s.error;
        out.push(s.value);
      }
      return out as T;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      stop.abort(new Error('join finished'));
    }
  }

  /** join(), as Celery's ResultSet.get. */
  get(opts: GetOptions = {}): Promise<T> {
    return this.join(opts);
  }

  async state(): Promise<string> {
    return (await this.ready()) ? ((await this.failed()) ? 'FAILURE' : 'SUCCESS') : 'PENDING';
  }
}

/** A group's results, with the group id: saved and restored through the result backend (Celery's GroupResult). */
export class GroupResult<T extends unknown[] = unknown[]> extends ResultSet<T> {
  readonly isGroup = true as const;

  constructor(readonly id: string, results: Iterable<ResultNode>, app: ResultHost, public parent: ResultNode | null = null) {
    super(results, app);
  }

  /** The group's results are its children. */
  get children(): ResultNode[] {
    return this.results;
  }

  /** Store the group (celery-taskset-meta-<id>) so GroupResult.restore(app, id) finds it later. */
  async save(): Promise<this> {
    const b = await this.app.requireBackend();
    if (!b.saveGroup) throw Object.assign(new Error('save_group is not supported by this backend.'), { name: 'NotImplementedError' });
    await b.saveGroup(this.id, this.asTuple());
    return this;
  }

  /** Remove the saved group. */
  async delete(): Promise<void> {
    const b = await this.app.requireBackend();
    await b.deleteGroup?.(this.id);
  }

  /** A group saved earlier (by either language), or null when none is stored under that id. */
  static async restore(app: ResultHost, id: string): Promise<GroupResult | null> {
    const b = await app.requireBackend();
    if (!b.restoreGroup) throw Object.assign(new Error('restore_group is not supported by this backend.'), { name: 'NotImplementedError' });
    const tuple = await b.restoreGroup(id);
    if (tuple == null) return null;
    const r = resultFromTuple(tuple as ResultTuple, app);
    return r.isGroup ? r : new GroupResult(id, [r], app);
  }

  asTuple(): ResultTuple {
    return [[this.id, this.parent ? this.parent.asTuple() : null], this.results.map((r) => r.asTuple())];
  }

  override toString(): string {
    return this.id;
  }

  toJSON(): ResultTuple {
    return this.asTuple();
  }
}

/** A result from its stored tuple (Celery's result_from_tuple). */
export function resultFromTuple(t: ResultTuple | string, app: ResultHost): ResultNode {
  if (typeof t === 'string') return new AsyncResult(t, app);
  const [res, nodes] = t;
  const [id, parent] = Array.isArray(res) ? res : [res as string, null];
  const p = parent ? resultFromTuple(parent, app) : null;
  if (nodes != null) return new GroupResult(String(id), nodes.map((n) => resultFromTuple(n, app)), app, p);
  return new AsyncResult(String(id), app, p);
}

/** Breadth first over a result and its children (Celery's iterdeps). */
async function* iterdeps(root: ResultNode, intermediate: boolean): AsyncGenerator<[ResultNode | null, ResultNode]> {
  const queue: [ResultNode | null, ResultNode][] = [[null, root]];
  while (queue.length) {
    const [parent, node] = queue.shift()!;
    yield [parent, node];
    if (await node.ready()) {
      const children = node.isGroup ? node.children : await node.children();
      for (const c of children ?? []) queue.push([node, c]);
    } else if (!intermediate) {
      throw new IncompleteStream(`${node.id} is not ready`);
    }
  }
}
