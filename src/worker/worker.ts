// The worker: its options, banner and lifecycle. What runs once it has started (strategy, requests,
// pool, executors, remote control) is runtime.ts, loaded with a dynamic import by start(), so the app
// and a process that only publishes never load it.
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { createLogger, parseLogLevel, type Logger, type LogLevel } from '../app/log.js';
import type { WorkerHost } from './host.js';
import { banner } from './banner.js';
import type { AsyncPool } from './pool.js';
import type { Executor, PoolKind } from './executor.js';
import type { RevokedSet } from './revoked.js';
import type { RateLimiter } from './rate-limit.js';
import type { GlobalRateLimiter } from './global-rate-limit.js';
import type { EtaSchedule } from './eta.js';
import type { AutoscaleLimits } from './autoscale.js';
import type { WorkerRuntime } from './runtime.js';

export type { TaskEvent } from './request.js';

const POOL_KINDS: readonly PoolKind[] = ['async', 'thread', 'process'];

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

/** The options with the app's settings filled in, checked once (what the runtime is started with). */
export interface WorkerConfig {
  hostname: string;
  queues: string[];
  logger: Logger;
  concurrency: number;
  prefetch: number;
  poolKind: PoolKind;
  autoscale: AutoscaleLimits | undefined;
  childModule: string | undefined;
  maxTasksPerChild: number | null | undefined;
  maxMemoryPerChild: number | null | undefined;
  statedb: string | null;
  softShutdownTimeout: number;
  remoteControl: boolean;
}

export class Worker extends EventEmitter {
  readonly hostname: string;
  readonly queues: string[];
  readonly concurrency: number;
  readonly prefetchMultiplier: number;
  readonly prefetch: number;
  readonly logger: Logger;
  readonly poolKind: PoolKind;
  private readonly config: WorkerConfig;
  private started: WorkerRuntime | undefined;
  private state: 'new' | 'starting' | 'running' | 'stopped' = 'new';
  private closing: Promise<void> | undefined;

  constructor(readonly host: WorkerHost, opts: WorkerOptions = {}) {
    super();
    const conf = host.conf;
    this.hostname = opts.hostname ?? `celery@${os.hostname()}`;
    this.queues = opts.queues?.length ? opts.queues : [conf.task_default_queue];
    let concurrency = Math.max(1, opts.concurrency ?? conf.worker_concurrency ?? 10);
    this.prefetchMultiplier = opts.prefetchMultiplier ?? conf.worker_prefetch_multiplier ?? 4;
    this.logger = opts.logger ?? (opts.loglevel ? createLogger(parseLogLevel(String(opts.loglevel))) : host.logger);
    const kind = String(opts.pool ?? conf.worker_pool ?? 'async');
    if (!POOL_KINDS.includes(kind as PoolKind)) throw new Error(`Unknown pool '${kind}': use one of ${POOL_KINDS.join(', ')} (-P/--pool, worker_pool)`);
    this.poolKind = kind as PoolKind;
    let autoscale: AutoscaleLimits | undefined;
    if (opts.autoscale) {
      const [max, min] = opts.autoscale;
      if (!(max >= 1) || !(min >= 1) || min > max) throw new Error(`autoscale must be max,min with 1 <= min <= max, got ${opts.autoscale.join(',')}`);
      concurrency = max;
      autoscale = { max, min, keepaliveMs: (opts.autoscaleKeepalive ?? Number(process.env.AUTOSCALE_KEEPALIVE ?? 5)) * 1000 };
    }
    this.concurrency = concurrency;
    this.prefetch = this.prefetchMultiplier > 0 ? concurrency * this.prefetchMultiplier : 0;
    const childModule = opts.module ?? (conf.worker_app_module as string | undefined);
    if (this.poolKind !== 'async' && !childModule) {
      throw new Error(`The ${this.poolKind} pool runs tasks in ${this.poolKind === 'thread' ? 'worker threads' : 'child processes'} that import your app module: pass { module: '/path/to/app.ts' } to app.worker() (the CLI passes -A).`);
    }
    this.config = {
      hostname: this.hostname, queues: this.queues, logger: this.logger, concurrency, prefetch: this.prefetch, poolKind: this.poolKind, autoscale, childModule,
      maxTasksPerChild: opts.maxTasksPerChild ?? conf.worker_max_tasks_per_child, maxMemoryPerChild: opts.maxMemoryPerChild ?? conf.worker_max_memory_per_child,
      statedb: opts.statedb ?? conf.worker_state_db ?? null, softShutdownTimeout: opts.softShutdownTimeout ?? conf.worker_soft_shutdown_timeout ?? 0,
      remoteControl: opts.remoteControl ?? conf.worker_enable_remote_control !== false,
    };
  }

  /** @internal What runs once started (tests reach the pool, executor and requests through it). */
  get runtime(): WorkerRuntime {
    if (!this.started) throw new Error(`Worker ${this.hostname} has not been started: await worker.start() first`);
    return this.started;
  }

  get pool(): AsyncPool {
    return this.runtime.pool;
  }

  get executor(): Executor {
    return this.runtime.executor;
  }

  get revoked(): RevokedSet {
    return this.runtime.revoked;
  }

  get rateLimiter(): RateLimiter {
    return this.runtime.rateLimiter;
  }

  get globalRateLimiter(): GlobalRateLimiter {
    return this.runtime.globalRateLimiter;
  }

  /** ETA messages held until due. */
  get eta(): EtaSchedule {
    return this.runtime.eta;
  }

  /** Tasks whose handler returned (stats). */
  get processed(): number {
    return this.started?.processed ?? 0;
  }

  /** How many tasks are running now (for tests, stats and shutdown). */
  get activeCount(): number {
    return this.started?.running.size ?? 0;
  }

  /** The start-up banner, like Celery's. */
  banner(): string {
    const a = this.config.autoscale;
    const concurrency = a ? `{min=${a.min}, max=${a.max}}` : String(this.concurrency);
    return banner(this.host, { hostname: this.hostname, concurrency, poolKind: this.poolKind, prefetch: this.prefetch, queues: this.queues, debug: this.logger.isEnabled('debug') });
  }

  /** Connect, start consuming, and resolve once the worker is ready. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('This worker was already started; create a new one with app.worker()');
    this.state = 'starting';
    const { WorkerRuntime } = await import('./runtime.js');
    this.started = new WorkerRuntime(this.host, this.config, this);
    await this.started.start();
    if (this.state !== 'starting') return; // closed while starting
    this.state = 'running';
    this.logger.info(`${this.hostname} ready.`);
    this.emit('workerReady', this);
  }

  /**
   * Warm shutdown: stop fetching, let running tasks finish, put unstarted and ETA-held messages
   * back on their queues. `cold` stops running tasks after `softShutdownTimeout` seconds (0: at once);
   * with acks_late their messages are restored too.
   */
  close(opts: { cold?: boolean; timeout?: number } = {}): Promise<void> {
    if (opts.cold && this.closing) this.started?.goCold();
    return (this.closing ??= this.shutdown(opts));
  }

  private async shutdown(opts: { cold?: boolean; timeout?: number }): Promise<void> {
    const runtime = this.started;
    this.state = 'stopped';
    if (!runtime) return;
    this.logger.info(`${opts.cold ? 'Cold' : 'Warm'} shutdown (${this.hostname})`);
    await runtime.shutdown(opts);
    this.emit('workerShutdown', this);
  }
}
