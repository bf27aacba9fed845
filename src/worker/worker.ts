// The worker: wiring and lifecycle. It connects, consumes through the strategy (strategy.ts), runs
// requests (request.ts) in a pool, and shuts down cleanly; remote control, time limits, autoscale and
// the banner live in files of their own.
import { EventEmitter } from 'node:events';
import os from 'node:os';
import type { Broker, Consumer } from '../brokers/types.js';
import type { ResultBackend } from '../backends/types.js';
import type { DecodeOptions } from '../protocol/message.js';
import { createLogger, parseLogLevel, type Logger, type LogLevel } from '../app/log.js';
import type { WorkerHost } from './host.js';
import { AsyncPool } from './pool.js';
import { Completions } from './completion.js';
import { InlineExecutor, POOL_KINDS, PoolClosed, type Executor, type PoolKind } from './executor.js';
import { parseRate, RateLimiter } from './rate-limit.js';
import { GlobalRateLimiter, openSharedBuckets } from './global-rate-limit.js';
import { RevokedSet } from './revoked.js';
import { TaskOptionsCache } from './task-options.js';
import type { ControlTimeLimits } from './time-limits.js';
import { EtaSchedule } from './eta.js';
import { Strategy, type StrategyOwner } from './strategy.js';
import type { Request } from './request.js';
import { Autoscaler, type AutoscaleLimits } from './autoscale.js';
import { banner } from './banner.js';
import { WorkerControlTarget, type ControlSubject } from './remote-control.js';

export { REDELIVERIES_HEADER, type TaskEvent } from './request.js';

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

/** Results being stored / messages being settled after their handler returned, at least this many at once. */
const FINISHING_MIN = 64;

export class Worker extends EventEmitter implements StrategyOwner, ControlSubject {
  readonly hostname: string;
  readonly queues: string[];
  concurrency: number;
  readonly prefetchMultiplier: number;
  readonly prefetch: number;
  readonly logger: Logger;
  readonly pool: AsyncPool;
  readonly poolKind: PoolKind;
  executor: Executor;
  readonly revoked: RevokedSet;
  readonly rateLimiter = new RateLimiter();
  /** global_rate_limit: one bucket per task name shared by every worker on the broker. */
  readonly globalRateLimiter: GlobalRateLimiter;
  readonly completions: Completions;
  readonly taskOptions: TaskOptionsCache;
  readonly timeLimits: ControlTimeLimits = new Map();
  readonly running = new Set<Request>();
  readonly totals = new Map<string, number>();
  readonly eta = new EtaSchedule((n) => this.consumer?.setEtaHeld(n));
  readonly events: EventEmitter = this;
  readonly startedAt = Date.now();
  readonly autoscaleLimits: AutoscaleLimits | undefined;
  processed = 0;
  broker!: Broker;
  backend: ResultBackend | null = null;
  decodeOptions: DecodeOptions = {};
  resultExtended = false;
  private readonly softShutdownTimeout: number;
  private readonly remoteControl: boolean;
  private readonly childModule: string | undefined;
  private readonly childLimits: { maxTasksPerChild?: number | null; maxMemoryPerChild?: number | null };
  private consumer: Consumer | undefined;
  private control: { stop(): Promise<void> } | undefined;
  private autoscaler: Autoscaler | undefined;
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  private closing: Promise<void> | undefined;
  private coldRequested = false;
  private coldNow: (() => void) | undefined;

