// The worker: consume queues, run tasks in a pool, store results, ack as Celery does, shut down cleanly.
import { EventEmitter } from 'node:events';
import os from 'node:os';
import type { Celeriac } from '../app/celeriac.js';
import type { Broker, Consumer, Delivery } from '../brokers/types.js';
import type { ResultBackend, ResultMeta, TaskState } from '../backends/types.js';
import { decodeTask, encodeTaskV2, type DecodeOptions, type TaskRequest } from '../protocol/message.js';
import { ContentDisallowed, DecodeError, InvalidTaskError } from '../protocol/errors.js';
import { repr } from '../protocol/repr.js';
import { createLogger, parseLogLevel, type Logger, type LogLevel } from '../app/log.js';
import type { Task } from '../app/task.js';
import type { Request, RetryOptions } from '../app/context.js';
import {
  encodeException, exceptionRepr, formatTraceback, Ignore, MaxRetriesExceededError, Reject, Retry,
  SoftTimeLimitExceeded, TaskError, TaskRevokedError, TimeLimitExceeded, WorkerLostError,
} from '../app/exceptions.js';
import { AsyncPool } from './pool.js';
import { Completions } from './completion.js';
import { buildMeta, type MetaExtras } from './meta.js';
import { InlineExecutor, POOL_KINDS, type Executor, type PoolKind } from './executor.js';
import { ChildExecutor, PoolClosed } from './child-executor.js';
import type { Job, JobHooks } from './job.js';
import { parseRate, RateLimiter } from './rate-limit.js';
import { GlobalRateLimiter, openSharedBuckets } from './global-rate-limit.js';
import { autoretryOptions } from './retry-policy.js';
import { RevokedSet, terminateSignal } from './revoked.js';
import { WorkerControl, type ControlTarget } from '../control/worker-control.js';
import { holdProcess } from '../app/keep-alive.js';
import { describeUrl } from '../brokers/registry.js';

export interface WorkerOptions {
  queues?: string[];
  concurrency?: number;
  prefetchMultiplier?: number;
  hostname?: string;
  loglevel?: LogLevel | string;
  logger?: Logger;
  /** 'async' (default, I/O-bound tasks), 'thread' (worker_threads) or 'process' (child processes). */
  pool?: PoolKind | string;
  /** The app module thread/process children import (the -A path); required for those pools. */
  module?: string;
  /** [max, min]: grow the pool up to max when work is waiting, shrink back to min when idle. */
  autoscale?: [number, number];
  /** Seconds the pool must be idle before autoscale drops a slot (Celery's AUTOSCALE_KEEPALIVE); default 5. */
  autoscaleKeepalive?: number;
  /** File that keeps revoked task ids across restarts (Celery's --statedb). */
  statedb?: string;
  /** Seconds a cold shutdown still gives running tasks (worker_soft_shutdown_timeout). */
  softShutdownTimeout?: number;
  maxTasksPerChild?: number;
  /** KiB (worker_max_memory_per_child). */
  maxMemoryPerChild?: number;
  /** Listen for revoke/ping/rate_limit on celery.pidbox (worker_enable_remote_control, default true). */
  remoteControl?: boolean;
}

export interface TaskEvent {
  id: string;
  name: string;
  state?: string;
  result?: unknown;
  error?: unknown;
  runtime?: number;
  request?: TaskRequest;
}

interface Held {
  delivery: Delivery;
  req: TaskRequest;
  task: Task<any, any>;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** A task's options with the app's defaults filled in (see Worker.optionsOf). */
interface ResolvedOptions {
  acksLate: boolean;
  ignoreResult: boolean;
  storeErrors: boolean;
  trackStarted: boolean;
  timeLimit: number | null;
  softTimeLimit: number | null;
}

/** How a task's outcome is stored and its message settled (read once per task). */
interface FinishPolicy {
  acksLate: boolean;
  ignoreResult: boolean;
  storeErrors: boolean;
  extras: MetaExtras;
  /** The early ack's promise (never rejects), or null with acks_late. */
  earlyAck: Promise<void> | null;
}

interface RunningJob {
  held: Held;
  key: string;
  started: number;
  terminated?: boolean;
}

/** Custom header counting how often a message was requeued after its executor died (bounds poison loops). */
export const REDELIVERIES_HEADER = 'celeriac_redeliveries';


/** Results being stored / messages being settled after their handler returned, at least this many at once. */
const FINISHING_MIN = 64;

export class Worker extends EventEmitter {
  readonly hostname: string;
  readonly queues: string[];
  concurrency: number;
  readonly prefetchMultiplier: number;
  readonly logger: Logger;
  readonly pool: AsyncPool;
  readonly poolKind: PoolKind;
  readonly executor: Executor;
  readonly revoked: RevokedSet;
  readonly rateLimiter = new RateLimiter();
  /** global_rate_limit: one bucket per task name shared by every worker on the broker. */
  readonly globalRateLimiter: GlobalRateLimiter;
  processed = 0;
  private readonly running = new Map<string, RunningJob>();
  private readonly timeLimits = new Map<string, { soft: number | null; hard: number | null }>();
  private readonly totals = new Map<string, number>();
  private control: WorkerControl | undefined;
  private autoscaleTimer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  private readonly softShutdownTimeout: number;
  private broker: Broker | undefined;
  private backend: ResultBackend | null = null;
  private consumer: Consumer | undefined;
  private readonly etaTimers = new Map<string, { timer: NodeJS.Timeout; held: Held; release: () => void }>();
  private prefetch: number;
  private heldForEta = 0;
  private readonly completions: Completions;
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  private closing: Promise<void> | undefined;

