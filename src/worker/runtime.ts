// A started worker: consume through the strategy, run requests in a pool, store and settle, and shut
// down cleanly. Loaded by worker.ts with a dynamic import when a worker starts, so a process that only
// publishes never loads it.
import type { EventEmitter } from 'node:events';
import type { Broker, Consumer } from '../brokers/types.js';
import type { ResultBackend } from '../backends/types.js';
import type { DecodeOptions } from '../protocol/message.js';
import type { Logger } from '../app/log.js';
import type { WorkerHost } from './host.js';
import type { WorkerConfig } from './worker.js';
import { AsyncPool } from './pool.js';
import { Completions } from './completion.js';
import { InlineExecutor, PoolClosed, type Executor, type PoolKind } from './executor.js';
import { parseRate, RateLimiter } from './rate-limit.js';
import { GlobalRateLimiter, openSharedBuckets } from './global-rate-limit.js';
import { RevokedSet } from './revoked.js';
import { TaskOptionsCache } from './task-options.js';
import type { ControlTimeLimits } from './time-limits.js';
import { EtaSchedule } from './eta.js';
import { decodeOptionsFor } from './meta.js';
import { Strategy, type StrategyOwner } from './strategy.js';
import type { Request } from './request.js';
import { Autoscaler, type AutoscaleLimits } from './autoscale.js';
import { WorkerControlTarget, type ControlSubject } from './remote-control.js';
import type { ConsumerSpec } from '../control/commands.js';
import { EventDispatcher } from '../events/dispatcher.js';
import { Heart, softwareInfo } from '../events/heart.js';
import { VERSION } from './banner.js';
import { WorkerCanvas } from './canvas.js';

/** Results being stored / messages being settled after their handler returned, at least this many at once. */
const FINISHING_MIN = 64;
/** After the consumer gave up, how long shutdown still waits for acks and result stores. */
const CONSUMER_LOST_SETTLE_MS = 5000;

export class WorkerRuntime implements StrategyOwner, ControlSubject {
  readonly hostname: string;
  readonly logger: Logger;
  readonly poolKind: PoolKind;
  readonly concurrency: number;
  /** The prefetch window now (pool_grow, pool_shrink and autoscale move it). */
  prefetch: number;
  readonly autoscaleLimits: AutoscaleLimits | undefined;
  readonly maxTasksPerChild: number | null | undefined;
  readonly pool: AsyncPool;
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
  readonly startedAt = Date.now();
  processed = 0;
  broker!: Broker;
  backend: ResultBackend | null = null;
  /** Callbacks, chains, chords and errbacks after a task's outcome (set once the backend is known). */
  canvas!: WorkerCanvas;
  decodeOptions: DecodeOptions = {};
  resultExtended = false;
  /** Celery events (null when the transport has none, or events and heartbeats are both off). */
  eventer: EventDispatcher | null = null;
  /** The dispatcher while task events are on (-E, enable_events), else null: the per-task check. */
  taskEvents: EventDispatcher | null = null;
  /** The queues consumed now, with how add_consumer declared them (undefined: by name). */
  readonly queueSpecs = new Map<string, ConsumerSpec>();
  autoscaler: Autoscaler | undefined;
  private heart: Heart | undefined;
  private consumer: Consumer | undefined;
  /** Consumers replaced by add_consumer / cancel_consumer: they fetch no more, their deliveries settle as usual. */
  private readonly retired = new Set<Consumer>();
  private strategy: Strategy | undefined;
  private queueChange: Promise<void> = Promise.resolve();
  /** The queues the current consumer takes from (add/cancel_consumer change them soon after queueSpecs). */
  consumed: string[] = [];
  private retiredTimer: NodeJS.Timeout | undefined;
  private control: { stop(): Promise<void> } | undefined;
  private state: 'running' | 'stopping' | 'stopped' = 'running';
  private coldRequested = false;
  private coldNow: (() => void) | undefined;
  /** The consumer gave up: the broker is not answering, so shutdown does not wait long on it. */
  private consumerLost = false;

  constructor(
    readonly host: WorkerHost,
    private readonly config: WorkerConfig,
    readonly events: EventEmitter,
    /** The consumer gave up: the worker shuts down and exits non-zero. */
    private readonly onFailure: (err: Error) => void,
  ) {
    const conf = host.conf;
    this.hostname = config.hostname;
    this.logger = config.logger;
    this.poolKind = config.poolKind;
    this.concurrency = config.concurrency;
    this.prefetch = config.prefetch;
    this.autoscaleLimits = config.autoscale;
    this.maxTasksPerChild = config.maxTasksPerChild;
    for (const q of config.queues) this.queueSpecs.set(q, { exchange: null, exchangeType: 'direct', routingKey: null });
    this.completions = new Completions(this.logger);
    this.globalRateLimiter = new GlobalRateLimiter(this.logger);
    this.taskOptions = new TaskOptionsCache(conf);
    this.pool = new AsyncPool(config.autoscale ? config.autoscale.min : config.concurrency);
    this.executor = new InlineExecutor(host.tasks);
    this.revoked = new RevokedSet(config.statedb, this.logger);
    if (!conf.worker_disable_rate_limits) {
      for (const t of host.tasks.values()) {
        const r = parseRate((t.options.rate_limit ?? conf.task_default_rate_limit) as string | number | null | undefined);
        if (r > 0) this.rateLimiter.set(t.name, r);
      }
    }
  }