  constructor(readonly host: WorkerHost, opts: WorkerOptions = {}) {
    super();
    const conf = host.conf;
    this.hostname = opts.hostname ?? `celery@${os.hostname()}`;
    this.queues = opts.queues?.length ? opts.queues : [conf.task_default_queue];
    this.concurrency = Math.max(1, opts.concurrency ?? conf.worker_concurrency ?? 10);
    this.prefetchMultiplier = opts.prefetchMultiplier ?? conf.worker_prefetch_multiplier ?? 4;
    this.logger = opts.logger ?? (opts.loglevel ? createLogger(parseLogLevel(String(opts.loglevel))) : host.logger);
    this.completions = new Completions(this.logger);
    this.globalRateLimiter = new GlobalRateLimiter(this.logger);
    this.taskOptions = new TaskOptionsCache(conf);
    const kind = String(opts.pool ?? conf.worker_pool ?? 'async');
    if (!POOL_KINDS.includes(kind as PoolKind)) throw new Error(`Unknown pool '${kind}': use one of ${POOL_KINDS.join(', ')} (-P/--pool, worker_pool)`);
    this.poolKind = kind as PoolKind;
    const [maxC, minC] = opts.autoscale ?? [this.concurrency, this.concurrency];
    if (opts.autoscale && (!(maxC >= 1) || !(minC >= 1) || minC > maxC)) throw new Error(`autoscale must be max,min with 1 <= min <= max, got ${opts.autoscale.join(',')}`);
    if (opts.autoscale) {
      this.concurrency = maxC;
      this.autoscaleLimits = { max: maxC, min: minC, keepaliveMs: (opts.autoscaleKeepalive ?? Number(process.env.AUTOSCALE_KEEPALIVE ?? 5)) * 1000 };
    }
    this.prefetch = this.prefetchMultiplier > 0 ? this.concurrency * this.prefetchMultiplier : 0;
    this.pool = new AsyncPool(opts.autoscale ? minC : this.concurrency);
    this.executor = new InlineExecutor(host.tasks);
    this.childModule = opts.module ?? (conf.worker_app_module as string | undefined);
    if (this.poolKind !== 'async' && !this.childModule) {
      throw new Error(`The ${this.poolKind} pool runs tasks in ${this.poolKind === 'thread' ? 'worker threads' : 'child processes'} that import your app module: pass { module: '/path/to/app.ts' } to app.worker() (the CLI passes -A).`);
    }
    this.childLimits = { maxTasksPerChild: opts.maxTasksPerChild ?? conf.worker_max_tasks_per_child, maxMemoryPerChild: opts.maxMemoryPerChild ?? conf.worker_max_memory_per_child };
    this.revoked = new RevokedSet(opts.statedb ?? conf.worker_state_db ?? null);
    this.softShutdownTimeout = opts.softShutdownTimeout ?? conf.worker_soft_shutdown_timeout ?? 0;
    this.remoteControl = opts.remoteControl ?? conf.worker_enable_remote_control !== false;
    if (!conf.worker_disable_rate_limits) {
      for (const t of host.tasks.values()) {
        const r = parseRate(t.options.rate_limit as string | number | null | undefined);
        if (r > 0) this.rateLimiter.set(t.name, r);
      }
    }
  }

  /** True while deliveries are taken in (not after shutdown began). */
  get accepting(): boolean {
    return this.state === 'running';
  }

  /** How many tasks are running now (for tests, stats and shutdown). */
  get activeCount(): number {
    return this.running.size;
  }

  /** Results being stored / messages settled at once: two prefetch windows (at least 4 × concurrency and FINISHING_MIN). */
  finishingLimit(): number {
    return Math.max(this.prefetch * 2, this.pool.concurrency * 4, FINISHING_MIN);
  }

  countProcessed(name: string): void {
    this.processed++;
    this.totals.set(name, (this.totals.get(name) ?? 0) + 1);
  }

  requestShutdown(): void {
    this.emit('shutdownRequested');
  }

  /** The start-up banner, like Celery's. */
  banner(): string {
    const a = this.autoscaleLimits;
    const concurrency = a ? `{min=${a.min}, max=${a.max}}` : String(this.concurrency);
    return banner(this.host, { hostname: this.hostname, concurrency, poolKind: this.poolKind, prefetch: this.prefetch, queues: this.queues });
  }

