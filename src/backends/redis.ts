// Celery's Redis result backend: celery-task-meta-<id> JSON, SETEX + PUBLISH, pub/sub waits.
import { ReplyError, type Redis } from 'ioredis';
import type { BackendContext, ChordJoin, ChordPart, ResultBackend, ResultMeta, WaitOptions } from './types.js';
import { READY_STATES, pendingMeta } from './types.js';
import { flatten } from '../protocol/json.js';
import { parseRedisUrl, backendKeyPrefix, type RedisTarget } from '../brokers/redis/url.js';
import { connectClient, closeClient, ConnectionBudget } from '../brokers/redis/connection.js';
import { defineScript, STORE_RESULTS_COMMAND } from '../brokers/redis/scripts.js';
import type { RetryPolicy, TransportOptions } from '../app/settings.js';
import type { SharedBuckets } from '../brokers/types.js';
import { redisBuckets } from '../brokers/redis/rate-limit-buckets.js';
import { TimeoutError, withRetries } from './retry.js';
import { encodeWith, readMeta, resultCodec, type ResultCodec } from './encode.js';
import { RedisChords } from './redis-chord.js';

interface StoreBatch {
  keys: string[];
  metas: (string | Buffer)[];
  ids: string[];
  promise: Promise<void>;
}

interface Waiter {
  resolve: (m: ResultMeta) => void;
  reject: (e: Error) => void;
}

export class RedisBackend implements ResultBackend {
  readonly displayUrl: string;
  private readonly target: RedisTarget;
  private readonly transport: TransportOptions;
  private readonly prefix: string;
  private client: Redis | undefined;
  private subscriber: Redis | undefined;
  private connecting: Promise<void> | undefined;
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly retryPolicy: RetryPolicy;
  private readonly budget: ConnectionBudget;
  private readonly codec: ResultCodec;
  private readonly chords: RedisChords;

  constructor(url: string, private readonly ctx: BackendContext) {
    const s = ctx.settings;
    this.codec = resultCodec(s);
    // Celery's redis_* backend settings, overridden by the same names in result_backend_transport_options.
    this.transport = {
      ...(s.redis_socket_timeout != null ? { socket_timeout: s.redis_socket_timeout } : {}),
      ...(s.redis_socket_connect_timeout != null ? { socket_connect_timeout: s.redis_socket_connect_timeout } : {}),
      ...(s.redis_backend_health_check_interval ? { health_check_interval: s.redis_backend_health_check_interval } : {}),
      ...(s.redis_max_connections != null ? { max_connections: s.redis_max_connections } : {}),
      ...(s.result_backend_transport_options ?? {}),
    };
    this.budget = new ConnectionBudget(this.transport.max_connections != null ? Number(this.transport.max_connections) : undefined, 'redis_max_connections');
    this.target = parseRedisUrl(url, this.transport, ctx.settings.redis_backend_use_ssl, 'backend');
    this.displayUrl = this.target.displayUrl;
    this.prefix = backendKeyPrefix(this.transport.global_keyprefix);
    this.retryPolicy = { max_retries: 20, interval_start: 0, interval_step: 1, interval_max: 1, ...(this.transport.retry_policy ?? {}) };
    const expires = () => (s.result_expires ? Math.trunc(s.result_expires) : 0);
    this.chords = new RedisChords({
      client: () => this.cmd(),
      groupKey: (gid, suffix = '') => `${this.prefix}celery-taskset-meta-${gid}${suffix}`,
      codec: this.codec,
      expires,
      ordered: this.transport.result_chord_ordered !== false,
      retry: (what, fn) => this.retrying(`${what} in ${this.displayUrl}`, fn),
    });
  }

  // Chords join here, on Celery's keys (backends/redis-chord.ts).
  chordPartReturn(groupId: string, part: ChordPart, peerTags?: boolean): Promise<ChordJoin | null> {
    return this.chords.partReturn(groupId, part, peerTags);
  }

