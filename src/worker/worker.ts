// The worker: banner, lifecycle and its events (options are checked in config.ts). What runs once it has
// started (strategy, requests, pool, executors, remote control) is runtime.ts, loaded with a dynamic
// import by start(), so the app and a process that only publishes never load it.
import { EventEmitter } from 'node:events';
import type { Logger } from '../app/log.js';
import { isThenable } from '../app/context.js';
import type { WorkerHost } from './host.js';
import { banner } from './banner.js';
import { holdProcess } from '../app/keep-alive.js';
import type { AsyncPool } from './pool.js';
import type { Executor, PoolKind } from './executor.js';
import type { RevokedSet } from './revoked.js';
import type { RateLimiter } from './rate-limit.js';
import type { GlobalRateLimiter } from './global-rate-limit.js';
import type { EtaSchedule } from './eta.js';
import type { WorkerRuntime } from './runtime.js';
import { workerConfig, type WorkerConfig, type WorkerOptions } from './config.js';

export type { TaskEvent } from './request.js';
export type { WorkerConfig, WorkerOptions } from './config.js';

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
  private releaseProcess: (() => void) | undefined;
  private failed: Error | undefined;

  constructor(readonly host: WorkerHost, opts: WorkerOptions = {}) {
    super();
    const config = (this.config = workerConfig(host, opts));
    this.hostname = config.hostname;
    this.queues = config.queues;
    this.concurrency = config.concurrency;
    this.prefetchMultiplier = config.prefetchMultiplier;
    this.prefetch = config.prefetch;
    this.logger = config.logger;
    this.poolKind = config.poolKind;
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
    return banner(this.host, { hostname: this.hostname, concurrency, poolKind: this.poolKind, prefetch: this.prefetch, queues: this.queues, debug: this.logger.isEnabled('debug'), taskEvents: this.config.taskEvents });
  }

  /** Connect, start consuming, and resolve once the worker is ready. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('This worker was already started; create a new one with app.worker()');
    this.state = 'starting';
    // A running worker keeps its process alive, though its idle connections do not (app/keep-alive.ts).
    this.releaseProcess = holdProcess();
    try {
      const { WorkerRuntime } = await import('./runtime.js');
      this.started = new WorkerRuntime(this.host, this.config, this, (err) => this.fail(err));
      await this.started.start();
    } catch (err) {
      this.releaseProcess();
      throw err;
    }
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

  /** Why the worker stopped by itself (its consumer gave up), or undefined: a process exits non-zero after one. */
  get failure(): Error | undefined {
    return this.failed;
  }

  /**
   * Listeners run one after another, and one that throws, or returns a promise that rejects, is logged
   * and passed over (as Celery's signals treat their receivers): a listener never crashes the worker,
   * stops a task or leaves its message unsettled. 'error' keeps EventEmitter's meaning.
   */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'error') return super.emit(event, ...args);
    const listeners = this.rawListeners(event);
    for (const listener of listeners) {
      try {
        const returned: unknown = Reflect.apply(listener, this, args);
        if (isThenable(returned)) returned.then(undefined, (err: unknown) => this.listenerFailed(event, args[0], err));
      } catch (err) {
        this.listenerFailed(event, args[0], err);
      }
    }
    return listeners.length > 0;
  }

  private listenerFailed(event: string | symbol, payload: unknown, err: unknown): void {
    const t = payload as { id?: unknown; name?: unknown } | null;
    const task = t && typeof t === 'object' && typeof t.id === 'string' ? ` for ${String(t.name)}[${t.id}]` : '';
    const why = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    this.logger.error(`A '${String(event)}' listener threw${task}: ${why}. The worker carried on as if the listener had returned; catch errors inside the listener.`);
  }

  /** The consumer gave up (broker_connection_retry, broker_connection_max_retries): stop, then 'workerFailed'. */
  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.logger.critical(`Unrecoverable error: ${err.message}`);
    void this.close()
      .catch((e: unknown) => this.logger.error(`Shutdown after the failure did not complete: ${(e as Error).message}`))
      .then(() => this.emit('workerFailed', err));
  }

  private async shutdown(opts: { cold?: boolean; timeout?: number }): Promise<void> {
    const runtime = this.started;
    this.state = 'stopped';
    if (!runtime) return;
    this.logger.info(`${opts.cold ? 'Cold' : 'Warm'} shutdown (${this.hostname})`);
    await runtime.shutdown(opts);
    this.releaseProcess?.();
    this.emit('workerShutdown', this);
  }
}