  constructor(
    readonly app: Celeriac,
    opts: WorkerOptions = {},
  ) {
    super();
    const conf = app.conf;
    this.hostname = opts.hostname ?? `celery@${os.hostname()}`;
    this.queues = opts.queues?.length ? opts.queues : [conf.task_default_queue];
    this.concurrency = Math.max(1, opts.concurrency ?? conf.worker_concurrency ?? 10);
    this.prefetchMultiplier = opts.prefetchMultiplier ?? conf.worker_prefetch_multiplier ?? 4;
    this.prefetch = this.prefetchMultiplier > 0 ? this.concurrency * this.prefetchMultiplier : 0;
    this.logger = opts.logger ?? (opts.loglevel ? createLogger(parseLogLevel(String(opts.loglevel))) : app.logger);
    this.completions = new Completions(this.logger);
    this.globalRateLimiter = new GlobalRateLimiter(this.logger);
    const kind = String(opts.pool ?? conf.worker_pool ?? 'async');
    if (!POOL_KINDS.includes(kind as PoolKind)) throw new Error(`Unknown pool '${kind}': use one of ${POOL_KINDS.join(', ')} (-P/--pool, worker_pool)`);
    this.poolKind = kind as PoolKind;
    const [maxC, minC] = opts.autoscale ?? [this.concurrency, this.concurrency];
    if (opts.autoscale && (!(maxC >= 1) || !(minC >= 1) || minC > maxC)) throw new Error(`autoscale must be max,min with 1 <= min <= max, got ${opts.autoscale.join(',')}`);
    if (opts.autoscale) {
      this.concurrency = maxC;
      this.prefetch = this.prefetchMultiplier > 0 ? maxC * this.prefetchMultiplier : 0;
    }
    const initial = opts.autoscale ? minC : this.concurrency;
    this.pool = new AsyncPool(initial);
    this.autoscale = opts.autoscale ? { max: maxC, min: minC, keepaliveMs: (opts.autoscaleKeepalive ?? Number(process.env.AUTOSCALE_KEEPALIVE ?? 5)) * 1000 } : undefined;
    if (this.poolKind === 'async') this.executor = new InlineExecutor(app);
    else {
      const module = opts.module ?? (conf.worker_app_module as string | undefined);
      if (!module) throw new Error(`The ${this.poolKind} pool runs tasks in ${this.poolKind === 'thread' ? 'worker threads' : 'child processes'} that import your app module: pass { module: '/path/to/app.ts' } to app.worker() (the CLI passes -A).`);
      this.executor = new ChildExecutor({
        kind: this.poolKind, module, size: initial, brokerUrl: app.brokerUrl, backendUrl: app.backendUrl, logger: this.logger,
        maxTasksPerChild: opts.maxTasksPerChild ?? conf.worker_max_tasks_per_child,
        maxMemoryPerChild: opts.maxMemoryPerChild ?? conf.worker_max_memory_per_child,
      });
    }
    this.revoked = new RevokedSet(opts.statedb ?? conf.worker_state_db ?? null);
    this.softShutdownTimeout = opts.softShutdownTimeout ?? conf.worker_soft_shutdown_timeout ?? 0;
    this.remoteControl = opts.remoteControl ?? conf.worker_enable_remote_control !== false;
    if (!conf.worker_disable_rate_limits) {
      for (const t of app.tasks.values()) {
        const r = parseRate(t.options.rate_limit as string | number | null | undefined);
        if (r > 0) this.rateLimiter.set(t.name, r);
      }
    }
  }

  private readonly autoscale: { max: number; min: number; keepaliveMs: number } | undefined;
  private readonly remoteControl: boolean;

  /** Connect, start consuming, and resolve once the worker is ready. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('This worker was already started; create a new one with app.worker()');
    this.state = 'running';
    // A running worker keeps its process alive, though its idle connections do not (app/keep-alive.ts).
    this.releaseProcess = holdProcess();
    return this.connectAndConsume().catch((err) => {
      this.releaseProcess?.();
      throw err;
    });
  }

  private releaseProcess: (() => void) | undefined;

  private async connectAndConsume(): Promise<void> {
    this.broker = await this.app.broker();
    this.backend = await this.app.backend();
    // Settings read for every message, taken once here (as Celery reads them at worker start).
    this.decodeOptions = { accept: this.app.conf.accept_content as DecodeOptions['accept'] };
    this.resultExtended = this.app.conf.result_extended === true;
    if (!this.app.conf.worker_disable_rate_limits) {
      // Fails the start (before any child is spawned) when global_rate_limit has no shared store.
      await this.globalRateLimiter.start(GlobalRateLimiter.limitsOf(this.app.tasks.values()),
        (names) => openSharedBuckets(this.broker!, this.backend, this.app.backendUrl, names));
    }
    await this.executor.start();
    if (this.remoteControl) {
      this.control = new WorkerControl(this.broker, this.controlTarget(), this.logger);
      await this.control.start();
    }
    this.consumer = await this.broker.consume(this.queues, (d) => this.onDelivery(d), { prefetch: this.prefetch });
    if (this.autoscale) this.startAutoscale(this.autoscale);
    this.logger.info(`${this.hostname} ready.`);
    this.emit('workerReady', this);
  }

  /** The start-up banner, like Celery's. */
  banner(): string {
    const app = this.app;
    const backend = app.backendUrl ? describeUrl(app.backendUrl) : 'disabled';
    const tasks = [...app.tasks.keys()].sort();
    const lines = [
      ` -------------- ${this.hostname} v${VERSION}`,
      `--- ***** ----- Node ${process.version} ${os.platform()} ${os.arch()} ${new Date().toISOString()}`,
      `- *** --- * --- `,
      `- ** ---------- [config]`,
      `- ** ---------- .> app:         ${app.main}`,
      `- ** ---------- .> transport:   ${describeUrl(app.brokerUrl)}${app.usesEmbeddedDefault ? '  (embedded default: no broker configured)' : ''}`,
      `- ** ---------- .> results:     ${backend}`,
      `- *** --- * --- .> concurrency: ${this.autoscale ? `{min=${this.autoscale.min}, max=${this.autoscale.max}}` : this.concurrency} (${this.poolKind})`,
      `-- ******* ---- .> prefetch:    ${this.prefetch || 'unlimited'}`,
      `--- ***** ----- `,
      ` -------------- [queues]`,
      ...this.queues.map((q) => `                .> ${q.padEnd(16)} exchange=${q}(direct) key=${q}`),
      '',
      '[tasks]',
      ...tasks.map((t) => `  . ${t}`),
      '',
    ];
    return lines.join('\n');
  }