  chordDone(groupId: string): Promise<void> {
    return this.chords.done(groupId);
  }

  setChordSize(groupId: string, size: number): Promise<void> {
    return this.chords.setChordSize(groupId, size);
  }

  saveGroup(groupId: string, result: unknown): Promise<void> {
    return this.chords.saveGroup(groupId, result);
  }

  restoreGroup(groupId: string): Promise<unknown> {
    return this.chords.restoreGroup(groupId);
  }

  deleteGroup(groupId: string): Promise<void> {
    return this.chords.deleteGroup(groupId);
  }

  key(taskId: string): string {
    return `${this.prefix}celery-task-meta-${taskId}`;
  }

  connect(): Promise<void> {
    return (this.connecting ??= (async () => {
      const timeout = this.retryPolicy.timeout;
      this.budget.take('result backend');
      try {
        // failFast: while Redis is away commands fail at once and retry_policy decides what happens next.
        this.client = await connectClient(this.target, this.transport, { connectTimeout: timeout ?? 10, failFast: true, idleExit: this.ctx.idleExit });
      } catch (err) {
        this.budget.give();
        throw err;
      }
      this.client.on('error', (err) => this.ctx.logger.debug(`redis backend: ${err.message}`));
      defineScript(this.client, 'store-results');
    })().catch((err) => {
      this.connecting = undefined;
      throw err;
    }));
  }

  private async cmd(): Promise<Redis> {
    await this.connect();
    return this.client!;
  }

  private storeBatch: StoreBatch | null = null;

  /**
   * Results stored in the same turn of the event loop go to Redis in one script call (each still a
   * SET/SETEX and a PUBLISH on its own key, as Celery writes them) and share its outcome.
   */
  store(meta: ResultMeta): Promise<void> {
    // Encoded before it joins the batch: a key is only ever paired with its own meta.
    let data: string | Buffer;
    try {
      data = encodeWith(this.codec, this.ctx.logger, meta).encoded;
    } catch (err) {
      return Promise.reject(err);
    }
    let batch = this.storeBatch;
    if (!batch || batch.keys.length >= 1000) {
      const b: StoreBatch = { keys: [], metas: [], ids: [], promise: undefined as unknown as Promise<void> };
      b.promise = new Promise<void>((resolve, reject) => setImmediate(() => this.flushStores(b).then(resolve, reject)));
      this.storeBatch = batch = b;
    }
    batch.keys.push(this.key(meta.task_id));
    batch.metas.push(typeof data === 'string' ? flatten(data) : data);
    batch.ids.push(meta.task_id);
    return batch.promise;
  }

  private async flushStores(b: StoreBatch): Promise<void> {
    if (this.storeBatch === b) this.storeBatch = null;
    const expires = this.ctx.settings.result_expires;
    const what = b.ids.length === 1 ? `the result of task ${b.ids[0]}` : `the results of ${b.ids.length} tasks (${b.ids[0]}, …)`;
    await this.retrying(`storing ${what} in ${this.displayUrl}`, async () => {
      const c = (await this.cmd()) as unknown as Record<string, (n: number, ...a: (string | number | Buffer)[]) => Promise<number>>;
      await c[STORE_RESULTS_COMMAND]!(b.keys.length, ...b.keys, expires ? Math.trunc(expires) : 0, ...b.metas);
    });
  }

