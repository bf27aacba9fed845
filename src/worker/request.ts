// One task run from acceptance to settlement (Celery's worker/request.py): runs the handler, then
// settles the message exactly once through onSuccess / onFailure / onRetry / onReject / onIgnore /
// onRevoked / onTimeout / onWorkerLost. It is also what the executor runs (Job) and what a running
// task asks for retry and updateState (JobHooks), so a task run costs one object. It runs past 400
// lines because every outcome of a run settles the same object; the canvas work is in canvas.ts.
import type { EventEmitter } from 'node:events';
import type { Broker, Delivery } from '../brokers/types.js';
import type { ResultBackend, ResultMeta, TaskState } from '../backends/types.js';
import type { TaskRequest } from '../protocol/message.js';
import type { Logger } from '../app/log.js';
import type { Request as TaskView, RetryOptions } from '../app/context.js';
import { repr } from '../protocol/repr.js';
import { EncodeError } from '../protocol/errors.js';
import {
  encodeException, exceptionRepr, formatTraceback, Ignore, Reject, Retry, TaskError, TaskRevokedError, TimeLimitExceeded, WorkerLostError,
} from '../app/exceptions.js';
import type { TaskHandle, WorkerHost } from './host.js';
import type { Completions } from './completion.js';
import type { Job, JobHooks } from './job.js';
import type { RevokedSet } from './revoked.js';
import type { ResolvedOptions, TaskOptionsCache } from './task-options.js';
import { buildMeta, type MetaExtras } from './meta.js';
import { PoolClosed, type Executor } from './executor.js';
import { autoretryOptions, retryMessage } from './retry-policy.js';
import { limitsFor, runWithLimits, type ControlTimeLimits } from './time-limits.js';
import type { EventDispatcher } from '../events/dispatcher.js';
import { resultRepr } from '../events/task-fields.js';
import { hasFailureCanvas, hasSuccessCanvas, type WorkerCanvas } from './canvas.js';

/** The worker as its requests see it. */
export interface RequestOwner {
  readonly hostname: string;
  readonly logger: Logger;
  readonly host: WorkerHost;
  readonly broker: Broker;
  readonly backend: ResultBackend | null;
  readonly executor: Executor;
  readonly completions: Completions;
  readonly revoked: RevokedSet;
  readonly taskOptions: TaskOptionsCache;
  readonly timeLimits: ControlTimeLimits;
  /** Requests whose handler is running. */
  readonly running: Set<Request>;
  readonly events: EventEmitter;
  /** The event dispatcher while task events are on (-E, enable_events), else null. */
  readonly taskEvents: EventDispatcher | null;
  readonly resultExtended: boolean;
  /** The canvas hooks: callbacks, chains, chords, errbacks. */
  readonly canvas: WorkerCanvas;
  /** Most results being stored / messages settled before a pool slot waits for them. */
  finishingLimit(): number;
  /** Count a finished handler (stats). */
  countProcessed(name: string): void;
}

/** Custom header counting how often a message was requeued after its executor died (bounds poison loops). */
export const REDELIVERIES_HEADER = 'celeriac_redeliveries';

export interface TaskEvent {
  id: string;
  name: string;
  state?: string;
  result?: unknown;
  error?: unknown;
  runtime?: number;
  request?: TaskRequest;
}

export class Request implements Job, JobHooks {
  /** Set once the message is acked, rejected or requeued: it is settled exactly once. */
  acknowledged = false;
  /** Date.now() when the handler started (stats: active). */
  timeStart = 0;
  readonly taskName: string;
  private opts!: ResolvedOptions;
  private ignoreResult = false;
  private earlyAck: Promise<void> | null = null;
  private started = 0;
  private extrasCache: MetaExtras | undefined;
  private keyCache: string | undefined;
  private view: TaskView | undefined;
  /** Results of what the task applied while running (Celery's request.children), stored with its result. */
  private trail: { asTuple(): unknown }[] | undefined;

  constructor(
    private readonly w: RequestOwner,
    readonly delivery: Delivery,
    readonly fields: TaskRequest,
    readonly task: TaskHandle,
  ) {
    this.taskName = task.name;
  }

  get id(): string {
    return this.fields.id;
  }

  /** Unique per execution (task id + delivery tag): a retried task id can be running twice briefly. */
  get key(): string {
    return (this.keyCache ??= `${this.fields.id}:${this.delivery.deliveryTag}`);
  }

  get args(): unknown[] {
    return this.fields.args;
  }

  get kwargs(): Record<string, unknown> {
    return this.fields.kwargs;
  }