  /** True while deliveries are taken in (not after shutdown began). */
  get accepting(): boolean {
    return this.state === 'running';
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
    this.events.emit('shutdownRequested');
  }

  /** Connect, start the executor and remote control, then consume. */
  async start(): Promise<void> {
    const { host, config } = this;
    this.broker = await host.broker({ retryOnStartup: true });
    this.backend = await host.backend();
    this.canvas = new WorkerCanvas(host, this.backend, this.logger);
    // Settings read for every message, taken once here (as Celery reads them at worker start).
    this.decodeOptions = decodeOptionsFor(host);
    this.resultExtended = host.conf.result_extended === true;
    if (!host.conf.worker_disable_rate_limits) {
      // Fails the start (before any child is spawned) when global_rate_limit has no shared store.
      await this.globalRateLimiter.start(GlobalRateLimiter.limitsOf(host.tasks.values()), (names) => openSharedBuckets(this.broker, this.backend, names));
    }
    if (this.poolKind !== 'async') {
      // Loaded only for these pools: the async pool never needs worker threads or child processes.
      const { ChildExecutor } = await import('./child-executor.js');
      this.executor = new ChildExecutor({
        kind: this.poolKind, module: config.childModule!, size: this.pool.concurrency, brokerUrl: host.brokerUrl, backendUrl: host.backendUrl,
        logger: this.logger, maxTasksPerChild: config.maxTasksPerChild, maxMemoryPerChild: config.maxMemoryPerChild,
      });
    }
    await this.executor.start();
    if ((config.taskEvents || config.heartbeat) && this.broker.publishEvent) {
      const groups = config.taskEvents ? ['worker', 'task'] : ['worker'];
      this.eventer = new EventDispatcher(this.broker as Required<Pick<Broker, 'publishEvent'>>, { hostname: this.hostname, logger: this.logger, exchange: String(host.conf.event_exchange ?? 'celeryev'), groups });
      if (config.taskEvents) this.taskEvents = this.eventer;
    }
    if (config.remoteControl) {
      const { startWorkerControl } = await import('../control/worker-control.js');
      this.control = await startWorkerControl(this.broker, new WorkerControlTarget(this), this.logger, { checkNodename: config.mingle });
    }
    if (this.autoscaleLimits) this.autoscaler = new Autoscaler(this.autoscaleLimits, this.pool, this.executor, this.logger);
    this.strategy = new Strategy(this);
    this.consumer = await this.consume(config.queues);
    this.consumed = [...this.queueSpecs.keys()];
    this.autoscaler?.start();
    if (this.eventer && config.heartbeat) {
      this.heart = new Heart(this.eventer, { active: () => this.running.size, processed: () => this.processed }, softwareInfo(VERSION), config.heartbeatInterval);
      this.heart.start();
    }
  }

  /** enable_events / disable_events: false when task events were already in that state. */
  setTaskEvents(on: boolean): boolean {
    const e = this.eventer;
    if (!e || on === (this.taskEvents !== null)) return false;
    if (on) e.addGroup('task');
    else e.removeGroup('task');
    this.taskEvents = on ? e : null;
    return true;
  }

  /** The heartbeat control command: a worker-heartbeat event now (when events are sent at all). */
  sendHeartbeat(): void {
    if (this.heart) this.heart.beat('worker-heartbeat');
    else this.eventer?.send('worker-heartbeat', { freq: this.config.heartbeatInterval, active: this.running.size, processed: this.processed, loadavg: [], ...softwareInfo(VERSION) });
  }

  /** pool_grow, pool_shrink, autoscale: `n` slots, a prefetch window of `prefetchSlots` × worker_prefetch_multiplier. */
  resizePool(n: number, prefetchSlots = n): void {
    this.pool.concurrency = n;
    this.executor.resize(n);
    this.pool.pump();
    this.prefetch = prefetchSlots * this.config.prefetchMultiplier;
    this.consumer?.setPrefetch(this.prefetch);
    this.logger.info(`Pool now runs ${n} task(s) at once (prefetch ${this.prefetch || 'unlimited'})`);
  }

