// The worker's answers to remote control (revoke, rate_limit, stats, active, add_consumer, pool_grow,
// enable_events, …): what control/commands.ts runs on this worker. Replies and refusals are Celery's.
import type { ResultMeta } from '../backends/types.js';
import type { ConsumerSpec, ControlledWorker } from '../control/commands.js';
import type { OkReply, QueueInfo, ScheduledInfo, TaskInfo, WorkerStats } from '../control/replies.js';
import type { EventDispatcher } from '../events/dispatcher.js';
import { TaskRevokedError } from '../app/exceptions.js';
import type { Executor, PoolKind } from './executor.js';
import type { AsyncPool } from './pool.js';
import type { EtaSchedule } from './eta.js';
import type { RateLimiter } from './rate-limit.js';
import { parseRate } from './rate-limit.js';
import { terminateSignal } from './revoked.js';
import type { Autoscaler, AutoscaleLimits } from './autoscale.js';
import { Request, type RequestOwner } from './request.js';
import { queueInfo, workerConf, workerReport, workerStats } from './worker-info.js';

/** Most pool slots a remote command may ask for: thread and process pools start one child per slot. */
export const MAX_POOL_SLOTS: Readonly<Record<PoolKind, number>> = { async: 10_000, thread: 256, process: 256 };

/** add_consumer bounds: AMQP's longest queue name, and the most queues one worker consumes from. */
const MAX_QUEUE_NAME = 255;
const MAX_QUEUES = 1000;

/** Celery's timer priority for ETA entries (inspect scheduled shows it). */
const ETA_PRIORITY = 6;

/** The worker as remote control sees it. */
export interface ControlSubject extends RequestOwner {
  readonly poolKind: PoolKind;
  readonly prefetch: number;
  readonly pool: AsyncPool;
  readonly eta: EtaSchedule;
  readonly rateLimiter: RateLimiter;
  readonly totals: Map<string, number>;
  readonly startedAt: number;
  readonly autoscaleLimits: AutoscaleLimits | undefined;
  readonly autoscaler: Autoscaler | undefined;
  readonly maxTasksPerChild: number | null | undefined;
  readonly executor: Executor;
  /** The queues to consume, with how add_consumer declared them. */
  readonly queueSpecs: ReadonlyMap<string, ConsumerSpec>;
  /** The queues the consumer takes from now (queueSpecs once a change is applied). */
  readonly consumed: readonly string[];
  /** The event dispatcher (null when the transport has no event exchange). */
  readonly eventer: EventDispatcher | null;
  requestShutdown(): void;
  /** Consume also from (add) or no longer from (cancel) a queue; applied in order, soon after. */
  changeQueues(change: { add: string; spec: ConsumerSpec } | { cancel: string }): void;
  /** Run `n` tasks at once from now on (pool_grow / pool_shrink / autoscale); prefetch follows `prefetchSlots` (default n). */
  resizePool(n: number, prefetchSlots?: number): void;
  /** enable_events / disable_events. */
  setTaskEvents(on: boolean): boolean;
  /** A worker-heartbeat event now. */
  sendHeartbeat(): void;
}

const ok = (value: string): OkReply => ({ ok: value });
const nok = (value: string): OkReply => ({ error: value });

export class WorkerControlTarget implements ControlledWorker {
  constructor(private readonly w: ControlSubject) {}

  get hostname(): string {
    return this.w.hostname;
  }

  /** Revoke: remember, drop held ETA messages (REVOKED), stop running ones with terminate, else store REVOKED. */
  async revoke(ids: string[], opts: { terminate: boolean; signal: string }): Promise<{ ok: string }> {
    const w = this.w;
    for (const id of ids) w.revoked.add(id);
    const { signal, known } = terminateSignal(opts.signal);
    if (opts.terminate && !known) w.logger.warning(`revoke: unknown signal ${JSON.stringify(opts.signal)}; using SIGTERM`);
    for (const held of w.eta.take(new Set(ids))) await held.onRevoked('revoked');
    const terminated: string[] = [];
    for (const id of ids) {
      if (opts.terminate) {
        for (const r of w.running) {
          if (r.id !== id) continue;
          w.logger.info(`Terminating ${r.taskName}[${id}] (${w.poolKind === 'process' ? signal : `${signal} ignored by the ${w.poolKind} pool`})`);
          if (w.executor.kill(r.key, new TaskRevokedError('terminated'), signal)) terminated.push(id);
        }
      } else if (w.backend && ![...w.running].some((r) => r.id === id)) {
        await this.markRevoked(id);
      }
    }
    w.logger.info(`Tasks flagged as revoked: ${ids.join(', ')}`);
    if (opts.terminate) return { ok: terminated.length ? `terminate: ${terminated.join(', ')}` : 'terminate: tasks unknown' };
    return { ok: `tasks {${ids.map((i) => `'${i}'`).join(', ')}} flagged as revoked` };
  }