  /** The request a task sees (task.request), built on first read: most tasks never look. */
  get request(): TaskView {
    if (this.view) return this.view;
    const { fields: f, delivery: d } = this;
    return (this.view = {
      id: f.id, task: f.task, args: f.args, kwargs: f.kwargs, retries: f.retries, eta: f.eta,
      expires: f.expires, headers: f.headers, rootId: f.rootId, parentId: f.parentId, group: f.group,
      groupIndex: f.groupIndex, origin: f.origin, hostname: this.w.hostname, replyTo: f.replyTo,
      correlationId: f.correlationId, timelimit: f.timelimit, isEager: false,
      deliveryInfo: { exchange: d.exchange, routingKey: d.routingKey, priority: f.priority, redelivered: d.redelivered },
    });
  }

  get extras(): MetaExtras {
    return (this.extrasCache ??= { extended: this.w.resultExtended, hostname: this.w.hostname, queue: this.delivery.routingKey || this.delivery.queue });
  }

  /**
   * Run the task and settle its message (Celery's trace + on_success/on_failure). A plain handler's
   * task is done when this returns (no promise): nothing is awaited between the delivery and the
   * handler, and the pool slot frees at once.
   */
  execute(): Promise<void> | void {
    const f = this.fields;
    if (this.w.revoked.has(f.id)) return this.onRevoked('revoked');
    if (f.expires && f.expires.getTime() <= Date.now()) return this.onRevoked('expired');
    const o = (this.opts = this.w.taskOptions.of(this.task));
    this.ignoreResult = f.ignoreResult ?? o.ignoreResult;
    // Early ack (the default): acknowledged when the pool accepts the job.
    if (!o.acksLate) {
      this.acknowledged = true;
      this.earlyAck = this.w.completions.ackEarly(this.delivery, f);
    }
    if (o.trackStarted && !this.ignoreResult) {
      return this.store('STARTED', { pid: process.pid, hostname: this.w.hostname }, null).then(() => this.runHandler());
    }
    return this.runHandler();
  }

  private runHandler(): Promise<void> | void {
    const w = this.w;
    this.timeStart = Date.now();
    w.running.add(this);
    if (w.events.listenerCount('taskPrerun') > 0) w.events.emit('taskPrerun', { id: this.fields.id, name: this.fields.task, request: this.fields } satisfies TaskEvent);
    w.taskEvents?.taskStarted(this.fields.id);
    this.started = performance.now();
    const limits = limitsFor(this.fields, w.timeLimits.get(this.task.name), this.opts);
    if (limits.hard || limits.soft || !w.executor.runInline) {
      return runWithLimits(w.executor, this, limits, w.logger).then((v) => this.afterHandler(true, v), (e: unknown) => this.afterHandler(false, e));
    }
    let value: unknown;
    try {
      value = w.executor.runInline(this, this);
    } catch (error) {
      return this.afterHandler(false, error);
    }
    if (!(value instanceof Promise)) return this.afterHandler(true, value);
    return value.then((v: unknown) => this.afterHandler(true, v), (e: unknown) => this.afterHandler(false, e));
  }

  /** The handler returned or threw: count it, then store and settle (beside the next tasks where possible). */
  private afterHandler(ok: boolean, outcome: unknown): Promise<void> | void {
    const w = this.w;
    w.running.delete(this);
    const runtime = (performance.now() - this.started) / 1000;
    w.countProcessed(this.fields.task);
    const limit = w.finishingLimit();
    if (ok && this.earlyAck && this.trail === undefined && !hasSuccessCanvas(this.fields)) {
      // A success whose ack is on its way: store the result (if kept); the events follow the ack's reply.
      const succeeded = this.succeeded(outcome, runtime);
      if (this.ignoreResult || !w.backend) {
        w.completions.afterAck(this.earlyAck, succeeded);
        return;
      }
      const stored = w.completions.storeSuccess(w.backend, this.fields, buildMeta(this.fields, 'SUCCESS', outcome, null, this.extras), this.earlyAck, succeeded);
      return w.completions.inFlight > limit ? stored : undefined;
    }
    const finishing = ok ? this.onSuccess(outcome, runtime) : this.onFailure(outcome, runtime);
    // The pool slot is free once the handler has returned; beyond the limit the slot waits.
    if (w.completions.inFlight >= limit) return finishing;
    w.completions.track(finishing, this);
  }

