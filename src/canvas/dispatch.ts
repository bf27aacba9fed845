// One application of a canvas: its messages are built first (Celery's apply_async logic, no I/O), then
// the backend writes that must precede them (chord sizes, saved groups), then every message in one bulk
// publish. The worker applies callbacks, chain steps and chord bodies through the same road.
import type { PublishItem } from '../brokers/types.js';
import type { ResultBackend } from '../backends/types.js';
import type { AsyncResult, GroupResult } from '../app/result.js';
import { currentTask } from '../app/context.js';
import { NotImplementedError } from '../app/exceptions.js';
import type { CallContext, CanvasHost } from './types.js';

/** Celery's E_CHORD_NO_BACKEND. */
const NO_BACKEND = 'Starting chords requires a result backend to be configured.\n\nNote that a group chained with a task is also upgraded to be a chord,\n'
  + 'as this pattern requires synchronization.\n\nResult backends that supports chords: Redis, Database, Memcached, and more.';

/** What apply_chord needs of the chord body (a Signature; no import, to keep the modules acyclic). */
interface ChordBody {
  readonly task: string;
  readonly options: Record<string, unknown>;
}

/** Options that steer the call, never sent (Celery's apply_async keywords that are not message fields). */
const LOCAL_OPTIONS = ['add_to_parent', 'route_name', 'producer', 'publisher', 'connection', 'router', 'result_cls'];

export interface ChordUnlockOptions {
  interval?: number | null;
  countdown?: number;
  maxRetries?: number | null;
}

export class Dispatch {
  readonly items: (PublishItem & { id: string })[] = [];
  private readonly before: (() => Promise<void>)[] = [];

  private constructor(readonly host: CanvasHost, readonly backend: ResultBackend | null, readonly ctx: CallContext) {}

  /** A dispatch for `host`, under the task running now unless `ctx` says otherwise. */
  static async open(host: CanvasHost, ctx?: CallContext): Promise<Dispatch> {
    return new Dispatch(host, await host.backend(), ctx ?? currentCallContext());
  }

  /** Build with `build`, then publish; resolves with what `build` returned once everything is sent. */
  static async run<T>(host: CanvasHost, build: (d: Dispatch) => T, ctx?: CallContext): Promise<T> {
    const d = await Dispatch.open(host, ctx);
    const out = build(d);
    await d.flush();
    return out;
  }

  /**
   * One task message (Celery's Task.apply_async and send_task): parent_id and root_id default to the
   * running task's, link / link_error become the callbacks / errbacks, and the result joins the running
   * task's children unless add_to_parent is false.
   */
  send(name: string, args: readonly unknown[], kwargs: Record<string, unknown>, options: Record<string, unknown>): AsyncResult {
    const o: Record<string, unknown> = { ...options };
    const addToParent = o.add_to_parent !== false;
    const routeName = o.route_name as string | undefined;
    for (const k of LOCAL_OPTIONS) delete o[k];
    if (o.link != null) o.link = asList(o.link);
    if (o.link_error != null) o.link_error = asList(o.link_error);
    const ctx = this.ctx;
    if (ctx.parentId) {
      if (!o.root_id) o.root_id = ctx.rootId || ctx.parentId;
      if (!o.parent_id) o.parent_id = ctx.parentId;
    }
    // map/starmap/chunks go where the task they call is routed (Celery's route_name).
    if (routeName && o.queue == null) o.queue = this.host.routeFor(routeName, o).queue;
    const built = this.host.buildMessage(name, args, kwargs, o, this.backend?.replyTo ?? this.host.oid, ctx.tags);
    this.items.push({ id: built.id, message: built.message, target: { exchange: built.exchange, routingKey: built.routingKey } });
    const result = this.host.AsyncResult(built.id);
    if (addToParent) ctx.addTrail?.(result);
    return result;
  }

  /** A result that joins the running task's children (a group's, which its members do not). */
  addToParent(result: AsyncResult | GroupResult): void {
    this.ctx.addTrail?.(result);
  }

  /** Chords need a backend that can join them (Celery's ensure_chords_allowed). */
  ensureChordsAllowed(): void {
    if (!this.backend) throw new NotImplementedError(NO_BACKEND);
    this.backend.ensureChordsAllowed?.();
  }

  /** The chord's header size, written before any header message leaves (Celery's set_chord_size). */
  setChordSize(groupId: string, size: number): void {
    const b = this.backend;
    if (b?.setChordSize) this.before.push(() => b.setChordSize!(groupId, size));
  }

  /**
   * Celery's apply_chord: a backend that joins chords itself (Redis) only keeps a header holding groups;
   * any other sends celery.chord_unlock, which polls the header and applies the body.
   */
  applyChord(header: GroupResult, body: ChordBody, o: ChordUnlockOptions = {}): void {
    this.ensureChordsAllowed();
    const b = this.backend!;
    if (b.chordPartReturn) {
      if (header.results.some((r) => r.isGroup)) {
        if (!b.saveGroup) throw new NotImplementedError('save_group is not supported by this backend.');
        this.before.push(() => b.saveGroup!(header.id, header.asTuple()));
      }
      return;
    }
    const task = this.host.tasks.get(body.task);
    const queue = body.options.queue ?? task?.options.queue ?? this.host.routeFor(body.task, {}).queue;
    const priority = body.options.priority ?? task?.options.priority ?? 0;
    const kwargs = { interval: o.interval ?? null, max_retries: o.maxRetries ?? null, result: header.results.map((r) => r.asTuple()) };
    this.send('celery.chord_unlock', [header.id, body], kwargs, { countdown: o.countdown ?? 1, queue, priority });
  }

  /** Write what must come first, then publish every message built. */
  async flush(): Promise<void> {
    for (const op of this.before.splice(0)) await op();
    const items = this.items.splice(0);
    if (items.length === 0) return;
    if (this.backend?.onTaskCall) await this.backend.onTaskCall(items[0]!.id);
    await this.host.publishCalls(items);
  }
}

/** The running task as a CallContext (Celery's current_worker_task), or an empty one outside a task. */
export function currentCallContext(): CallContext {
  const t = currentTask();
  if (!t) return {};
  const r = t.request;
  return { parentId: r.id, rootId: r.rootId || r.id, addTrail: t.addTrail ? (x) => t.addTrail!(x) : undefined };
}

function asList(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [v];
}