  private onDelivery(d: Delivery): void {
    if (this.state !== 'running') return; // restored on shutdown
    let req: TaskRequest;
    try {
      req = decodeTask(d.message, this.decodeOptions);
    } catch (err) {
      this.onBadMessage(d, err as Error);
      return;
    }
    const task = this.app.tasks.get(req.task);
    if (!task) {
      void this.onUnregistered(d, req);
      return;
    }
    if (this.revoked.has(req.id)) {
      void this.discardRevoked(d, req, 'revoked');
      return;
    }
    if (req.expires && req.expires.getTime() <= Date.now()) {
      void this.discardRevoked(d, req, 'expired');
      return;
    }
    if (this.logger.isEnabled('info')) this.logger.info(`Task ${req.task}[${req.id}] received`);
    // Event objects are built only for listeners: most workers have none on the per-task events.
    if (this.listenerCount('taskReceived') > 0) this.emit('taskReceived', { id: req.id, name: req.task, request: req } satisfies TaskEvent);
    const held: Held = { delivery: d, req, task };
    const delay = req.eta ? req.eta.getTime() - Date.now() : 0;
    if (delay > 0) this.holdUntilEta(held, delay);
    else this.dispatch(held);
  }

  /**
   * Hand a due request to the pool, after its per-worker and then its global rate-limit token
   * (kept unacked while it waits, as Celery).
   */
  private dispatch(held: Held): void {
    const name = held.task.name;
    if (!this.rateLimiter.has(name) && !this.globalRateLimiter.has(name)) {
      this.pool.submit(() => this.execute(held));
      return;
    }
    const submit = () => {
      if (this.state === 'running') this.pool.submit(() => this.execute(held));
    };
    const global = () => {
      if (this.state !== 'running') return;
      if (this.globalRateLimiter.has(name)) this.globalRateLimiter.schedule(name, submit);
      else submit();
    };
    if (this.rateLimiter.has(name)) this.rateLimiter.schedule(name, global);
    else global();
  }

  /** Keep an ETA message unacked until it is due; it does not count against prefetch (as Celery). */
  private holdUntilEta(held: Held, delay: number): void {
    this.heldForEta++;
    this.consumer?.setPrefetch(this.prefetch === 0 ? 0 : this.prefetch + this.heldForEta);
    const key = held.req.id + held.delivery.deliveryTag;
    const release = () => {
      this.etaTimers.delete(key);
      this.heldForEta--;
      this.consumer?.setPrefetch(this.prefetch === 0 ? 0 : this.prefetch + this.heldForEta);
    };
    const fire = () => {
      release();
      if (this.state === 'running') this.dispatch(held);
    };
    // setTimeout holds at most ~24.8 days; re-arm in steps for longer ETAs.
    const arm = (ms: number) => {
      const step = Math.min(ms, 2 ** 31 - 1);
      const timer = setTimeout(() => (ms > step ? arm(ms - step) : fire()), step);
      this.etaTimers.set(key, { timer, held, release });
    };
    arm(delay);
  }

  private onBadMessage(d: Delivery, err: Error): void {
    const where = `queue '${d.queue}' (delivery_tag ${d.deliveryTag})`;
    if (err instanceof DecodeError) {
      // Celery acks undecodable messages so they cannot loop.
      this.logger.critical(`Can't decode message body from ${where}: ${err.message}. The message has been discarded.`);
      void d.ack().catch(() => undefined);
    } else if (err instanceof ContentDisallowed) {
      this.logger.error(`${err.message} — message from ${where} rejected.`);
      void d.reject(false).catch(() => undefined);
    } else {
      const kind = err instanceof InvalidTaskError ? 'Received invalid task message' : 'Received unreadable message';
      this.logger.error(`${kind} from ${where}: ${err.message}. The message has been rejected and discarded.`);
      void d.reject(false).catch(() => undefined);
    }
  }

  private async onUnregistered(d: Delivery, req: TaskRequest): Promise<void> {
    this.logger.error(
      `Received unregistered task of type '${req.task}'.\nThe message has been ignored and discarded.\n\n` +
        `Did you remember to register the task with app.task('${req.task}', ...) in the module given to -A?`,
    );
    const exc = { exc_type: 'NotRegistered', exc_message: [req.task], exc_module: 'celery.exceptions' };
    await this.storeSafely(buildMeta(req, 'FAILURE', exc, null, this.metaExtras(d)), req);
    this.emit('taskFailure', { id: req.id, name: req.task, state: 'FAILURE', error: exc } satisfies TaskEvent);
    await d.reject(false).catch(() => undefined);
  }

  private async discardRevoked(d: Delivery, req: TaskRequest, reason: 'revoked' | 'expired'): Promise<void> {
    this.logger.info(reason === 'expired' ? `Task ${req.task}[${req.id}] expired; discarding it` : `Discarding revoked task: ${req.task}[${req.id}]`);
    const exc = { exc_type: 'TaskRevokedError', exc_message: [reason], exc_module: 'celery.exceptions' };
    await this.storeSafely(buildMeta(req, 'REVOKED', exc, null, { ...this.metaExtras(d), children: null }), req);
    await d.ack().catch(() => undefined);
    this.emit('taskRevoked', { id: req.id, name: req.task, state: 'REVOKED' } satisfies TaskEvent);
  }

  private metaExtras(d: Delivery) {
    return { extended: this.resultExtended, hostname: this.hostname, queue: d.routingKey || d.queue };
  }

