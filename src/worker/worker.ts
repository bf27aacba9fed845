// The worker: consume queues, run tasks in a pool, store results, ack as Celery does, shut down cleanly.
import { EventEmitter } from 'node:events';
import os from 'node:os';
import type { Celeriac } from '../app/celeriac.js';
import type { Broker, Consumer, Delivery } from '../brokers/types.js';
import type { ResultBackend, ResultMeta } from '../backends/types.js';
import { decodeTask, encodeTaskV2, type TaskRequest } from '../protocol/message.js';
import { ContentDisallowed, DecodeError, InvalidTaskError } from '../protocol/errors.js';
import { repr } from '../protocol/repr.js';
import { createLogger, parseLogLevel, type Logger, type LogLevel } from '../app/log.js';
import type { Task } from '../app/task.js';
import { taskStorage, type Request, type RetryOptions, type TaskContext } from '../app/context.js';
import {
  encodeException, exceptionRepr, formatTraceback, Ignore, MaxRetriesExceededError, Reject, Retry,
  SoftTimeLimitExceeded, TimeLimitExceeded,
} from '../app/exceptions.js';
import { AsyncPool } from './pool.js';
import { buildMeta } from './meta.js';

export interface WorkerOptions {
  queues?: string[];
  concurrency?: number;
  prefetchMultiplier?: number;
  hostname?: string;
  loglevel?: LogLevel | string;
  logger?: Logger;
  pool?: string;
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

export class Worker extends EventEmitter {
  readonly hostname: string;
  readonly queues: string[];
  readonly concurrency: number;
  readonly prefetchMultiplier: number;
  readonly logger: Logger;
  readonly pool: AsyncPool;
  readonly revoked = new Set<string>();
  processed = 0;
  private broker: Broker | undefined;
  private backend: ResultBackend | null = null;
  private consumer: Consumer | undefined;
  private readonly etaTimers = new Map<string, NodeJS.Timeout>();
  private readonly prefetch: number;
  private heldForEta = 0;
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
    this.pool = new AsyncPool(this.concurrency);
  }