  /** Celery >= 5.6.2 marks the task REVOKED at once; a task that already finished keeps its result. */
  private async markRevoked(id: string): Promise<void> {
    const backend = this.w.backend!;
    let cur: ResultMeta | null = null;
    const still = 'The worker still discards the task if it arrives, but its result stays as it was: check that the result backend answers (result_backend) and revoke again to mark it.';
    try {
      cur = await backend.get(id);
    } catch (err) {
      this.w.logger.error(`revoke: could not read the state of task ${id} to mark it REVOKED: ${(err as Error).message}. ${still}`);
      return;
    }
    if (!cur || !['PENDING', 'RETRY', 'STARTED', 'RECEIVED'].includes(cur.status)) return;
    const exc = { exc_type: 'TaskRevokedError', exc_message: ['revoked'], exc_module: 'celery.exceptions' };
    const meta = { status: 'REVOKED', result: exc, traceback: null, children: null, date_done: new Date().toISOString().replace('Z', '+00:00'), task_id: id } as ResultMeta;
    try {
      await backend.store(meta, {});
    } catch (err) {
      this.w.logger.error(`revoke: could not store REVOKED for task ${id}: ${(err as Error).message}. ${still}`);
    }
  }

  setRateLimit(name: string, rate: string | number | null): OkReply {
    let perSecond: number;
    try {
      perSecond = parseRate(rate);
    } catch (err) {
      return nok(`Invalid rate limit string: ${(err as Error).message}`);
    }
    if (!this.w.host.tasks.has(name)) {
      this.w.logger.error(`Rate limit attempt for unknown task ${name}`);
      return nok('unknown task');
    }
    this.w.rateLimiter.set(name, perSecond);
    if (!perSecond) {
      this.w.logger.info(`Rate limits disabled for tasks of type ${name}`);
      return ok('rate limit disabled successfully');
    }
    this.w.logger.info(`New rate limit for tasks of type ${name}: ${rate}.`);
    return ok('new rate limit set successfully');
  }

  setTimeLimit(name: string, soft: number | null, hard: number | null): OkReply {
    if (!this.w.host.tasks.has(name)) {
      this.w.logger.error(`Change time limit attempt for unknown task ${name}`);
      return nok('unknown task');
    }
    this.w.timeLimits.set(name, { soft, hard });
    this.w.logger.info(`New time limits for tasks of type ${name}: soft=${soft} hard=${hard}`);
    return ok('time limits set successfully');
  }

  shutdown(): void {
    this.w.logger.warning('Got shutdown from remote');
    this.w.requestShutdown();
  }

  stats(): WorkerStats {
    const w = this.w;
    return workerStats({
      totals: w.totals, startedAt: w.startedAt, poolKind: w.poolKind, poolSize: w.pool.concurrency, pids: w.executor.pids,
      maxTasksPerChild: w.maxTasksPerChild, prefetch: w.prefetch, autoscale: w.autoscaleLimits, brokerUrl: w.host.brokerUrl, conf: w.host.conf,
    });
  }

  /** Celery's Request.info(): `safe` gives the arguments as their repr strings. */
  private info(r: Request, safe: boolean): TaskInfo {
    const { fields: f, delivery: d } = r;
    return {
      id: r.id, name: r.taskName, args: safe ? f.argsrepr : r.args, kwargs: safe ? f.kwargsrepr : r.kwargs, type: r.taskName,
      hostname: this.w.hostname, time_start: r.timeStart ? r.timeStart / 1000 : null, acknowledged: r.acknowledged,
      delivery_info: { exchange: d.exchange, routing_key: d.routingKey, priority: f.priority, redelivered: d.redelivered },
      worker_pid: r.timeStart ? process.pid : null,
    };
  }

  active(safe: boolean): TaskInfo[] {
    return [...this.w.running].map((r) => this.info(r, safe));
  }

  /** Received and waiting for a pool slot (Celery's reserved minus active). */
  private waiting(): Request[] {
    return this.w.pool.waitingJobs.filter((j): j is Request => j instanceof Request);
  }

  reserved(safe: boolean): TaskInfo[] {
    return this.waiting().map((r) => this.info(r, safe));
  }

  scheduled(safe: boolean): ScheduledInfo[] {
    return this.w.eta.held().map((r) => ({ eta: r.fields.eta ? r.fields.eta.toISOString() : null, priority: ETA_PRIORITY, request: this.info(r, safe) }));
  }

