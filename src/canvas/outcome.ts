// What follows a task's outcome in its canvas, as Celery's worker does it (celery/app/trace.py and
// the backend's mark_as_done / mark_as_failure / mark_as_revoked): on success the callbacks and the
// next chain step are applied; a chord header task joins its chord and the last one applies the body;
// on failure the rest of the chain fails too and the errbacks run. The worker calls it through
// worker/canvas.ts; nothing here knows the worker.
import type { ExceptionInfo, ResultBackend, ResultMeta } from '../backends/types.js';
import { PEER_TAGS, PROPAGATE_STATES } from '../backends/types.js';
import type { Embed } from '../protocol/message.js';
import type { TaskContext } from '../app/context.js';
import { isoformat } from '../protocol/json.js';
import { repr } from '../protocol/repr.js';
import { ChordError, decodeException, encodeException, exceptionRepr, formatTraceback } from '../app/exceptions.js';
import { GroupResult, resultFromTuple, type ResultTuple } from '../app/result.js';
import type { CallContext, CanvasHost } from './types.js';
import { Dispatch } from './dispatch.js';
import { Group } from './group.js';
import { maybeSignature, Signature, type SignatureDict } from './signature.js';

/** The finished task, as far as its canvas goes. */
export interface CanvasRequest {
  id: string;
  task: string;
  rootId: string | null;
  group: string | null;
  groupIndex: number | null;
  priority: number;
  embed: Embed;
  /** Whether its sender writes kombu's JSON tags: what the canvas sends on its behalf is written the same way. */
  kombuTags: boolean;
  /** What an in-process errback is called with (Celery passes the request). */
  view?: unknown;
  /** The task's context, for an errback called in-process. */
  context?: TaskContext;
}

export interface FailureOptions {
  state: string;
  /** The task stores its results (not ignore_result): the rest of its chain is marked failed too. */
  storeResult: boolean;
  callErrbacks: boolean;
  /** The rest of the chain was stored failed already, beside the task's own state (storeChainFailure). */
  chainStored?: boolean;
}

export class CanvasOutcomes {
  constructor(private readonly host: CanvasHost, private readonly backend: ResultBackend | null) {}

  private ctxFor(r: CanvasRequest, addTrail?: CallContext['addTrail']): CallContext {
    return { parentId: r.id, rootId: r.rootId || r.id, addTrail, tags: r.kombuTags };
  }

  /**
   * Success: apply the callbacks with the result (several non-group ones together as one group), then
   * the next step of the chain with the rest of the chain; what is applied joins `addTrail` (children).
   */
  async applyCallbacks(r: CanvasRequest, retval: unknown, addTrail?: CallContext['addTrail']): Promise<void> {
    const { callbacks, chain } = r.embed;
    const next = chain && chain.length ? chain : null;
    if (!callbacks?.length && !next) return;
    const host = this.host;
    const opts: Record<string, unknown> = { parent_id: r.id, root_id: r.rootId || r.id };
    if (host.conf.task_inherit_parent_priority) opts.priority = r.priority;
    await Dispatch.run(host, (d) => {
      if (callbacks?.length === 1) maybeSignature(callbacks[0]!, host).applyTo(d, [retval], {}, opts);
      else if (callbacks?.length) {
        const sigs: Signature[] = [];
        for (const c of callbacks) {
          const s = maybeSignature(c, host);
          if (s instanceof Group) s.applyTo(d, [retval], {}, opts);
          else sigs.push(s);
        }
        if (sigs.length) new Group(sigs, {}, host).applyTo(d, [retval], {}, opts);
      }
      if (next) maybeSignature(next[next.length - 1]!, host).applyTo(d, [retval], {}, { ...opts, chain: next.slice(0, -1) });
    }, this.ctxFor(r, addTrail));
  }

