// memory:// (and cache://) result backend: results in this process only, shared by every backend
// opened with the same URL. Also home of the wait loop the embedded backends share.
import { EventEmitter } from 'node:events';
import { TimeoutError } from './retry.js';
import type { Logger } from '../app/log.js';
import { encodeWith, readMeta, resultCodec, type ResultCodec } from './encode.js';
import { pendingMeta, READY_STATES, type BackendContext, type ResultBackend, type ResultMeta, type WaitOptions } from './types.js';

/** result_expires (seconds; null or 0 = never) in milliseconds, or null for never. */
export function resultExpiresMs(value: unknown): number | null {
  const n = Number(value);
  if (value === null || value === undefined || !Number.isFinite(n) || n <= 0) return null;
  return n * 1000;
}

export { TimeoutError } from './retry.js';

/** A WaitLoop subscribe() on an emitter that emits ('result', taskId) on every store. */
export function onResultEvent(events: EventEmitter, taskId: string): (wake: () => void) => () => void {
  return (wake) => {
    const on = (id: string) => {
      if (id === taskId) wake();
    };
    events.on('result', on);
    return () => events.off('result', on);
  };
}

export interface WaitLoop {
  taskId: string;
  opts: WaitOptions;
  get: () => Promise<ResultMeta>;
  /** Call wake() when a result for the task may have been stored; returns an unsubscribe function. */
  subscribe: (wake: () => void) => () => void;
  /** Adaptive polling between these bounds (for stores from other processes); omit to rely on wake() only. */
  pollMs?: { min: number; max: number };
}

/** Resolve once get() returns a READY state; reject with TimeoutError after opts.timeout, or on abort. */
export function waitForReady(w: WaitLoop): Promise<ResultMeta> {
  return new Promise<ResultMeta>((resolve, reject) => {
    let done = false;
    let timer: NodeJS.Timeout | null = null;
    let poll: NodeJS.Timeout | null = null;
    let interval = w.pollMs?.min ?? 0;
    let checking = false;
    let again = false;
    const finish = (err: unknown, meta?: ResultMeta) => {
      if (done) return;
      done = true;
      unsubscribe();
      if (timer) clearTimeout(timer);
      if (poll) clearTimeout(poll);
      w.opts.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(meta!);
    };
    const check = async () => {
      if (done) return;
      if (checking) { again = true; return; }
      checking = true;
      try {
        do {
          again = false;
          const meta = await w.get();
          if (READY_STATES.has(String(meta.status))) return finish(null, meta);
        } while (again && !done);
      } catch (err) {
        return finish(err);
      } finally {
        checking = false;
      }
      schedulePoll();
    };
    const schedulePoll = () => {
      if (done || !w.pollMs || poll) return;
      poll = setTimeout(() => { poll = null; void check(); }, interval);
      interval = Math.min(w.pollMs.max, interval * 2);
    };
    const onAbort = () => finish(w.opts.signal?.reason ?? new Error('The wait was aborted'));
    const unsubscribe = w.subscribe(() => void check());
    if (w.opts.signal?.aborted) return onAbort();
    w.opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (w.opts.timeout !== undefined) {
      timer = setTimeout(() => finish(new TimeoutError(`The result of task ${w.taskId} was not ready within ${w.opts.timeout} ms`)), w.opts.timeout);
    }
    void check();
  });
}

interface StoredResult {
  /** The meta as the result serializer wrote it: what a reader gets is decoded from it, as elsewhere. */
  data: string | Buffer;
  status: string;
  expiresAt: number | null;
}

interface ResultStore {
  results: Map<string, StoredResult>;
  /** GroupResult.save: the group's result tuple as the result serializer wrote {result: tuple}. */
  groups: Map<string, StoredResult>;
  events: EventEmitter;
  lastSweep: number;
}

const SWEEP_EVERY_MS = 60_000;

const STORES = new Map<string, ResultStore>();

function storeFor(url: string): ResultStore {
  let s = STORES.get(url);
  if (!s) {
    s = { results: new Map(), groups: new Map(), events: new EventEmitter(), lastSweep: Date.now() };
    s.events.setMaxListeners(0);
    STORES.set(url, s);
  }
  return s;
}

export class MemoryBackend implements ResultBackend {
  private readonly store_: ResultStore;

  constructor(readonly displayUrl: string, private readonly expiresMs: number | null, private readonly codec: ResultCodec, private readonly logger?: Logger) {
    this.store_ = storeFor(displayUrl);
  }

  async connect(): Promise<void> {}

  async store(meta: ResultMeta): Promise<void> {
    const now = Date.now();
    const current = this.live(meta.task_id, now);
    if (current?.status === 'SUCCESS') return; // a stored SUCCESS is final, as in Celery
    // Encoded as the other backends encode it: the same values survive, the same ones fail.
    const encoded = encodeWith(this.codec, this.logger, meta);
    this.store_.results.set(meta.task_id, { data: encoded.encoded, status: String(encoded.meta.status), expiresAt: this.expiresMs === null ? null : now + this.expiresMs });
    this.store_.events.emit('result', meta.task_id);
    if (now - this.store_.lastSweep > SWEEP_EVERY_MS) this.sweep(now);
  }

  /** Drop expired results nobody asked for again (result_expires). */
  private sweep(now: number): void {
    this.store_.lastSweep = now;
    for (const [id, r] of this.store_.results) if (r.expiresAt !== null && r.expiresAt <= now) this.store_.results.delete(id);
  }

  async get(taskId: string): Promise<ResultMeta> {
    const r = this.live(taskId, Date.now());
    return r ? readMeta(r.data, this.codec, taskId) : pendingMeta(taskId);
  }

  wait(taskId: string, opts: WaitOptions = {}): Promise<ResultMeta> {
    return waitForReady({
      taskId,
      opts,
      get: () => this.get(taskId),
      subscribe: onResultEvent(this.store_.events, taskId),
    });
  }

  async forget(taskId: string): Promise<void> {
    this.store_.results.delete(taskId);
  }

  async saveGroup(groupId: string, result: unknown): Promise<void> {
    const data = this.codec.serializer.encode({ result }, { tags: this.codec.tags });
    this.store_.groups.set(groupId, { data, status: 'SUCCESS', expiresAt: this.expiresMs === null ? null : Date.now() + this.expiresMs });
  }

  async restoreGroup(groupId: string): Promise<unknown> {
    const g = this.store_.groups.get(groupId);
    if (!g || (g.expiresAt !== null && g.expiresAt <= Date.now())) return null;
    return (this.codec.serializer.decode(g.data, { tags: this.codec.tags }) as { result?: unknown }).result ?? null;
  }

  async deleteGroup(groupId: string): Promise<void> {
    this.store_.groups.delete(groupId);
  }

  async close(): Promise<void> {}

  /** The stored result unless it expired (then it is removed). */
  private live(taskId: string, now: number): StoredResult | undefined {
    const r = this.store_.results.get(taskId);
    if (r && r.expiresAt !== null && r.expiresAt <= now) {
      this.store_.results.delete(taskId);
      return undefined;
    }
    return r;
  }
}

export function createBackend(url: string, ctx: BackendContext): ResultBackend {
  return new MemoryBackend(url, resultExpiresMs(ctx.settings.result_expires), resultCodec(ctx.settings), ctx.logger);
}