  /**
   * A task's options with the app's defaults filled in, read once per task while the worker runs
   * (as Celery resolves them when the app is finalized): app.conf is a proxy that normalises every
   * key it is asked for, which would cost more per task than the rest of the bookkeeping.
   */
  private optionsOf(task: Task<any, any>): ResolvedOptions {
    let o = this.resolvedOptions.get(task);
    if (!o) {
      o = {
        acksLate: this.taskOption<boolean>(task, 'acks_late', 'task_acks_late') === true,
        ignoreResult: this.taskOption<boolean>(task, 'ignore_result', 'task_ignore_result') === true,
        storeErrors: this.taskOption<boolean>(task, 'store_errors_even_if_ignored', 'task_store_errors_even_if_ignored') === true,
        trackStarted: this.taskOption<boolean>(task, 'track_started', 'task_track_started') === true,
        timeLimit: (task.options.time_limit as number | null | undefined) ?? this.app.conf.task_time_limit ?? null,
        softTimeLimit: (task.options.soft_time_limit as number | null | undefined) ?? this.app.conf.task_soft_time_limit ?? null,
      };
      this.resolvedOptions.set(task, o);
    }
    return o;
  }

  private readonly resolvedOptions = new Map<Task<any, any>, ResolvedOptions>();
  private decodeOptions: DecodeOptions = {};
  private resultExtended = false;

  private taskOption<T>(task: Task<any, any>, name: string, setting: string): T {
    const v = task.options[name];
    return (v === undefined ? this.app.conf[setting] : v) as T;
  }

  /** @internal Store a state; false (and logged) when the backend failed. */
  storeSafely(meta: ResultMeta, req: TaskRequest): Promise<boolean> {
    if (!this.backend) return Promise.resolve(true);
    let stored: Promise<void>;
    try {
      stored = this.backend.store(meta, { replyTo: req.replyTo, correlationId: req.correlationId });
    } catch (err) {
      stored = Promise.reject(err); // e.g. a result that cannot be encoded
    }
    return stored.then(
      () => true,
      (err: unknown) => {
        this.completions.storeFailed(meta.status, req, err);
        return false;
      },
    );
  }

  /**
   * Run one task and settle its message (Celery's trace + Request.on_success/on_failure/on_timeout).
   * A plain handler's task is done when this returns (no promise): nothing is awaited between the
   * delivery and the handler, and the pool slot frees at once.
   */
  private execute(held: Held): Promise<void> | void {
    const { delivery: d, req, task } = held;
    if (this.revoked.has(req.id)) return this.discardRevoked(d, req, 'revoked');
    if (req.expires && req.expires.getTime() <= Date.now()) return this.discardRevoked(d, req, 'expired');
    const options = this.optionsOf(task);
    const acksLate = options.acksLate;
    const ignoreResult = req.ignoreResult ?? options.ignoreResult;
    const extras = this.metaExtras(d);
    // Early ack (the default): acknowledged when the pool accepts the job.
    const earlyAck = acksLate ? null : this.completions.ackEarly(d, req);
    const f: FinishPolicy = { acksLate, ignoreResult, storeErrors: options.storeErrors, extras, earlyAck };
    if (options.trackStarted && !ignoreResult) {
      return this.storeSafely(buildMeta(req, 'STARTED', { pid: process.pid, hostname: this.hostname }, null, extras), req)
        .then(() => this.runHandler(held, f));
    }
    return this.runHandler(held, f);
  }

  private runHandler(held: Held, f: FinishPolicy): Promise<void> | void {
    const { delivery: d, req, task } = held;
    const key = `${req.id}:${d.deliveryTag}`;
    const job = new HeldJob(this, held, key);
    const hooks = new HeldHooks(this, held, f.extras);
    const running: RunningJob = { held, key, started: Date.now() };
    this.running.set(key, running);
    if (this.listenerCount('taskPrerun') > 0) this.emit('taskPrerun', { id: req.id, name: req.task, request: req } satisfies TaskEvent);
    const started = performance.now();
    const limits = this.limitsFor(task, req);
    if (limits.hard || limits.soft || !(this.executor instanceof InlineExecutor)) {
      return this.runWithLimits(job, hooks, task, req, limits).then(
        (value) => this.afterHandler(held, key, { ok: true, value }, started, f),
        (error: unknown) => this.afterHandler(held, key, { ok: false, error }, started, f),
      );
    }
    let value: unknown;
    try {
      value = this.executor.runInline(job, hooks);
    } catch (error) {
      return this.afterHandler(held, key, { ok: false, error }, started, f);
    }
    if (!(value instanceof Promise)) return this.afterHandler(held, key, { ok: true, value }, started, f);
    return value.then(
      (v: unknown) => this.afterHandler(held, key, { ok: true, value: v }, started, f),
      (error: unknown) => this.afterHandler(held, key, { ok: false, error }, started, f),
    );
  }

  /** The handler returned or threw: count it, then store and settle (beside the next tasks where possible). */
  private afterHandler(held: Held, key: string, outcome: Outcome, started: number, f: FinishPolicy): Promise<void> | void {
    this.running.delete(key);
    const runtime = (performance.now() - started) / 1000;
    this.processed++;
    this.totals.set(held.req.task, (this.totals.get(held.req.task) ?? 0) + 1);
    const limit = Math.max(this.prefetch * 2, this.pool.concurrency * 4, FINISHING_MIN);
    if (outcome.ok && f.earlyAck) {
      // A success whose ack is on its way: store the result (if kept); the events follow the ack's reply.
      const { req } = held;
      const ack = f.earlyAck;
      const succeeded = this.succeeded(req, outcome.value, runtime);
      if (f.ignoreResult || !this.backend) {
        this.completions.afterAck(ack, succeeded);
        return;
      }
      const stored = this.completions.storeSuccess(this.backend, req, buildMeta(req, 'SUCCESS', outcome.value, null, f.extras), ack, succeeded);
      return this.completions.inFlight > limit ? stored : undefined;
    }
    const finishing = this.finish(held, outcome, runtime, f);
    // The pool slot is free once the handler has returned: storing the result and settling the
    // message go on beside the next tasks, up to two prefetch windows of them (at least 4 ×
    // concurrency and FINISHING_MIN): a fetched batch runs in one go, and its results are stored
    // together while the next batches run; beyond that the slot waits.
    if (this.completions.inFlight >= limit) return finishing;
    this.completions.track(finishing);
  }

