// Celery's built-in tasks (celery/app/builtins.py), registered on every app so a Python producer can use
// any canvas primitive against TypeScript workers: celery.chord_unlock (the chord join of backends that
// have none), celery.map / starmap / chunks, celery.group and celery.chord (old protocols),
// celery.chain, celery.accumulate and celery.backend_cleanup.
import type { Celeriac } from '../app/celeriac.js';
import type { TaskContext } from '../app/context.js';
import { ChordError, encodeException, exceptionRepr, NotImplementedError, NotRegistered, TaskError } from '../app/exceptions.js';
import { GroupResult, resultFromTuple, type ResultTuple } from '../app/result.js';
import { jsonTagsFor } from '../protocol/serializers.js';
import type { Embed } from '../protocol/message.js';
import { Chord } from './chord.js';
import { Dispatch } from './dispatch.js';
import { Group } from './group.js';
import { Chunks } from './map.js';
import { CanvasOutcomes } from './outcome.js';
import { maybeSignature, Signature, type SignatureDict } from './signature.js';

type Sig = Signature | SignatureDict;
const NO_CANVAS: Embed = { callbacks: null, errbacks: null, chain: null, chord: null };

export function registerBuiltins(app: Celeriac): void {
  /** The local task a map calls in-process (Celery: signature(task).type). */
  const local = (sig: Sig) => {
    const name = sig instanceof Signature ? sig.task : String(sig.task);
    const t = app.tasks.get(name);
    if (!t) throw new NotRegistered(name);
    return t;
  };

  app.task('celery.backend_cleanup', async () => {
    await (await app.backend())?.cleanup?.();
    return null;
  });

  app.task('celery.accumulate', (task: TaskContext, ...args: unknown[]) => {
    const index = task.request.kwargs.index;
    return index != null ? args[Number(index)] : args;
  }, { bind: true });

  app.task('celery.map', async (task: TaskContext, sig: Sig, it: unknown[]) => {
    const t = local(sig);
    const out: unknown[] = [];
    for (const item of it ?? []) out.push(await t.call(task, [item], {}));
    return out;
  }, { bind: true, params: ['task', 'it'] });

  app.task('celery.starmap', async (task: TaskContext, sig: Sig, it: unknown[][]) => {
    const t = local(sig);
    const out: unknown[] = [];
    for (const item of it ?? []) out.push(await t.call(task, Array.isArray(item) ? item : [item], {}));
    return out;
  }, { bind: true, params: ['task', 'it'] });

  app.task('celery.chunks', async (sig: Sig, it: unknown[][], n: number) => {
    return (await new Chunks(sig, it, n, {}, app).applyAsync()).asTuple();
  }, { params: ['task', 'it', 'n'] });

  app.task('celery.chain', () => {
    throw new NotImplementedError('chain is not a real task');
  }, { bind: true });

  app.task('celery.group', async (task: TaskContext, tasks: Sig[], result: ResultTuple, groupId: string, partialArgs: unknown[] = []) => {
    const r = resultFromTuple(result, app);
    const addToParent = task.request.kwargs.add_to_parent !== false;
    await Dispatch.run(app, (d) => {
      for (const t of tasks) maybeSignature(t, app).clone(partialArgs).applyTo(d, [], {}, { group_id: groupId, add_to_parent: false });
      if (addToParent) d.addToParent(r);
    });
    return r.asTuple();
  }, { bind: true, params: ['tasks', 'result', 'group_id', 'partial_args', 'add_to_parent'] });

  app.task('celery.chord', async (task: TaskContext, header: Sig | Sig[], body: Sig, partialArgs: unknown[] = [], interval: number | null = null, countdown = 1, maxRetries: number | null = null) => {
    const h = maybeSignature(Array.isArray(header) ? new Group(header, {}, app) : header, app);
    const members = h instanceof Group ? h.tasks : [h];
    const g = new Group(members.map((m) => maybeSignature(m, app)), {}, app);
    const b = maybeSignature(body, app);
    const { header: _h, body: _b, partial_args: _p, interval: _i, countdown: _c, max_retries: _m, eager: _e, ...rest } = task.request.kwargs;
    const res = await Dispatch.run(app, (d) => new Chord(g, b, {}, app).run(d, g, b, partialArgs, { ...rest, interval, countdown, max_retries: maxRetries }));
    return res.asTuple();
  }, { bind: true, params: ['header', 'body', 'partial_args', 'interval', 'countdown', 'max_retries', 'eager'] });

  app.task('celery.chord_unlock', async (task: TaskContext, groupId: string, callback: Sig, interval: number | null = null, maxRetries: number | null = null, result: ResultTuple[] = []) => {
    const every = interval ?? Number(app.conf.result_chord_retry_interval ?? 1);
    const retryOpts = maxRetries == null ? { countdown: every } : { countdown: every, maxRetries };
    const deps = new GroupResult(groupId, (result ?? []).map((t) => resultFromTuple(t, app)), app);
    let ready: boolean;
    try {
      ready = await deps.ready();
    } catch (exc) {
      return task.retry({ ...retryOpts, exc });
    }
    if (!ready) return task.retry(retryOpts);
    const body = maybeSignature(callback, app);
    const r = task.request;
    const outcomes = new CanvasOutcomes(app, await app.backend());
    const request = { id: r.id, task: 'celery.chord_unlock', rootId: r.rootId, group: groupId, groupIndex: null, priority: 0, embed: NO_CANVAS, kombuTags: jsonTagsFor(app.conf.celery_peer_version) };
    let values: unknown[];
    try {
      values = await deps.join({ timeout: Number(app.conf.result_chord_join_timeout ?? 3) * 1000, propagate: true });
    } catch (exc) {
      const culprit = exc instanceof TaskError && exc.taskId ? exc.taskId : undefined;
      const why = exceptionRepr(encodeException(exc));
      await outcomes.chordError(request, body, new ChordError(culprit ? `Dependency ${culprit} raised ${why}` : why));
      return null;
    }
    try {
      await body.applyAsync([values]);
    } catch (exc) {
      await outcomes.chordError(request, body, new ChordError(`Callback error: ${exceptionRepr(encodeException(exc))}`));
    }
    return null;
  }, { bind: true, maxRetries: null, ignoreResult: true, params: ['group_id', 'callback', 'interval', 'max_retries', 'result'] });
}