  /** What a success reports (log line, taskSuccess, taskPostrun), or null when nobody would see it. */
  private succeeded(value: unknown, runtime: number): (() => void) | null {
    const { logger, events, taskEvents } = this.w;
    const info = logger.isEnabled('info');
    if (!info && !taskEvents && events.listenerCount('taskSuccess') === 0 && events.listenerCount('taskPostrun') === 0) return null;
    const f = this.fields;
    return () => {
      taskEvents?.taskSucceeded(f.id, resultRepr(value), runtime);
      if (info) logger.info(`Task ${f.task}[${f.id}] succeeded in ${runtime.toFixed(6)}s: ${truncate(repr(value))}`);
      this.emit('taskSuccess', 'SUCCESS', runtime, { result: value });
      this.emit('taskPostrun', 'SUCCESS', runtime, { result: value });
    };
  }

  /** acks_late or canvas success: callbacks and next chain step first (children stored), store, chord, ack, report. */
  async onSuccess(value: unknown, runtime: number): Promise<void> {
    const f = this.fields;
    const canvas = hasSuccessCanvas(f);
    const unsent = canvas ? await this.w.canvas.afterSuccess(f, value, this) : null;
    if (unsent) return this.storeFailure(unsent.error, runtime, false);
    const stored = this.ignoreResult || (await this.store('SUCCESS', value, null, this.trail?.map((r) => r.asTuple())));
    // The task ran: never run it again because the backend was away (its result is lost, and said so).
    if (!stored) this.w.logger.error(`Task ${f.task}[${f.id}] succeeded but its result could not be stored; acknowledging it anyway so it does not run twice.`);
    if (canvas && f.embed.chord) await this.w.canvas.joinChord(f, 'SUCCESS', value);
    await this.settle('ack');
    this.succeeded(value, runtime)?.();
  }

  /** The handler raised: decide between retry, reject, ignore, revoked, worker lost and failure. */
  async onFailure(raised: unknown, runtime: number): Promise<void> {
    let error = raised;
    if (error instanceof PoolClosed) {
      // Cold shutdown killed the child: leave the message to restoreUnacked (acks_late) and store nothing.
      this.w.logger.warning(`Task ${this.fields.task}[${this.fields.id}] was stopped by the cold shutdown`);
      return;
    }
    const auto = autoretryOptions(this.task.options, error, this.fields.retries);
    if (auto) error = this.retry(auto);
    if (error instanceof Retry) return this.onRetry(error, runtime);
    if (error instanceof Reject) return this.onReject(error, runtime);
    if (error instanceof Ignore) return this.onIgnore(runtime);
    if (error instanceof TaskRevokedError) return this.onRevokedWhileRunning(runtime);
    if (error instanceof WorkerLostError && this.opts.acksLate && this.opts.rejectOnWorkerLost) return this.onWorkerLost(error, runtime);
    if (error instanceof TimeLimitExceeded) return this.onTimeout(error, runtime);
    return this.storeFailure(error, runtime, false);
  }

  async onRetry(retry: Retry, runtime: number): Promise<void> {
    const f = this.fields;
    try {
      await (retry as Retry & { published?: Promise<void> }).published;
    } catch (err) {
      this.w.logger.error(`Task ${f.task}[${f.id}] could not be republished for retry: ${(err as Error).message}`);
      await this.store('FAILURE', encodeException(err), formatTraceback(err));
      await this.settle('reject');
      this.w.taskEvents?.send('task-failed', { uuid: f.id, exception: exceptionRepr(encodeException(err)), traceback: formatTraceback(err) });
      this.emit('taskFailure', 'FAILURE', runtime, { error: err });
      this.emit('taskPostrun', 'FAILURE', runtime, { error: err });
      return;
    }
    const info = encodeException(retry.exc ?? retry);
    const tb = retry.exc instanceof TaskError && retry.exc.traceback ? retry.exc.traceback : formatTraceback(retry.exc ?? retry);
    await this.store('RETRY', info, tb, [[[f.id, null], null]]);
    await this.settle('ack');
    this.w.taskEvents?.send('task-retried', { uuid: f.id, exception: exceptionRepr(info), traceback: tb });
    this.w.logger.info(`Task ${f.task}[${f.id}] retry: ${retry.message}`);
    this.emit('taskRetry', 'RETRY', runtime, { error: retry.exc });
    this.emit('taskPostrun', 'RETRY', runtime);
  }

  async onReject(reject: Reject, runtime: number): Promise<void> {
    await this.settle(reject.requeue ? 'requeue' : 'reject');
    this.w.logger.info(`Task ${this.fields.task}[${this.fields.id}] rejected${reject.requeue ? ' (requeued)' : ''}: ${reject.reason}`);
    this.emit('taskPostrun', 'REJECTED', runtime);
  }

  async onIgnore(runtime: number): Promise<void> {
    await this.settle('ack');
    this.emit('taskPostrun', 'IGNORED', runtime);
  }