  /** What a success reports (log line, taskSuccess, taskPostrun), or null when nobody would see it. */
  private succeeded(req: TaskRequest, value: unknown, runtime: number): (() => void) | null {
    const info = this.logger.isEnabled('info');
    if (!info && this.listenerCount('taskSuccess') === 0 && this.listenerCount('taskPostrun') === 0) return null;
    return () => {
      if (info) this.logger.info(`Task ${req.task}[${req.id}] succeeded in ${runtime.toFixed(6)}s: ${truncate(repr(value))}`);
      if (this.listenerCount('taskSuccess') > 0) this.emit('taskSuccess', { id: req.id, name: req.task, state: 'SUCCESS', result: value, runtime } satisfies TaskEvent);
      if (this.listenerCount('taskPostrun') > 0) this.emit('taskPostrun', { id: req.id, name: req.task, state: 'SUCCESS', result: value, runtime } satisfies TaskEvent);
    };
  }

  /** After the handler: store the outcome, settle the message, emit events (Celery's on_success/on_failure). */
  private async finish(held: Held, outcome: Outcome, runtime: number, f: FinishPolicy): Promise<void> {
    const { delivery: d, req, task } = held;
    const { acksLate, ignoreResult, storeErrors, extras, earlyAck } = f;
    if (outcome.ok) {
      // With an early ack, afterHandler has taken care of a success; this is acks_late.
      let stored = true;
      if (!ignoreResult) stored = await this.storeSafely(buildMeta(req, 'SUCCESS', outcome.value, null, extras), req);
      // The task ran: never run it again because the backend was away (its result is lost, and said so).
      if (!stored) this.logger.error(`Task ${req.task}[${req.id}] succeeded but its result could not be stored; acknowledging it anyway so it does not run twice.`);
      await this.settle(d, 'ack', req);
      this.succeeded(req, outcome.value, runtime)?.();
      return;
    }

    let error = outcome.error;
    if (error instanceof PoolClosed) {
      // Cold shutdown killed the child: leave the message to restoreUnacked (acks_late) and store nothing.
      this.logger.warning(`Task ${req.task}[${req.id}] was stopped by the cold shutdown`);
      return;
    }
    const auto = autoretryOptions(task.options, error, req.retries);
    if (auto) error = this.retryTask(held, auto);

    if (error instanceof Retry) {
      try {
        await (error as Retry & { published?: Promise<void> }).published;
      } catch (err) {
        this.logger.error(`Task ${req.task}[${req.id}] could not be republished for retry: ${(err as Error).message}`);
        await this.storeSafely(buildMeta(req, 'FAILURE', encodeException(err), formatTraceback(err), extras), req);
        if (acksLate) await this.settle(d, 'reject', req);
        await earlyAck;
        this.emit('taskFailure', { id: req.id, name: req.task, state: 'FAILURE', error: err, runtime } satisfies TaskEvent);
        this.emit('taskPostrun', { id: req.id, name: req.task, state: 'FAILURE', error: err, runtime } satisfies TaskEvent);
        return;
      }
      const info = encodeException(error.exc ?? error);
      const tb = error.exc instanceof TaskError && error.exc.traceback ? error.exc.traceback : formatTraceback(error.exc ?? error);
      await this.storeSafely(buildMeta(req, 'RETRY', info, tb, { ...extras, children: [[[req.id, null], null]] }), req);
      if (acksLate) await this.settle(d, 'ack', req);
      await earlyAck;
      this.logger.info(`Task ${req.task}[${req.id}] retry: ${error.message}`);
      this.emit('taskRetry', { id: req.id, name: req.task, state: 'RETRY', error: error.exc, runtime } satisfies TaskEvent);
      this.emit('taskPostrun', { id: req.id, name: req.task, state: 'RETRY', runtime } satisfies TaskEvent);
      return;
    }
    if (error instanceof Reject) {
      if (acksLate) await this.settle(d, error.requeue ? 'requeue' : 'reject', req);
      await earlyAck;
      this.logger.info(`Task ${req.task}[${req.id}] rejected${error.requeue ? ' (requeued)' : ''}: ${error.reason}`);
      this.emit('taskPostrun', { id: req.id, name: req.task, state: 'REJECTED', runtime } satisfies TaskEvent);
      return;
    }
    if (error instanceof Ignore) {
      if (acksLate) await this.settle(d, 'ack', req);
      await earlyAck;
      this.emit('taskPostrun', { id: req.id, name: req.task, state: 'IGNORED', runtime } satisfies TaskEvent);
      return;
    }
    if (error instanceof TaskRevokedError) {
      // revoke(terminate=True): REVOKED 'terminated', message acked (Celery's on_failure for a revoked request).
      const exc = { exc_type: 'TaskRevokedError', exc_message: ['terminated'], exc_module: 'celery.exceptions' };
      await this.storeSafely(buildMeta(req, 'REVOKED', exc, null, { ...extras, children: null }), req);
      if (acksLate) await this.settle(d, 'ack', req);
      await earlyAck;
      this.logger.info(`Task ${req.task}[${req.id}] terminated (revoked)`);
      this.emit('taskRevoked', { id: req.id, name: req.task, state: 'REVOKED', runtime } satisfies TaskEvent);
      this.emit('taskPostrun', { id: req.id, name: req.task, state: 'REVOKED', runtime } satisfies TaskEvent);
      return;
    }
    if (error instanceof WorkerLostError && acksLate && this.taskOption<boolean>(task, 'reject_on_worker_lost', 'task_reject_on_worker_lost') === true) {
      if (await this.requeueAfterWorkerLost(held, error)) {
        await earlyAck;
        this.emit('taskPostrun', { id: req.id, name: req.task, state: 'REQUEUED', error, runtime } satisfies TaskEvent);
        return;
      }
    }
    const info = encodeException(error);
    const tb = error instanceof TaskError && error.traceback ? error.traceback : formatTraceback(error);
    if (!ignoreResult || storeErrors) await this.storeSafely(buildMeta(req, 'FAILURE', info, tb, extras), req);
    if (acksLate) {
      const timeout = error instanceof TimeLimitExceeded;
      const ackOnFailure = this.taskOption<boolean>(task, 'acks_on_failure_or_timeout', 'task_acks_on_failure_or_timeout') !== false;
      // A lost worker with reject_on_worker_lost false is acked, as Celery does.
      await this.settle(d, ackOnFailure || (error instanceof WorkerLostError && !timeout) ? 'ack' : 'reject', req);
    }
    await earlyAck;
    this.logger.error(`Task ${req.task}[${req.id}] raised unexpected: ${exceptionRepr(info)}\n${tb}`);
    this.emit('taskFailure', { id: req.id, name: req.task, state: 'FAILURE', error, runtime } satisfies TaskEvent);
    this.emit('taskPostrun', { id: req.id, name: req.task, state: 'FAILURE', error, runtime } satisfies TaskEvent);
  }