  /** A command under result_backend's retry policy; an error reply that retrying cannot fix is thrown at once. */
  private retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return withRetries(this.retryPolicy, what, () => fn().catch(markPermanent));
  }

  async get(taskId: string): Promise<ResultMeta> {
    const raw = await this.retrying(`reading the result of task ${taskId} from ${this.displayUrl}`, async () => (await this.cmd()).getBuffer(this.key(taskId)));
    return raw === null ? pendingMeta(taskId) : readMeta(raw, this.codec, taskId);
  }

  private subscribing: Promise<Redis> | undefined;

  private subscriberClient(): Promise<Redis> {
    return (this.subscribing ??= this.openSubscriber().catch((err) => {
      this.subscribing = undefined;
      throw err;
    }));
  }

  private async openSubscriber(): Promise<Redis> {
    this.budget.take('result subscriber');
    let sub: Redis;
    try {
      sub = await connectClient(this.target, this.transport, { blocking: true, idleExit: this.ctx.idleExit });
    } catch (err) {
      this.budget.give();
      throw err;
    }
    sub.on('error', (err) => this.ctx.logger.debug(`redis backend (pubsub): ${err.message}`));
    sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.onMessage(channel.toString('utf8'), message));
    // After a reconnect, catch up on states published while we were away (Celery does MGET).
    sub.on('ready', () => void this.catchUp());
    this.subscriber = sub;
    return sub;
  }

  private onMessage(channel: string, message: Buffer): void {
    const id = channel.slice(this.key('').length);
    if (!this.waiters.has(id)) return;
    let meta: ResultMeta;
    try {
      meta = readMeta(message, this.codec, id);
    } catch (err) {
      this.fail(id, err as Error); // a meta nobody can read: say so rather than wait forever
      return;
    }
    if (READY_STATES.has(String(meta.status))) this.settle(id, meta);
  }

  /** Remove a task's waiters and its subscription; returns the waiters. */
  private takeWaiters(id: string): Set<Waiter> {
    const set = this.waiters.get(id);
    if (!set) return new Set();
    this.waiters.delete(id);
    this.unsubscribe(this.key(id));
    return set;
  }

  private fail(id: string, err: Error): void {
    for (const w of this.takeWaiters(id)) w.reject(err);
  }

  private settle(id: string, meta: ResultMeta): void {
    for (const w of this.takeWaiters(id)) w.resolve(meta);
  }

  private async catchUp(): Promise<void> {
    const ids = [...this.waiters.keys()];
    if (ids.length === 0 || !this.client) return;
    const values = await this.client.mgetBuffer(ids.map((id) => this.key(id))).catch(() => []);
    values.forEach((v, i) => {
      if (!v) return;
      let meta: ResultMeta;
      try {
        meta = readMeta(v, this.codec, ids[i]!);
      } catch (err) {
        return this.fail(ids[i]!, err as Error);
      }
      if (READY_STATES.has(String(meta.status))) this.settle(ids[i]!, meta);
    });
  }

  async wait(taskId: string, opts: WaitOptions = {}): Promise<ResultMeta> {
    const sub = await this.subscriberClient();
    return new Promise<ResultMeta>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        resolve: (m) => { cleanup(); resolve(m); },
        reject: (e) => { cleanup(); reject(e); },
      };
      const drop = (err: Error) => {
        const set = this.waiters.get(taskId);
        set?.delete(waiter);
        if (set && set.size === 0) {
          this.waiters.delete(taskId);
          this.unsubscribe(this.key(taskId));
        }
        waiter.reject(err);
      };
      const onAbort = () => drop(opts.signal?.reason instanceof Error ? opts.signal.reason : new Error('The wait was aborted'));
      if (opts.signal?.aborted) return onAbort();
      if (opts.timeout !== undefined) {
        timer = setTimeout(() => drop(new TimeoutError(`The operation timed out after ${opts.timeout} ms waiting for task ${taskId}.`)), opts.timeout);
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      let set = this.waiters.get(taskId);
      const first = !set;
      if (!set) this.waiters.set(taskId, (set = new Set()));
      set.add(waiter);
      // Subscribe first, then read: a state stored in between is seen one way or the other.
      this.watch(taskId, first)
        .then((raw) => {
          if (!raw) return;
          const meta = readMeta(raw, this.codec, taskId);
          if (READY_STATES.has(String(meta.status))) this.settle(taskId, meta);
        })
        .catch((err) => drop(err as Error));
    });
  }

  private leaving: string[] | undefined;

  /** Unsubscribe from a result's channel; those of one burst (a group's results arriving) share one UNSUBSCRIBE. */
  private unsubscribe(channel: string): void {
    if (this.leaving) {
      this.leaving.push(channel);
      return;
    }
    const channels = (this.leaving = [channel]);
    process.nextTick(() => {
      this.leaving = undefined;
      const sub = this.subscriber;
      for (let i = 0; sub && i < channels.length; i += 1000) void sub.unsubscribe(...channels.slice(i, i + 1000)).catch(() => undefined);
    });
  }

  private watching: { subscribe: string[]; read: string[]; done: Promise<Map<string, Buffer | null>> } | undefined;

  /**
   * Subscribe to a result's channel, then read it. The waits begun in one burst (a group's join) share
   * one SUBSCRIBE and one MGET per 1,000 results; a lone wait is batched with nothing and goes at once.
   */
  private watch(taskId: string, subscribe: boolean): Promise<Buffer | null> {
    let w = this.watching;
    if (!w) {
      const batch = { subscribe: [] as string[], read: [] as string[], done: undefined as unknown as Promise<Map<string, Buffer | null>> };
      batch.done = new Promise((resolve, reject) => process.nextTick(() => {
        if (this.watching === batch) this.watching = undefined;
        this.flushWatch(batch.subscribe, batch.read).then(resolve, reject);
      }));
      this.watching = w = batch;
    }
    if (subscribe) w.subscribe.push(this.key(taskId));
    w.read.push(taskId);
    return w.done.then((m) => m.get(taskId) ?? null);
  }

  private async flushWatch(channels: string[], ids: string[]): Promise<Map<string, Buffer | null>> {
    const sub = await this.subscriberClient();
    for (let i = 0; i < channels.length; i += 1000) await sub.subscribe(...channels.slice(i, i + 1000));
    const out = new Map<string, Buffer | null>();
    for (let i = 0; i < ids.length; i += 1000) {
      const part = ids.slice(i, i + 1000);
      const what = part.length === 1 ? `reading the result of task ${part[0]}` : `reading ${part.length} results (${part[0]}, …)`;
      const values = await this.retrying(`${what} from ${this.displayUrl}`, async () => (await this.cmd()).mgetBuffer(...part.map((id) => this.key(id))));
      part.forEach((id, j) => out.set(id, values[j] ?? null));
    }
    return out;
  }

  async forget(taskId: string): Promise<void> {
    const c = await this.cmd();
    await c.del(this.key(taskId));
  }

  /** The raw client, for tools and tests. */
  /** global_rate_limit buckets on this Redis (when the broker has no store of its own). */
  async sharedBuckets(): Promise<SharedBuckets> {
    return redisBuckets(await this.commandClient(), this.displayUrl);
  }

  async commandClient(): Promise<Redis> {
    return this.cmd();
  }

  async close(): Promise<void> {
    for (const [, set] of this.waiters) for (const w of set) w.reject(new Error('The result backend was closed'));
    this.waiters.clear();
    const sub = this.subscriber;
    this.subscriber = undefined;
    this.subscribing = undefined;
    if (sub) this.budget.give();
    sub?.disconnect();
    if (this.client) this.budget.give();
    await closeClient(this.client);
    this.client = undefined;
    this.connecting = undefined;
  }
}

/**
 * Redis answers a wrong command (a script error, a wrong type, a missing permission) with an error
 * reply that retrying cannot fix; errors of a server that is loading, read-only during a failover,
 * short of replicas or busy stay transient.
 */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|READONLY|NOREPLICAS|TRYAGAIN|CLUSTERDOWN|OOM)\b/;

function markPermanent(err: unknown): never {
  if (err instanceof ReplyError && !TRANSIENT_REPLY.test((err as Error).message)) Object.assign(err as Error, { permanent: true });
  throw err;
}

export function createBackend(url: string, ctx: BackendContext): ResultBackend {
  return new RedisBackend(url, ctx);
}