  /** Revoked or expired before it ran: REVOKED stored, message acked, never run. */
  async onRevoked(reason: 'revoked' | 'expired'): Promise<void> {
    const f = this.fields;
    this.w.logger.info(reason === 'expired' ? `Task ${f.task}[${f.id}] expired; discarding it` : `Discarding revoked task: ${f.task}[${f.id}]`);
    await this.storeRevoked(reason);
    await this.settle('ack');
    this.w.taskEvents?.send('task-revoked', { uuid: f.id, terminated: false, signum: null, expired: reason === 'expired' });
    this.emit('taskRevoked', 'REVOKED');
  }

  /** revoke(terminate=True): REVOKED 'terminated', message acked (Celery's on_failure for a revoked request). */
  private async onRevokedWhileRunning(runtime: number): Promise<void> {
    const f = this.fields;
    await this.storeRevoked('terminated');
    await this.settle('ack');
    this.w.taskEvents?.send('task-revoked', { uuid: f.id, terminated: true, signum: null, expired: false });
    this.w.logger.info(`Task ${f.task}[${f.id}] terminated (revoked)`);
    this.emit('taskRevoked', 'REVOKED', runtime);
    this.emit('taskPostrun', 'REVOKED', runtime);
  }

  /** Hard time limit: FAILURE; with acks_late the message is rejected unless acks_on_failure_or_timeout. */
  async onTimeout(error: TimeLimitExceeded, runtime: number): Promise<void> {
    return this.storeFailure(error, runtime, true);
  }

  /**
   * acks_late + reject_on_worker_lost: put the message back, counting requeues in a header so a poison
   * message that keeps killing its executor ends as FAILURE (WorkerLostError) after task_max_redeliveries.
   */
  async onWorkerLost(error: WorkerLostError, runtime: number): Promise<void> {
    const { delivery: d, fields: f } = this;
    const max = this.opts.maxRedeliveries;
    const count = Number(d.message.headers[REDELIVERIES_HEADER] ?? 0);
    if (count >= max) {
      this.w.logger.error(`Task ${f.task}[${f.id}] lost its executor ${count + 1} times; giving up (task_max_redeliveries=${max})`);
      return this.storeFailure(error, runtime, false);
    }
    const message = { ...d.message, headers: { ...d.message.headers, [REDELIVERIES_HEADER]: count + 1 } };
    try {
      await this.w.host.publish(this.w.broker, message, { exchange: '', routingKey: d.queue });
      await this.settle('ack');
      this.w.logger.warning(`Task ${f.task}[${f.id}] requeued after ${error.message} (redelivery ${count + 1} of ${max})`);
    } catch (err) {
      this.w.logger.error(`Could not requeue ${f.task}[${f.id}] after ${error.message}: ${(err as Error).message}; requeueing the original`);
      await this.settle('requeue');
    }
    this.emit('taskPostrun', 'REQUEUED', runtime, { error });
  }

  private async storeFailure(error: unknown, runtime: number, timeout: boolean): Promise<void> {
    const f = this.fields;
    const info = encodeException(error);
    const tb = error instanceof TaskError && error.traceback ? error.traceback : formatTraceback(error);
    const storeResult = !this.ignoreResult || this.opts.storeErrors;
    const canvas = hasFailureCanvas(f);
    if (storeResult) {
      // The rest of the chain is stored failed in the same turn, so in the same backend write: nobody
      // sees this step failed while the chain's last result is still pending.
      const stored = this.store('FAILURE', info, tb);
      const chain = canvas ? this.w.canvas.failChain(f, info, tb) : undefined;
      await stored;
      await chain;
    }
    if (canvas) await this.w.canvas.afterFailure(f, this, info, tb, storeResult);
    // A lost worker with reject_on_worker_lost false is acked, as Celery does.
    const ack = this.opts.acksOnFailureOrTimeout || (error instanceof WorkerLostError && !timeout);
    await this.settle(ack ? 'ack' : 'reject');
    this.w.taskEvents?.send('task-failed', { uuid: f.id, exception: exceptionRepr(info), traceback: tb });
    this.w.logger.error(`Task ${f.task}[${f.id}] raised unexpected: ${exceptionRepr(info)}\n${tb}`);
    this.emit('taskFailure', 'FAILURE', runtime, { error });
    this.emit('taskPostrun', 'FAILURE', runtime, { error });
  }