  /**
   * acks_late + reject_on_worker_lost: put the message back, counting requeues in a header so a poison
   * message that keeps killing its executor ends as FAILURE (WorkerLostError) after task_max_redeliveries.
   * Returns false when the budget is spent (the caller stores FAILURE and rejects without requeue).
   */
  private async requeueAfterWorkerLost(held: Held, error: Error): Promise<boolean> {
    const { delivery: d, req, task } = held;
    const max = Number(this.taskOption<number>(task, 'max_redeliveries', 'task_max_redeliveries') ?? 3);
    const count = Number(d.message.headers[REDELIVERIES_HEADER] ?? 0);
    if (count >= max) {
      this.logger.error(`Task ${req.task}[${req.id}] lost its executor ${count + 1} times; giving up (task_max_redeliveries=${max})`);
      return false;
    }
    const message = { ...d.message, headers: { ...d.message.headers, [REDELIVERIES_HEADER]: count + 1 } };
    try {
      await this.app.publish(this.broker!, message, { exchange: '', routingKey: d.queue });
    } catch (err) {
      this.logger.error(`Could not requeue ${req.task}[${req.id}] after ${error.message}: ${(err as Error).message}; requeueing the original`);
      await this.settle(d, 'requeue', req);
      return true;
    }
    await this.settle(d, 'ack', req);
    this.logger.warning(`Task ${req.task}[${req.id}] requeued after ${error.message} (redelivery ${count + 1} of ${max})`);
    return true;
  }

  private async settle(d: Delivery, how: 'ack' | 'reject' | 'requeue', req: TaskRequest): Promise<void> {
    try {
      if (how === 'ack') await d.ack();
      else await d.reject(how === 'requeue');
    } catch (err) {
      this.logger.error(`Could not ${how} the message of ${req.task}[${req.id}]: ${(err as Error).message}; the broker will deliver it again.`);
    }
  }

  /** The limits that apply: header [hard, soft], then a time_limit control command, then the task, then the settings. */
  private limitsFor(task: Task<any, any>, req: TaskRequest): { hard: number | null; soft: number | null } {
    const ctl = this.timeLimits.get(task.name);
    const options = this.optionsOf(task);
    const hard = req.timelimit[0] ?? ctl?.hard ?? options.timeLimit;
    const soft = req.timelimit[1] ?? ctl?.soft ?? options.softTimeLimit;
    return { hard, soft };
  }

  /**
   * Soft limit: the task's AbortSignal fires with SoftTimeLimitExceeded (catchable). Hard limit: the executor
   * stops the task (thread terminated / process killed and replaced; the async pool stops waiting).
   */
  private runWithLimits(job: Job, hooks: JobHooks, task: Task<any, any>, req: TaskRequest, limits = this.limitsFor(task, req)): Promise<unknown> {
    const { hard, soft } = limits;
    const run = this.executor.run(job, hooks);
    if (!hard && !soft) return run;
    const timers: NodeJS.Timeout[] = [];
    if (soft) {
      timers.push(setTimeout(() => {
        this.logger.warning(`Soft time limit (${soft}s) exceeded for ${req.task}[${req.id}]`);
        this.executor.interrupt(job.key, new SoftTimeLimitExceeded(`SoftTimeLimitExceeded(${soft})`));
      }, soft * 1000));
    }
    if (hard) {
      timers.push(setTimeout(() => {
        this.logger.error(`Hard time limit (${hard}s) exceeded for ${req.task}[${req.id}]`);
        const e = new TimeLimitExceeded(String(hard));
        (e as { excArgs?: unknown[] }).excArgs = [hard];
        this.executor.kill(job.key, e);
      }, hard * 1000));
    }
    return run.finally(() => timers.forEach(clearTimeout));
  }

  /** @internal The Request a task sees (built on first read). */
  requestFor(held: Held): Request {
    const { req, delivery: d } = held;
    return {
      id: req.id, task: req.task, args: req.args, kwargs: req.kwargs, retries: req.retries, eta: req.eta,
      expires: req.expires, headers: req.headers, rootId: req.rootId, parentId: req.parentId, group: req.group,
      groupIndex: req.groupIndex, origin: req.origin, hostname: this.hostname, replyTo: req.replyTo,
      correlationId: req.correlationId, timelimit: req.timelimit, isEager: false,
      deliveryInfo: { exchange: d.exchange, routingKey: d.routingKey, priority: req.priority, redelivered: d.redelivered },
    };
  }