  /**
   * A chord header task is done (any final state): record it in the join; the last one applies the
   * body with every result in header order, or fails it with ChordError when one of them failed.
   */
  async chordPart(r: CanvasRequest, state: string, result: unknown): Promise<void> {
    const b = this.backend;
    const body = r.embed.chord;
    if (!b?.chordPartReturn || !r.group || !body) return;
    const join = await b.chordPartReturn(r.group, { taskId: r.id, state, result, index: r.groupIndex }, r.kombuTags);
    if (!join) return;
    const callback = maybeSignature(body, this.host);
    const ctx = this.ctxFor(r);
    try {
      let values: unknown;
      try {
        values = join.savedGroup != null ? await this.joinSaved(join.savedGroup) : join.parts.map(unpackPart);
      } catch (err) {
        return await this.chordError(r, callback, err instanceof ChordError ? err : new ChordError(`Join error: ${exceptionRepr(encodeException(err))}`));
      }
      try {
        await Dispatch.run(this.host, (d) => callback.applyTo(d, [values], {}, {}), ctx);
      } catch (err) {
        this.host.logger.error(`Chord ${r.group}: its body ${callback.task} could not be applied: ${(err as Error).message}`);
        await this.chordError(r, callback, new ChordError(`Callback error: ${exceptionRepr(encodeException(err))}`));
      }
    } finally {
      await b.chordDone?.(r.group).catch((err: unknown) => this.host.logger.warning(`Chord ${r.group}: its join keys could not be removed: ${(err as Error).message}`));
    }
  }

  /** A header holding groups was saved when the chord was applied: join it to keep the nesting. */
  private async joinSaved(tuple: unknown): Promise<unknown> {
    const timeout = Number(this.host.conf.result_chord_join_timeout ?? 3) * 1000;
    const saved = resultFromTuple(tuple as ResultTuple, this.host);
    const g = saved instanceof GroupResult ? saved : new GroupResult(saved.id, [saved], this.host);
    return g.join({ timeout });
  }

  /** Celery's chord_error_from_stack: the body's errbacks, then the body stored as FAILURE with the ChordError. */
  async chordError(r: CanvasRequest, callback: Signature, exc: Error): Promise<void> {
    this.host.logger.error(`Chord ${r.group ?? ''} raised: ${exc.message}`);
    const info = encodeException(exc);
    const tb = formatTraceback(exc);
    const bodyId = callback.id ?? lastTaskId(callback);
    let stored = info;
    try {
      await this.callErrbacks({ ...r, id: bodyId ?? r.id, rootId: null, embed: { callbacks: null, errbacks: listOf(callback.options.link_error), chain: null, chord: null } }, info, null);
    } catch (err) {
      stored = encodeException(err);
    }
    if (bodyId) await this.store(r, { status: 'FAILURE', result: stored, traceback: tb, children: [], date_done: isoformat(new Date()), task_id: bodyId }, callback.options.reply_to as string | undefined);
  }

  /**
   * After a FAILURE (or REVOKED) was stored, as Celery's mark_as_failure: the chord joins, every later
   * step of the chain is stored with the same failure (so the chain's result fails), and the errbacks run.
   */
  async onFailure(r: CanvasRequest, info: ExceptionInfo, traceback: string | null, o: FailureOptions): Promise<void> {
    if (r.embed.chord) await this.chordPart(r, o.state, info);
    if (!o.chainStored) await this.storeChainFailure(r, info, traceback, o);
    for (const elem of r.embed.chain ?? []) {
      const opts = (elem.options ?? {}) as Record<string, unknown>;
      const tid = opts.task_id as string | undefined;
      if ('chord' in opts && tid) {
        const elemRequest: CanvasRequest = {
          ...r, id: tid, group: (opts.group_id as string | undefined) ?? null, groupIndex: (opts.group_index as number | undefined) ?? null,
          embed: { callbacks: null, errbacks: null, chain: null, chord: opts.chord as SignatureDict },
        };
        await this.chordPart(elemRequest, o.state, info);
      }
    }
    if (o.callErrbacks && r.embed.errbacks?.length) await this.callErrbacks(r, info, traceback);
  }