  /**
   * Settle the message once: with an early ack it was acked already (wait for it), else ack, reject
   * or requeue now. A failure is logged: the broker delivers the message again.
   */
  async settle(how: 'ack' | 'reject' | 'requeue'): Promise<void> {
    if (this.acknowledged) {
      await this.earlyAck;
      return;
    }
    this.acknowledged = true;
    try {
      if (how === 'ack') await this.delivery.ack();
      else {
        await this.delivery.reject(how === 'requeue');
        this.w.taskEvents?.send('task-rejected', { uuid: this.fields.id, requeue: how === 'requeue' });
      }
    } catch (err) {
      this.w.logger.error(`Could not ${how} the message of ${this.fields.task}[${this.fields.id}]: ${(err as Error).message}; the broker will deliver it again.`);
    }
  }

  /**
   * The worker failed on this run (not the task): say so once and settle the message so it is never
   * held forever: requeued the first time, rejected if it comes back (a poison message cannot loop).
   */
  onInternalError(err: unknown): void {
    this.w.running.delete(this);
    const requeue = !this.acknowledged && !this.delivery.redelivered;
    const fate = this.acknowledged ? 'Its message was already acknowledged' : requeue ? 'Its message is requeued once' : 'Its message came back before and is rejected';
    void this.settle(requeue ? 'requeue' : 'reject'); // first: the line below may fail the same way
    this.w.logger.error(`Internal error in the worker while running ${this.fields.task}[${this.fields.id}]: ${(err as Error)?.stack ?? err}\n${fate}; please report this.`);
  }

  /** Record a result among this task's children (JobHooks): a task it sent, a callback, the next chain step. */
  addTrail(result: { asTuple(): unknown }): void {
    (this.trail ??= []).push(result);
  }

  /** REVOKED stored, and a chord header member's chord told (Celery's mark_as_revoked). */
  private async storeRevoked(reason: string): Promise<void> {
    const info = { exc_type: 'TaskRevokedError', exc_message: [reason], exc_module: 'celery.exceptions' };
    await this.store('REVOKED', info, null, null);
    if (this.fields.embed.chord) await this.w.canvas.joinChord(this.fields, 'REVOKED', info);
  }

  /** Store a state; false (and logged) when the backend failed. */
  store(status: TaskState, result: unknown, traceback: string | null, children?: unknown[] | null): Promise<boolean> {
    const extras = children === undefined ? this.extras : { ...this.extras, children };
    return storeSafely(this.w, buildMeta(this.fields, status, result, traceback, extras), this.fields);
  }

  /** Celery's Task.retry for this run: republish with retries + 1 and an ETA; returns the error to throw. */
  retry(opts: RetryOptions): Error {
    const r = retryMessage(this.fields, this.delivery, this.task, opts, this.w.host.conf);
    if (r instanceof Error) return r;
    // The publish must land before the Retry is recorded; onRetry awaits it through the promise.
    const published = this.w.host.publish(this.w.broker, r.message, { exchange: '', routingKey: r.queue });
    (r.retry as Retry & { published?: Promise<void> }).published = published;
    published.catch(() => undefined);
    return r.retry;
  }

  /** Celery's update_state: a state that can't be encoded raises EncodeError in the task, as in Celery; a backend failure is logged. */
  async updateState(state: string, meta: unknown): Promise<void> {
    const backend = this.w.backend;
    if (!backend) return;
    try {
      await backend.store(buildMeta(this.fields, state as TaskState, meta, null, this.extras), { replyTo: this.fields.replyTo, correlationId: this.fields.correlationId });
    } catch (err) {
      if (err instanceof EncodeError) throw err;
      this.w.completions.storeFailed(state, this.fields, err);
    }
  }

  private emit(event: string, state: string, runtime?: number, more?: Partial<TaskEvent>): void {
    if (this.w.events.listenerCount(event) === 0) return;
    this.w.events.emit(event, { id: this.fields.id, name: this.fields.task, state, ...(runtime === undefined ? {} : { runtime }), ...more } satisfies TaskEvent);
  }
}

/** Store a meta for a message; false (and logged) when the backend failed. */
export function storeSafely(w: Pick<RequestOwner, 'backend' | 'completions'>, meta: ResultMeta, f: TaskRequest): Promise<boolean> {
  if (!w.backend) return Promise.resolve(true);
  let stored: Promise<void>;
  try {
    stored = w.backend.store(meta, { replyTo: f.replyTo, correlationId: f.correlationId });
  } catch (err) {
    stored = Promise.reject(err); // e.g. a result that cannot be encoded
  }
  return stored.then(
    () => true,
    (err: unknown) => {
      w.completions.storeFailed(meta.status, f, err);
      return false;
    },
  );
}

function truncate(s: string, max = 200): string {
  return s.length > max ? s.slice(0, max) + '…' : s;
}