  /** Celery's Task.retry: republish the same id with retries + 1 and an ETA; returns the Retry to throw. */
  /** @internal Celery's Task.retry for a running task. */
  retryTask(held: Held, opts: RetryOptions): Error {
    const { req, task, delivery: d } = held;
    const max = opts.maxRetries !== undefined ? opts.maxRetries : opts.max_retries !== undefined ? opts.max_retries
      : (task.options.max_retries as number | null | undefined) !== undefined ? (task.options.max_retries as number | null) : this.app.conf.task_max_retries;
    if (max !== null && max !== undefined && req.retries >= max) {
      if (opts.exc instanceof Error) return opts.exc;
      return new MaxRetriesExceededError(`Can't retry ${req.task}[${req.id}] args:${repr(req.args)} kwargs:${repr(req.kwargs)}`);
    }
    const countdown = opts.countdown ?? (opts.eta ? undefined : ((task.options.default_retry_delay as number | undefined) ?? this.app.conf.task_default_retry_delay));
    const eta = opts.eta ? new Date(opts.eta) : new Date(Date.now() + (countdown ?? 0) * 1000);
    const message = encodeTaskV2(req.task, req.args, req.kwargs, {
      id: req.id, eta, expires: req.expires, retries: req.retries + 1, timeLimit: req.timelimit[0], softTimeLimit: req.timelimit[1],
      rootId: req.rootId, parentId: req.id, group: req.group, groupIndex: req.groupIndex, origin: req.origin ?? undefined,
      shadow: req.shadow, replyTo: req.replyTo ?? undefined, priority: opts.priority ?? req.priority, headers: req.headers,
      embed: req.embed, ignoreResult: req.ignoreResult ?? undefined, argsrepr: req.argsrepr, kwargsrepr: req.kwargsrepr,
    });
    const queue = opts.queue ?? (d.exchange === '' ? d.routingKey : d.queue) ?? d.queue;
    const when = countdown !== undefined && !opts.eta ? `${countdown}s` : eta.toISOString();
    const exc = opts.exc;
    const retry = new Retry(`Retry in ${when}${exc ? `: ${exceptionRepr(encodeException(exc))}` : ''}`, exc, eta);
    // The publish must land before the Retry is recorded; the worker awaits it through the promise.
    const published = this.app.publish(this.broker!, message, { exchange: '', routingKey: queue });
    (retry as Retry & { published?: Promise<void> }).published = published;
    published.catch(() => undefined);
    return retry;
  }

  /** Revoke (remote control): remember, store REVOKED, drop held ETA messages, optionally stop running ones. */
  async revoke(ids: string[], opts: { terminate?: boolean; signal?: string | number } = {}): Promise<{ ok: string }> {
    for (const id of ids) this.revoked.add(id);
    const { signal, known } = terminateSignal(opts.signal);
    if (opts.terminate && !known) this.logger.warning(`revoke: unknown signal ${JSON.stringify(opts.signal)}; using SIGTERM`);
    const terminated: string[] = [];
    for (const id of ids) {
      for (const [key, h] of [...this.etaTimers]) {
        if (h.held.req.id !== id) continue;
        clearTimeout(h.timer);
        h.release();
        this.etaTimers.delete(key);
        await this.discardRevoked(h.held.delivery, h.held.req, 'revoked');
      }
      if (opts.terminate) {
        for (const r of this.running.values()) {
          if (r.held.req.id !== id) continue;
          this.logger.info(`Terminating ${r.held.req.task}[${id}] (${this.poolKind === 'process' ? signal : `${signal} ignored by the ${this.poolKind} pool`})`);
          if (this.executor.kill(r.key, new TaskRevokedError('terminated'), signal)) terminated.push(id);
        }
      } else if (this.backend && ![...this.running.values()].some((r) => r.held.req.id === id)) {
        // Celery >= 5.6.2 marks the task REVOKED at once; a task that already finished keeps its result.
        const cur = await this.backend.get(id).catch(() => null);
        if (cur && (cur.status === 'PENDING' || cur.status === 'RETRY' || cur.status === 'STARTED' || cur.status === 'RECEIVED')) {
          const exc = { exc_type: 'TaskRevokedError', exc_message: ['revoked'], exc_module: 'celery.exceptions' };
          await this.backend.store({ status: 'REVOKED', result: exc, traceback: null, children: null, date_done: new Date().toISOString().replace('Z', '+00:00'), task_id: id } as ResultMeta, {}).catch(() => undefined);
        }
      }
    }
    this.logger.info(`Tasks flagged as revoked: ${ids.join(', ')}`);
    if (opts.terminate) return { ok: terminated.length ? `terminate: ${terminated.join(', ')}` : 'terminate: tasks unknown' };
    return { ok: `tasks {${ids.map((i) => `'${i}'`).join(', ')}} flagged as revoked` };
  }

  private controlTarget(): ControlTarget {
    return {
      hostname: this.hostname,
      revoke: (ids, terminate, signal) => this.revoke(ids, { terminate, signal }),
      setRateLimit: (name, rate) => {
        if (!this.app.tasks.has(name)) return { error: `unknown task ${name}` };
        this.rateLimiter.set(name, parseRate(rate));
        return { ok: 'new rate limit set successfully' };
      },
      setTimeLimit: (name, soft, hard) => {
        if (!this.app.tasks.has(name)) return { error: `unknown task ${name}` };
        this.timeLimits.set(name, { soft, hard });
        return { ok: 'time limits set successfully' };
      },
      shutdown: () => this.emit('shutdownRequested'),
      ping: () => ({ ok: 'pong' }),
      stats: () => ({ total: Object.fromEntries(this.totals), pid: process.pid, uptime: Math.round((Date.now() - this.startedAt) / 1000),
        pool: { 'max-concurrency': this.concurrency, implementation: this.poolKind, processes: this.executor instanceof ChildExecutor ? this.executor.pids : [] },
        ...(this.autoscale ? { autoscaler: { max: this.autoscale.max, min: this.autoscale.min, qty: this.pool.concurrency } } : {}),
        prefetch_count: this.prefetch }),
      active: () => [...this.running.values()].map((r) => ({
        id: r.held.req.id, name: r.held.req.task, args: r.held.req.args, kwargs: r.held.req.kwargs, type: r.held.req.task,
        hostname: this.hostname, time_start: r.started / 1000, acknowledged: true, worker_pid: process.pid,
        delivery_info: { exchange: r.held.delivery.exchange, routing_key: r.held.delivery.routingKey, priority: r.held.req.priority, redelivered: r.held.delivery.redelivered },
      })),
      registered: () => [...this.app.tasks.keys()].sort(),
      revokedIds: () => this.revoked.list(),
    };
  }