  /** Connect, start consuming, and resolve once the worker is ready. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('This worker was already started; create a new one with app.worker()');
    this.state = 'running';
    this.broker = await this.app.broker();
    this.backend = await this.app.backend();
    this.consumer = await this.broker.consume(this.queues, (d) => this.onDelivery(d), { prefetch: this.prefetch });
    this.logger.info(`${this.hostname} ready.`);
    this.emit('workerReady', this);
  }

  /** The start-up banner, like Celery's. */
  banner(): string {
    const app = this.app;
    const backend = app.backendUrl ? maskedUrl(app.backendUrl) : 'disabled';
    const tasks = [...app.tasks.keys()].sort();
    const lines = [
      ` -------------- ${this.hostname} v${VERSION}`,
      `--- ***** ----- Node ${process.version} ${os.platform()} ${os.arch()} ${new Date().toISOString()}`,
      `- *** --- * --- `,
      `- ** ---------- [config]`,
      `- ** ---------- .> app:         ${app.main}`,
      `- ** ---------- .> transport:   ${maskedUrl(app.brokerUrl)}${app.usesEmbeddedDefault ? '  (embedded default: no broker configured)' : ''}`,
      `- ** ---------- .> results:     ${backend}`,
      `- *** --- * --- .> concurrency: ${this.concurrency} (async)`,
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
      req = decodeTask(d.message, { accept: this.app.conf.accept_content });
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
    this.logger.info(`Task ${req.task}[${req.id}] received`);
    this.emit('taskReceived', { id: req.id, name: req.task, request: req } satisfies TaskEvent);
    const held: Held = { delivery: d, req, task };
    const delay = req.eta ? req.eta.getTime() - Date.now() : 0;
    if (delay > 0) this.holdUntilEta(held, delay);
    else this.pool.submit(() => this.execute(held));
  }

  /** Keep an ETA message unacked until it is due; it does not count against prefetch (as Celery). */
  private holdUntilEta(held: Held, delay: number): void {
    this.heldForEta++;
    this.consumer?.setPrefetch(this.prefetch === 0 ? 0 : this.prefetch + this.heldForEta);
    const fire = () => {
      this.etaTimers.delete(held.req.id + held.delivery.deliveryTag);
      this.heldForEta--;
      this.consumer?.setPrefetch(this.prefetch === 0 ? 0 : this.prefetch + this.heldForEta);
      if (this.state === 'running') this.pool.submit(() => this.execute(held));
    };
    // setTimeout holds at most ~24.8 days; re-arm in steps for longer ETAs.
    const arm = (ms: number) => {
      const step = Math.min(ms, 2 ** 31 - 1);
      const t = setTimeout(() => (ms > step ? arm(ms - step) : fire()), step);
      this.etaTimers.set(held.req.id + held.delivery.deliveryTag, t);
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
    return { extended: this.app.conf.result_extended === true, hostname: this.hostname, queue: d.routingKey || d.queue };
  }

  private taskOption<T>(task: Task<any, any>, name: string, setting: string): T {
    const v = task.options[name];
    return (v === undefined ? this.app.conf[setting] : v) as T;
  }

  private async storeSafely(meta: ResultMeta, req: TaskRequest): Promise<boolean> {
    if (!this.backend) return true;
    try {
      await this.backend.store(meta, { replyTo: req.replyTo, correlationId: req.correlationId });
      return true;
    } catch (err) {
      this.logger.error(`Could not store the ${meta.status} state of task ${req.task}[${req.id}]: ${(err as Error).message}`);
      return false;
    }
  }

  /** Run one task and settle its message (Celery's trace + Request.on_success/on_failure). */
  private async execute(held: Held): Promise<void> {
    const { delivery: d, req, task } = held;
    if (this.revoked.has(req.id)) return this.discardRevoked(d, req, 'revoked');
    if (req.expires && req.expires.getTime() <= Date.now()) return this.discardRevoked(d, req, 'expired');
    const acksLate = this.taskOption<boolean>(task, 'acks_late', 'task_acks_late') === true;
    const ignoreResult = req.ignoreResult ?? this.taskOption<boolean>(task, 'ignore_result', 'task_ignore_result') === true;
    const storeErrors = this.taskOption<boolean>(task, 'store_errors_even_if_ignored', 'task_store_errors_even_if_ignored') === true;
    const extras = this.metaExtras(d);
    // Early ack (the default): acknowledged when the pool accepts the job.
    const earlyAck = acksLate ? null : d.ack().catch((err) => this.logger.error(`Could not acknowledge ${req.task}[${req.id}]: ${(err as Error).message}`));
    if (this.taskOption<boolean>(task, 'track_started', 'task_track_started') === true && !ignoreResult) {
      await this.storeSafely(buildMeta(req, 'STARTED', { pid: process.pid, hostname: this.hostname }, null, extras), req);
    }
    const abort = new AbortController();
    const ctx = this.contextFor(held, abort.signal);
    this.emit('taskPrerun', { id: req.id, name: req.task, request: req } satisfies TaskEvent);
    const started = performance.now();
    let outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
    try {
      const value = await this.runWithLimits(task, req, ctx, abort);
      outcome = { ok: true, value };
    } catch (error) {
      outcome = { ok: false, error };
    }
    const runtime = (performance.now() - started) / 1000;
    this.processed++;

    if (outcome.ok) {
      let stored = true;
      if (!ignoreResult) stored = await this.storeSafely(buildMeta(req, 'SUCCESS', outcome.value, null, extras), req);
      if (acksLate) {
        if (stored) await this.settle(d, 'ack', req);
        else {
          this.logger.error(`Requeueing ${req.task}[${req.id}]: its result could not be stored (acks_late keeps the message).`);
          await this.settle(d, 'requeue', req);
        }
      }
      await earlyAck;
      if (this.logger.isEnabled('info')) this.logger.info(`Task ${req.task}[${req.id}] succeeded in ${runtime.toFixed(6)}s: ${truncate(repr(outcome.value))}`);
      this.emit('taskSuccess', { id: req.id, name: req.task, state: 'SUCCESS', result: outcome.value, runtime } satisfies TaskEvent);
      this.emit('taskPostrun', { id: req.id, name: req.task, state: 'SUCCESS', result: outcome.value, runtime } satisfies TaskEvent);
      return;
    }

    const error = outcome.error;
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
      await this.storeSafely(buildMeta(req, 'RETRY', info, formatTraceback(error.exc ?? error), { ...extras, children: [[[req.id, null], null]] }), req);
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
    const info = encodeException(error);
    if (!ignoreResult || storeErrors) await this.storeSafely(buildMeta(req, 'FAILURE', info, formatTraceback(error), extras), req);
    if (acksLate) {
      const ackOnFailure = this.taskOption<boolean>(task, 'acks_on_failure_or_timeout', 'task_acks_on_failure_or_timeout') !== false;
      await this.settle(d, ackOnFailure ? 'ack' : 'reject', req);
    }
    await earlyAck;
    this.logger.error(`Task ${req.task}[${req.id}] raised unexpected: ${exceptionRepr(info)}\n${formatTraceback(error)}`);
    this.emit('taskFailure', { id: req.id, name: req.task, state: 'FAILURE', error, runtime } satisfies TaskEvent);
    this.emit('taskPostrun', { id: req.id, name: req.task, state: 'FAILURE', error, runtime } satisfies TaskEvent);
  }

  private async settle(d: Delivery, how: 'ack' | 'reject' | 'requeue', req: TaskRequest): Promise<void> {
    try {
      if (how === 'ack') await d.ack();
      else await d.reject(how === 'requeue');
    } catch (err) {
      this.logger.error(`Could not ${how} the message of ${req.task}[${req.id}]: ${(err as Error).message}; the broker will deliver it again.`);
    }
  }

  /** Soft limit: abort the signal and fail with SoftTimeLimitExceeded; hard: stop waiting, TimeLimitExceeded. */
  private runWithLimits(task: Task<any, any>, req: TaskRequest, ctx: TaskContext, abort: AbortController): Promise<unknown> {
    const hard = req.timelimit[0] ?? (task.options.time_limit as number | null | undefined) ?? this.app.conf.task_time_limit;
    const soft = req.timelimit[1] ?? (task.options.soft_time_limit as number | null | undefined) ?? this.app.conf.task_soft_time_limit;
    const run = taskStorage.run(ctx, () => task.invoke(ctx, req.args, req.kwargs));
    if (!hard && !soft) return run;
    return new Promise((resolve, reject) => {
      const timers: NodeJS.Timeout[] = [];
      const done = () => timers.forEach(clearTimeout);
      if (soft) {
        timers.push(setTimeout(() => {
          const e = new SoftTimeLimitExceeded(`SoftTimeLimitExceeded(${soft})`);
          abort.abort(e);
        }, soft * 1000));
      }
      if (hard) {
        timers.push(setTimeout(() => {
          this.logger.error(`Hard time limit (${hard}s) exceeded for ${req.task}[${req.id}]`);
          abort.abort(new TimeLimitExceeded(String(hard)));
          const e = new TimeLimitExceeded(String(hard));
          (e as { excArgs?: unknown[] }).excArgs = [hard];
          reject(e);
        }, hard * 1000));
      }
      run.then((v) => { done(); resolve(v); }, (e) => { done(); reject(e); });
    });
  }

  private contextFor(held: Held, signal: AbortSignal): TaskContext {
    const { req, delivery: d, task } = held;
    const request: Request = {
      id: req.id, task: req.task, args: req.args, kwargs: req.kwargs, retries: req.retries, eta: req.eta,
      expires: req.expires, headers: req.headers, rootId: req.rootId, parentId: req.parentId, group: req.group,
      groupIndex: req.groupIndex, origin: req.origin, hostname: this.hostname, replyTo: req.replyTo,
      correlationId: req.correlationId, timelimit: req.timelimit, isEager: false,
      deliveryInfo: { exchange: d.exchange, routingKey: d.routingKey, priority: req.priority, redelivered: d.redelivered },
    };
    const worker = this;
    return {
      name: task.name,
      request,
      signal,
      retry(opts: RetryOptions = {}): never {
        throw worker.retryTask(held, opts);
      },
      updateState: async (state: string, meta?: unknown) => {
        await worker.storeSafely(buildMeta(req, state, meta ?? null, null, worker.metaExtras(d)), req);
      },
    };
  }

  /** Celery's Task.retry: republish the same id with retries + 1 and an ETA; returns the Retry to throw. */
  private retryTask(held: Held, opts: RetryOptions): Error {
    const { req, task, delivery: d } = held;
    const max = opts.maxRetries ?? opts.max_retries ?? (task.options.max_retries as number | null | undefined) ?? this.app.conf.task_max_retries;
    if (max !== null && max !== undefined && req.retries >= max) {
      if (opts.exc instanceof Error) return opts.exc;
      return new MaxRetriesExceededError(`Can't retry ${req.task}[${req.id}] args:${repr(req.args)} kwargs:${repr(req.kwargs)}`);
    }
    const countdown = opts.countdown ?? (opts.eta ? undefined : ((task.options.default_retry_delay as number | undefined) ?? this.app.conf.task_default_retry_delay));
    const eta = opts.eta ?? new Date(Date.now() + (countdown ?? 0) * 1000);
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

  /**
   * Warm shutdown: stop fetching, let running tasks finish, put unstarted and ETA-held messages
   * back on their queues. `cold` skips waiting for running tasks.
   */
  close(opts: { cold?: boolean; timeout?: number } = {}): Promise<void> {
    return (this.closing ??= this.shutdown(opts));
  }

  private async shutdown(opts: { cold?: boolean; timeout?: number }): Promise<void> {
    if (this.state === 'new') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopping';
    this.logger.info(`${opts.cold ? 'Cold' : 'Warm'} shutdown (${this.hostname})`);
    await this.consumer?.stop().catch(() => undefined);
    for (const t of this.etaTimers.values()) clearTimeout(t);
    this.etaTimers.clear();
    this.pool.drain();
    if (!opts.cold) {
      const waiting = this.pool.onNoneRunning();
      if (opts.timeout) await Promise.race([waiting, new Promise((r) => setTimeout(r, opts.timeout).unref())]);
      else await waiting;
    }
    await this.consumer?.restoreUnacked().catch((err) => this.logger.error(`Could not restore unacknowledged messages: ${(err as Error).message}`));
    this.state = 'stopped';
    this.emit('workerShutdown', this);
  }
}

const VERSION = '0.1.0';

function truncate(s: string, max = 200): string {
  return s.length > max ? s.slice(0, max) + '…' : s;
}

function maskedUrl(url: string): string {
  return url.replace(/(\/\/[^:/@;]*:)([^@/;]*)@/g, '$1**@');
}