  /**
   * add_consumer / cancel_consumer: the set of queues changes now; then a new consumer takes the set
   * and the old one stops fetching (what it holds settles as usual, and is restored at shutdown).
   * Changes made in one burst are applied together.
   */
  changeQueues(change: { add: string; spec: ConsumerSpec } | { cancel: string }): void {
    if ('add' in change) {
      if (this.queueSpecs.has(change.add)) return;
      this.queueSpecs.set(change.add, change.spec);
      this.logger.info(`Started consuming from ${change.add}`);
    } else {
      if (!this.queueSpecs.delete(change.cancel)) return;
      this.logger.info(`Canceling queue ${change.cancel}`);
    }
    this.queueChange = this.queueChange.then(() => this.consumeQueues()).catch((err: unknown) => {
      this.logger.error(`Could not change the queues consumed to ${[...this.queueSpecs.keys()].join(', ') || '(none)'}: ${(err as Error).message}`);
    });
  }

  private async consumeQueues(): Promise<void> {
    const want = [...this.queueSpecs.keys()];
    if (!this.accepting || want.join('\n') === this.consumed.join('\n')) return;
    const old = this.consumer;
    this.consumer = want.length > 0 ? await this.consume(want) : undefined;
    this.consumed = want;
    this.consumer?.setEtaHeld(this.eta.size);
    if (old) {
      this.retired.add(old);
      await old.stop();
    }
    await this.closeIdleRetired();
  }

  /** Close the replaced consumers that hold nothing more (their connection and timers go with them). */
  private async closeIdleRetired(): Promise<void> {
    for (const c of this.retired) {
      if (c.heldCount !== 0 || !c.close) continue;
      this.retired.delete(c);
      await c.close().catch((err: unknown) => this.logger.debug(`Closing a replaced consumer: ${(err as Error).message}`));
    }
    clearTimeout(this.retiredTimer);
    if (this.retired.size > 0 && this.accepting) {
      this.retiredTimer = setTimeout(() => void (this.queueChange = this.queueChange.then(() => this.closeIdleRetired())), 5000);
      this.retiredTimer.unref();
    }
  }

  /** A consumer whose giving up stops the worker, unless add/cancel_consumer replaced it meanwhile. */
  private async consume(queues: string[]): Promise<Consumer> {
    let c: Consumer | undefined = undefined;
    const onFailure = (err: Error) => {
      if (!c || c === this.consumer) this.consumerFailed(err);
    };
    c = await this.broker.consume(queues, this.strategy!.onDelivery, { prefetch: this.prefetch, onFailure });
    return c;
  }

  /** A worker that consumes nothing must not answer ping as alive: remote control stops first. */
  private consumerFailed(err: Error): void {
    this.consumerLost = true;
    const control = this.control;
    this.control = undefined;
    void control?.stop().catch(() => undefined);
    this.onFailure(err);
  }

  /** Turn a warm shutdown in progress cold. */
  goCold(): void {
    if (this.coldRequested) return;
    this.coldRequested = true;
    this.coldNow?.();
  }

  /**
   * Warm shutdown: stop fetching, let running tasks finish, put unstarted and ETA-held messages
   * back. `cold` stops running tasks after worker_soft_shutdown_timeout (0: at once).
   */
  async shutdown(opts: { cold?: boolean; timeout?: number }): Promise<void> {
    this.state = 'stopping';
    if (opts.cold) this.coldRequested = true;
    this.autoscaler?.stop();
    clearTimeout(this.retiredTimer);
    await this.queueChange;
    await this.consumer?.stop().catch(() => undefined);
    for (const c of this.retired) await c.stop().catch(() => undefined);
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
    if (this.consumerLost) await this.settledWithin(CONSUMER_LOST_SETTLE_MS);
    else await this.completions.settled();
    let n = 0;
    for (const c of [...this.retired, ...(this.consumer ? [this.consumer] : [])]) {
      n += await c.restoreUnacked().catch((err) => {
        this.logger.error(`Could not restore unacknowledged messages: ${(err as Error).message}`);
        return 0;
      });
    }
    if (n) this.logger.info(`Restoring ${n} unacknowledged message(s)`);
    this.revoked.save();
    this.heart?.stop();
    await this.eventer?.close();
    this.state = 'stopped';
  }

  /** Acks and stores still on their way to a broker that stopped answering: wait a little, then leave them. */
  private async settledWithin(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([this.completions.settled().then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), ms)))]);
    clearTimeout(timer);
    if (late) this.logger.warning(`Stopped waiting for acknowledgements and results after ${ms / 1000}s: the broker is not answering; unacknowledged messages come back to their queue (Redis: after visibility_timeout).`);
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
      const grace = this.config.softShutdownTimeout;
      if (grace > 0) this.logger.warning(`Cold shutdown: giving ${this.running.size} running task(s) ${grace}s (worker_soft_shutdown_timeout)`);
      return Promise.race([waiting, after(grace * 1000)]);
    }));
    await Promise.race(limits);
    timers.forEach(clearTimeout);
  }
}