  /** Autoscale: more slots while work waits, one fewer after keepalive without any (Celery's Autoscaler, simplified). */
  private startAutoscale(a: { max: number; min: number; keepaliveMs: number }): void {
    let idleSince = Date.now();
    this.autoscaleTimer = setInterval(() => {
      const cur = this.pool.concurrency;
      if (this.pool.queued > 0 && cur < a.max) {
        const n = Math.min(a.max, cur + this.pool.queued);
        this.logger.info(`Scaling up the pool to ${n}`);
        this.pool.concurrency = n;
        this.executor.resize(n);
        this.pool.submit(async () => undefined); // kick the pump
        idleSince = Date.now();
      } else if (this.pool.queued === 0 && this.pool.active < cur) {
        if (cur > a.min && Date.now() - idleSince > a.keepaliveMs) {
          const n = Math.max(a.min, this.pool.active, cur - 1);
          this.logger.info(`Scaling down the pool to ${n}`);
          this.pool.concurrency = n;
          this.executor.resize(n);
          idleSince = Date.now();
        }
      } else idleSince = Date.now();
    }, 500);
    this.autoscaleTimer.unref();
  }

  /** How many tasks are running now (for tests, stats and shutdown). */
  get activeCount(): number {
    return this.running.size;
  }

  /**
   * Warm shutdown: stop fetching, let running tasks finish, put unstarted and ETA-held messages
   * back on their queues. `cold` stops running tasks after `softShutdownTimeout` seconds (0: at once);
   * with acks_late their messages are restored too.
   */
  close(opts: { cold?: boolean; timeout?: number } = {}): Promise<void> {
    if (opts.cold && this.closing && !this.coldRequested) {
      this.coldRequested = true;
      this.coldNow?.();
    }
    return (this.closing ??= this.shutdown(opts));
  }

  private coldRequested = false;
  private coldNow: (() => void) | undefined;

  private async shutdown(opts: { cold?: boolean; timeout?: number }): Promise<void> {
    if (this.state === 'new') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopping';
    if (opts.cold) this.coldRequested = true;
    this.logger.info(`${opts.cold ? 'Cold' : 'Warm'} shutdown (${this.hostname})`);
    if (this.autoscaleTimer) clearInterval(this.autoscaleTimer);
    await this.consumer?.stop().catch(() => undefined);
    await this.control?.stop();
    for (const h of this.etaTimers.values()) clearTimeout(h.timer);
    this.etaTimers.clear();
    this.rateLimiter.clear();
    await this.globalRateLimiter.close();
    this.pool.drain();
    const waiting = this.pool.onNoneRunning();
    const cold = new Promise<void>((r) => { this.coldNow = r; if (this.coldRequested) r(); });
    const limits: Promise<unknown>[] = [waiting];
    if (opts.timeout) limits.push(new Promise((r) => setTimeout(r, opts.timeout).unref()));
    // A cold shutdown first gives running tasks worker_soft_shutdown_timeout seconds (Celery 5.5's soft shutdown).
    limits.push(cold.then(() => {
      if (this.running.size === 0) return;
      const grace = this.softShutdownTimeout;
      if (grace > 0) this.logger.warning(`Cold shutdown: giving ${this.running.size} running task(s) ${grace}s (worker_soft_shutdown_timeout)`);
      return Promise.race([waiting, new Promise((r) => setTimeout(r, grace * 1000).unref())]);
    }));
    await Promise.race(limits);
    if (this.running.size > 0) {
      this.logger.warning(`Terminating ${this.running.size} running task(s)`);
      for (const r of [...this.running.values()]) this.executor.kill(r.key, new PoolClosed('cold shutdown'));
    }
    await this.executor.close().catch(() => undefined);
    await this.completions.settled();
    const n = await this.consumer?.restoreUnacked().catch((err) => {
      this.logger.error(`Could not restore unacknowledged messages: ${(err as Error).message}`);
      return 0;
    });
    if (n) this.logger.info(`Restoring ${n} unacknowledged message(s)`);
    this.revoked.save();
    this.state = 'stopped';
    this.releaseProcess?.();
    this.emit('workerShutdown', this);
  }
}

const VERSION = '0.1.0';

function truncate(s: string, max = 200): string {
  return s.length > max ? s.slice(0, max) + '…' : s;
}

/** The job of a held message (the request built only when read: a bound task, currentTask(), a child executor). */
class HeldJob implements Job {
  readonly taskName: string;
  readonly args: unknown[];
  readonly kwargs: Record<string, unknown>;
  private built: Request | undefined;

  constructor(private readonly worker: Worker, private readonly held: Held, readonly key: string) {
    this.taskName = held.task.name;
    this.args = held.req.args;
    this.kwargs = held.req.kwargs;
  }

  get request(): Request {
    return (this.built ??= this.worker.requestFor(this.held));
  }
}

/** What a running task may ask of the worker: retry, update_state. */
class HeldHooks implements JobHooks {
  constructor(private readonly worker: Worker, private readonly held: Held, private readonly extras: MetaExtras) {}

  retry(opts: RetryOptions): Error {
    return this.worker.retryTask(this.held, opts);
  }

  async updateState(state: string, meta: unknown): Promise<void> {
    await this.worker.storeSafely(buildMeta(this.held.req, state as TaskState, meta, null, this.extras), this.held.req);
  }
}