  queryTask(ids: string[]): Record<string, [string, TaskInfo]> {
    const wanted = new Set(ids);
    const out: Record<string, [string, TaskInfo]> = {};
    for (const r of this.w.running) if (wanted.has(r.id)) out[r.id] = ['active', this.info(r, false)];
    for (const r of this.waiting()) if (wanted.has(r.id) && !out[r.id]) out[r.id] = ['reserved', this.info(r, false)];
    return out;
  }

  /** Task names (not celery.* unless builtins); with attribute names, as "name [rate_limit=10/s]". */
  registered(infoItems: string[], builtins: boolean): string[] {
    const items = infoItems.length ? infoItems : ['exchange', 'routing_key', 'rate_limit'];
    const out: string[] = [];
    for (const name of [...this.w.host.tasks.keys()].sort()) {
      if (!builtins && name.startsWith('celery.')) continue;
      const options = this.w.host.tasks.get(name)!.options;
      const fields = items.filter((k) => Object.hasOwn(options, k) && options[k] != null).map((k) => `${k}=${String(options[k])}`);
      out.push(fields.length ? `${name} [${fields.join(' ')}]` : name);
    }
    return out;
  }

  revokedIds(): string[] {
    return this.w.revoked.list();
  }

  revokedEntries(): Record<string, number> {
    return this.w.revoked.entries();
  }

  mergeRevoked(entries: unknown): void {
    this.w.revoked.merge(entries);
  }

  activeQueues(): QueueInfo[] {
    return this.w.consumed.map((q) => queueInfo(q, this.w.queueSpecs.get(q), this.w.host.conf));
  }

  conf(withDefaults: boolean): Record<string, unknown> {
    return workerConf(this.w.host.conf, withDefaults);
  }

  report(): OkReply {
    return ok(workerReport(this.w.host.conf, this.w.host.brokerUrl, this.w.host.backendUrl));
  }

  addConsumer(queue: string, spec: ConsumerSpec): OkReply {
    if (queue.length > MAX_QUEUE_NAME) return nok(`add_consumer: a queue name is at most ${MAX_QUEUE_NAME} characters (AMQP's limit)`);
    if (!this.w.queueSpecs.has(queue) && this.w.queueSpecs.size >= MAX_QUEUES) return nok(`add_consumer: this worker consumes from ${MAX_QUEUES} queues already`);
    this.w.changeQueues({ add: queue, spec });
    return ok(`add consumer ${queue}`);
  }

  cancelConsumer(queue: string): OkReply {
    this.w.changeQueues({ cancel: queue });
    return ok(`no longer consuming from ${queue}`);
  }

  poolGrow(n: number): OkReply {
    if (this.w.autoscaler) return nok('pool_grow is not supported with autoscale. Adjust autoscale range instead.');
    const size = this.w.pool.concurrency + n;
    const max = MAX_POOL_SLOTS[this.w.poolKind];
    if (size > max) return nok(`pool_grow: ${size} slots is more than the ${max} a ${this.w.poolKind} pool may have`);
    this.w.resizePool(size);
    return ok('pool will grow');
  }

  poolShrink(n: number): OkReply {
    if (this.w.autoscaler) return nok('pool_shrink is not supported with autoscale. Adjust autoscale range instead.');
    const size = this.w.pool.concurrency - n;
    if (size < 1) return nok(`pool_shrink: the pool has ${this.w.pool.concurrency} slot(s) and keeps at least 1`);
    this.w.resizePool(size);
    return ok('pool will shrink');
  }

  autoscale(max: number | null, min: number | null): OkReply {
    const a = this.w.autoscaler;
    if (!a) return nok('Autoscale not enabled');
    const newMax = max ?? a.limits.max;
    const newMin = min ?? a.limits.min;
    const cap = MAX_POOL_SLOTS[this.w.poolKind];
    if (newMin < 1 || newMin > newMax || newMax > cap) return nok(`autoscale: max and min must satisfy 1 <= min <= max <= ${cap}, got max=${newMax} min=${newMin}`);
    a.update(newMax, newMin);
    this.w.resizePool(Math.min(Math.max(this.w.pool.concurrency, newMin), newMax), newMax);
    return ok(`autoscale now max=${newMax} min=${newMin}`);
  }

  enableEvents(): OkReply {
    if (!this.w.eventer) return nok('event dispatcher unavailable');
    if (!this.w.setTaskEvents(true)) return ok('task events already enabled');
    this.w.logger.info('Events of group {task} enabled by remote.');
    return ok('task events enabled');
  }

  disableEvents(): OkReply {
    if (!this.w.eventer) return nok('event dispatcher unavailable');
    if (!this.w.setTaskEvents(false)) return ok('task events already disabled');
    this.w.logger.info('Events of group {task} disabled by remote.');
    return ok('task events disabled');
  }

  heartbeat(): null {
    this.w.logger.debug('Heartbeat requested by remote.');
    this.w.sendHeartbeat();
    return null;
  }
}