  /**
   * Every later step of the chain stored with the failure (Celery's mark_as_failure), so the chain's
   * last result fails. The stores are all begun before this returns: begun in the same turn as the
   * failed task's own store, they go to the backend in the same write (one script call on Redis), and
   * no client sees the failed step's FAILURE while the chain's last result is still PENDING. (Celery's
   * get() on a chain raises a failed parent's error; a second AsyncResult of the last id read right
   * after in that window waits forever, as the first one stays registered for the id.)
   */
  storeChainFailure(r: CanvasRequest, info: ExceptionInfo, traceback: string | null, o: FailureOptions): Promise<void> {
    if (!o.storeResult || !PROPAGATE_STATES.has(o.state)) return Promise.resolve();
    const stores: Promise<void>[] = [];
    for (const elem of r.embed.chain ?? []) {
      const opts = (elem.options ?? {}) as Record<string, unknown>;
      const tid = opts.task_id as string | undefined;
      if (!tid) continue;
      const meta: ResultMeta = { status: o.state, result: info, traceback, children: [], date_done: isoformat(new Date()), task_id: tid };
      if (opts.group_id) meta.group_id = opts.group_id as string;
      if (opts.parent_id) meta.parent_id = opts.parent_id as string;
      meta.task_id = tid; // last, in Celery's field order
      stores.push(this.store(r, meta, opts.reply_to as string | undefined));
    }
    return Promise.all(stores).then(() => undefined);
  }

  /**
   * Celery's _call_task_errbacks: an errback registered here whose handler takes more than one argument
   * (and is not bound) is called in-process with (request, exc, traceback); the others are sent, as one
   * group, with the failed task's id.
   */
  async callErrbacks(r: CanvasRequest, info: ExceptionInfo, traceback: string | null): Promise<void> {
    const sent: Signature[] = [];
    for (const eb of r.embed.errbacks ?? []) {
      const sig = maybeSignature(eb, this.host);
      const task = this.host.tasks.get(sig.task);
      if (task && !task.bound && task.arity > 1 && r.context) {
        await task.call(r.context, [r.view ?? { id: r.id, task: r.task }, decodeException(info, traceback), traceback, ...sig.args], sig.kwargs);
      } else sent.push(sig);
    }
    if (!sent.length) return;
    const opts = { parent_id: r.id, root_id: r.rootId || r.id };
    await Dispatch.run(this.host, (d) => new Group(sent, {}, this.host).applyTo(d, [r.id], {}, opts), this.ctxFor(r));
  }

  private async store(r: CanvasRequest, meta: ResultMeta, replyTo: string | undefined): Promise<void> {
    if (!this.backend) return;
    meta[PEER_TAGS] = r.kombuTags;
    await this.backend.store(meta, { replyTo: replyTo ?? null, correlationId: meta.task_id });
  }
}

/** One chord outcome as the body's argument; a failed or revoked one fails the chord (Celery's _unpack_chord_result). */
function unpackPart(p: { taskId: string; state: string; result: unknown }): unknown {
  if (PROPAGATE_STATES.has(p.state)) throw new ChordError(`Dependency ${p.taskId} raised ${excRepr(p.result)}`);
  return p.result;
}

function excRepr(result: unknown): string {
  if (result && typeof result === 'object' && 'exc_type' in result) return exceptionRepr(result as ExceptionInfo);
  return `Exception(${repr(result)})`;
}

function listOf(v: unknown): SignatureDict[] | null {
  if (v == null) return null;
  return (Array.isArray(v) ? v : [v]) as SignatureDict[];
}

/** The task id a chain body ends with (a chain has no id of its own). */
function lastTaskId(s: Signature): string | undefined {
  const tasks = s.kwargs.tasks;
  if (s.subtaskType === 'chain' && Array.isArray(tasks) && tasks.length) {
    const last = tasks[tasks.length - 1] as Signature | SignatureDict;
    return last instanceof Signature ? last.id : ((last.options ?? {}) as Record<string, unknown>).task_id as string | undefined;
  }
  return undefined;
}