  /** Connect, start consuming, and resolve once the worker is ready. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('This worker was already started; create a new one with app.worker()');
    this.state = 'running';
    const host = this.host;
    this.broker = await host.broker();
    this.backend = await host.backend();
    // Settings read for every message, taken once here (as Celery reads them at worker start).
    this.decodeOptions = { accept: host.conf.accept_content as DecodeOptions['accept'] };
    this.resultExtended = host.conf.result_extended === true;
    if (!host.conf.worker_disable_rate_limits) {
      // Fails the start (before any child is spawned) when global_rate_limit has no shared store.
      await this.globalRateLimiter.start(GlobalRateLimiter.limitsOf(host.tasks.values()), (names) => openSharedBuckets(this.broker, this.backend, names));
    }
    if (this.poolKind !== 'async') {
      // Loaded only for these pools: the async pool never needs worker threads or child processes.
      const { ChildExecutor } = await import('./child-executor.js');
      this.executor = new ChildExecutor({
        kind: this.poolKind, module: this.childModule!, size: this.pool.concurrency, brokerUrl: host.brokerUrl, backendUrl: host.backendUrl,
        logger: this.logger, ...this.childLimits,
      });
    }
    await this.executor.start();
    if (this.remoteControl) {
      const { WorkerControl } = await import('../control/worker-control.js');
      const control = new WorkerControl(this.broker, new WorkerControlTarget(this), this.logger);
      await control.start();
      this.control = control;
    }
    const strategy = new Strategy(this);
    this.consumer = await this.broker.consume(this.queues, strategy.onDelivery, { prefetch: this.prefetch });
    if (this.autoscaleLimits) {
      this.autoscaler = new Autoscaler(this.autoscaleLimits, this.pool, this.executor, this.logger);
      this.autoscaler.start();
    }
    this.logger.info(`${this.hostname} ready.`);
    this.emit('workerReady', this);
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

  private async shutdown(opts: { cold?: boolean; timeout?: number }): Promise<void> {
    if (this.state === 'new') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopping';
    if (opts.cold) this.coldRequested = true;
    this.logger.info(`${opts.cold ? 'Cold' : 'Warm'} shutdown (${this.hostname})`);
    this.autoscaler?.stop();
    await this.consumer?.stop().catch(() => undefined);
    await this.control?.stop();
    this.eta.clear();
    this.rateLimiter.clear();
    await this.globalRateLimiter.close();
    this.pool.drain();
    await this.waitForRunning(opts.timeout);
    if (this.running.size > 0) {
      this.logger.warning(`Terminating ${this.running.size} running task(s)`);
      for (const r of [...this.running]) this.executor.kill(r.key, new PoolClosed('cold shutdown'));
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
    this.emit('workerShutdown', this);
  }

  /** Until running tasks end, `timeout` ms pass, or a cold shutdown's worker_soft_shutdown_timeout runs out. */
  private async waitForRunning(timeout: number | undefined): Promise<void> {
    const waiting = this.pool.onNoneRunning();
    const timers: NodeJS.Timeout[] = [];
    const after = (ms: number) => new Promise<void>((r) => timers.push(setTimeout(r, ms)));
    const cold = new Promise<void>((r) => {
      this.coldNow = r;
      if (this.coldRequested) r();
    });
    const limits: Promise<unknown>[] = [waiting];
    if (timeout) limits.push(after(timeout));
    // A cold shutdown first gives running tasks worker_soft_shutdown_timeout seconds (Celery 5.5's soft shutdown).
    limits.push(cold.then(() => {
      if (this.running.size === 0) return;
      const grace = this.softShutdownTimeout;
      if (grace > 0) this.logger.warning(`Cold shutdown: giving ${this.running.size} running task(s) ${grace}s (worker_soft_shutdown_timeout)`);
      return Promise.race([waiting, after(grace * 1000)]);
    }));
    await Promise.race(limits);
    timers.forEach(clearTimeout);
  }
}
