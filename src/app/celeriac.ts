// The Celeriac application: settings, task registry, sending tasks, broker and backend connections.
import { randomUUID } from 'node:crypto';
import type { Broker, PublishItem, PublishTarget } from '../brokers/types.js';
import type { ResultBackend } from '../backends/types.js';
import { createBroker, describeUrl } from '../brokers/registry.js';
import { createBackend } from '../backends/registry.js';
import type { Message } from '../protocol/message.js';
import { checkSerializerSettings } from '../protocol/serializers.js';
import { createSettings, effectiveBackendUrl, effectiveBrokerUrl, retriesOnStartup, updateSettings, type Settings } from './settings.js';
import { connectWithRetry, maxConnectionRetries } from '../brokers/connection-retry.js';
import { createLogger, type Logger } from './log.js';
import { Task, type BoundHandler, type Handler } from './task.js';
import { AsyncResult, GroupResult, type ResultNode } from './result.js';
import { normalizeOptions, type ApplyOptions, type TaskOptions } from './options.js';
import { buildMessage, checkCall, inheritParent, routeFor, type TaskCall } from './calls.js';
import { checkSettings, strictSettings } from './settings-check.js';
import { withRetries } from '../backends/retry.js';
import { Worker, type WorkerOptions } from '../worker/worker.js';
import { Control } from '../control/control.js';
import { TaskSentEvents } from '../events/sent.js';
import { BeatSchedule } from '../beat/api.js';
import { ImproperlyConfigured } from './exceptions.js';
import { holdDuringCalls, whileRunning } from './keep-alive.js';
import { currentCallContext, maybeSignature, Signature, type CallContext, type CanvasHost, type SignatureDict } from '../canvas/index.js';
import type { BuiltCall } from '../canvas/types.js';
import { registerBuiltins } from '../canvas/builtins.js';

export interface CeleriacOptions {
  /** Broker URL (Celery's broker_url). */
  broker?: string;
  /** Result backend URL (Celery's result_backend). */
  backend?: string;
  logger?: Logger;
  /** Any Celery setting, by its Celery name or camelCase alias. */
  [setting: string]: unknown;
}

export { ImproperlyConfigured, type TaskCall };

export class Celeriac implements CanvasHost {
  readonly conf: Settings;
  readonly tasks = new Map<string, Task<any, any>>();
  logger: Logger;
  /** This client's id, sent as reply_to (Celery's app.thread_oid). */
  readonly oid = randomUUID();
  /** Remote control of workers (Celery's app.control): revoke, terminate, rateLimit, timeLimit, shutdown. */
  readonly control: Control = new Control(this);
  /** task-sent events (task_send_sent_event), made on first use. */
  private sentEvents: TaskSentEvents | undefined;
  private beatSchedule: BeatSchedule | undefined;
  private brokerPromise: Promise<Broker> | undefined;
  private backendPromise: Promise<ResultBackend | null> | undefined;
  /** Stops a worker's start-up connection retries when the app closes. */
  private startupAbort: AbortController | undefined;
  /** Setting warnings already logged (each once per app). */
  private readonly settingWarnings = new Set<string>();

  constructor(
    readonly main: string = 'celeriac',
    options: CeleriacOptions = {},
  ) {
    const { broker, backend, logger, ...settings } = options;
    this.conf = createSettings(settings);
    if (broker) this.conf.broker_url = broker;
    if (backend) this.conf.result_backend = backend;
    this.logger = logger ?? createLogger('warning');
    registerBuiltins(this);
  }

  private warnOnce(message: string): void {
    if (this.settingWarnings.has(message)) return;
    this.settingWarnings.add(message);
    this.logger.warning(message);
  }

  /** Apply many settings at once (Celery's app.conf.update). */
  configure(values: Record<string, unknown>): this {
    updateSettings(this.conf, values);
    return this;
  }

  /** Register a task. With { bind: true } the handler gets the running task first. */
  task<A extends unknown[], R>(name: string, handler: BoundHandler<A, R>, options: TaskOptions & { bind: true }): Task<A, Awaited<R>>;
  task<A extends unknown[], R>(name: string, handler: Handler<A, R>, options?: TaskOptions & { bind?: false }): Task<A, Awaited<R>>;
  task<A extends unknown[], R>(name: string, handler: Handler<A, R> | BoundHandler<A, R>, options: TaskOptions = {}): Task<A, Awaited<R>> {
    if (!name || typeof name !== 'string') throw new TypeError('A task needs a name, e.g. app.task("tasks.add", (x, y) => x + y)');
    if (typeof handler !== 'function') throw new TypeError(`Task ${name}: the handler must be a function`);
    const existing = this.tasks.get(name);
    if (existing) {
      // As Celery: the first registration stands (a module imported twice must not swap handlers).
      this.logger.warning(`Task ${name} is already registered: keeping the first handler and ignoring this one. Give the second task another name.`);
      return existing as Task<A, Awaited<R>>;
    }
    const t = new Task<A, Awaited<R>>(this, name, handler as Handler<A, Awaited<R>>, options);
    this.tasks.set(name, t);
    return t;
  }

  /**
   * The start-up check of the settings (run before the first connection and by eager calls): a value
   * Celeriac cannot honour throws ImproperlyConfigured naming the setting; an unknown name is a
   * warning naming the closest known one (an error with strict_settings / CELERIAC_STRICT_SETTINGS=1).
   */
  checkSettings(): void {
    const { unknown, refused } = checkSettings(this.conf);
    const strict = strictSettings(this.conf);
    const errors = strict ? [...refused, ...unknown.map((u) => `${u} (strict_settings)`)] : refused;
    if (errors.length > 0) throw new ImproperlyConfigured(errors.join(' '));
    for (const w of unknown) this.warnOnce(w);
    // worker_log_format applies to the app's logger (the one the CLI's worker logs through).
    if (this.conf.worker_log_format && this.logger.format !== undefined) this.logger.format = this.conf.worker_log_format;
  }

  /** A handle on the result of a task by id. */
  AsyncResult<R = unknown>(id: string): AsyncResult<R> {
    return new AsyncResult<R>(id, this);
  }

  /** A handle on a group's results (GroupResult.restore(app, id) reads a saved one). */
  GroupResult<T extends unknown[] = unknown[]>(id: string, results: Iterable<ResultNode>): GroupResult<T> {
    return new GroupResult<T>(id, results, this);
  }

  /**
   * A signature by task name, e.g. of a task only Python implements, or from its dict (Celery's
   * app.signature). Untyped unless you give its types: app.signature<[number], number>('py.double').
   */
  signature<P extends unknown[] = any[], R = any>(task: string | SignatureDict | Signature, args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: ApplyOptions = {}): Signature<P, R, false, AsyncResult<R>> {
    if (typeof task !== 'string') return maybeSignature(task, this, task instanceof Signature) as Signature<P, R, false, AsyncResult<R>>;
    return new Signature<P, R, false, AsyncResult<R>>(task, args, kwargs, normalizeOptions(options), null, false, this);
  }

  get brokerUrl(): string {
    return effectiveBrokerUrl(this.conf).url;
  }

  /** A URL as banners and errors show it (password masked; a sqlite:// URL with its absolute file). */
  describeUrl(url: string): string {
    return describeUrl(url);
  }

  get usesEmbeddedDefault(): boolean {
    return effectiveBrokerUrl(this.conf).embeddedDefault;
  }

  get backendUrl(): string | null {
    return effectiveBackendUrl(this.conf);
  }

  /**
   * The connected broker (created on first use). A worker passes `{ retryOnStartup: true }`: its first
   * connection is retried as Celery's consumer does (broker_connection_retry_on_startup, else
   * broker_connection_retry; broker_connection_max_retries), until close() stops it. A producer makes
   * one attempt and its publish follows task_publish_retry_policy. Its sockets do not hold the process;
   * a call waiting on the broker does.
   */
  broker(opts: { retryOnStartup?: boolean } = {}): Promise<Broker> {
    return (this.brokerPromise ??= whileRunning((async () => {
      checkSerializerSettings(this.conf); // pickle/yaml or an unknown serializer fail here, as Celery fails
      this.checkSettings();
      const b = await createBroker(this.brokerUrl, { settings: this.conf, logger: this.logger, idleExit: true });
      if (!opts.retryOnStartup || !retriesOnStartup(this.conf)) {
        await b.connect();
      } else {
        const stop = (this.startupAbort = new AbortController());
        try {
          await connectWithRetry(() => b.connect(), { maxRetries: maxConnectionRetries(this.conf.broker_connection_max_retries), logger: this.logger, signal: stop.signal });
        } catch (err) {
          await b.close().catch(() => undefined);
          throw err;
        } finally {
          if (this.startupAbort === stop) this.startupAbort = undefined;
        }
      }
      return holdDuringCalls(b, ['publish', 'publishMany', 'purge', 'queueLength', 'broadcast', 'subscribeBroadcast', 'sendReply', 'subscribeReplies', 'publishEvent', 'publishEventJson', 'subscribeEvents']);
    })()).catch((err) => {
      this.brokerPromise = undefined;
      throw err;
    }));
  }

  /** The connected result backend, or null when none is configured. */
  backend(): Promise<ResultBackend | null> {
    return (this.backendPromise ??= whileRunning((async () => {
      this.checkSettings();
      const url = this.backendUrl;
      if (!url || url === 'disabled') return null;
      const b = await createBackend(url, { settings: this.conf, logger: this.logger, idleExit: true, oid: this.oid });
      await b.connect();
      // store() is left alone: only a worker stores, and a running worker holds the process anyway.
      return holdDuringCalls(b, ['get', 'wait', 'forget', 'onTaskCall']);
    })()).catch((err) => {
      this.backendPromise = undefined;
      throw err;
    }));
  }

  async requireBackend(): Promise<ResultBackend> {
    const b = await this.backend();
    if (!b) {
      throw new ImproperlyConfigured(
        "No result backend is configured. Set result_backend (e.g. app.conf.result_backend = 'redis://localhost:6379/1'), pass { backend } to new Celeriac(), or set CELERY_RESULT_BACKEND.",
      );
    }
    return b;
  }

  /** The queue a task goes to: call option, then task_routes, then the task's own, then task_default_queue. */
  routeFor(name: string, callOptions: Record<string, unknown>): { queue: string; priority?: number } {
    return routeFor(this.conf, this.tasks.get(name)?.options, name, callOptions);
  }

  /** Build the message for a call (no I/O). */
  buildMessage(name: string, args: readonly unknown[], kwargs: Record<string, unknown>, o: Record<string, unknown>, replyTo: string, tags?: boolean): BuiltCall {
    return buildMessage(this.conf, this.tasks.get(name)?.options, { name, args, kwargs }, o, replyTo, tags);
  }

  /** Send a task by name, e.g. one implemented in Python (Celery's send_task). */
  async sendTask<R = unknown>(name: string, args: readonly unknown[] = [], kwargs: Record<string, unknown> = {}, options: ApplyOptions = {}): Promise<AsyncResult<R>> {
    const call = checkCall(`sendTask(${JSON.stringify(name)})`, { name, args, kwargs, options });
    if (this.conf.task_always_eager === true) this.warnOnce('task_always_eager has no effect on sendTask (as in Celery): the task is sent to the broker. Call the task\'s delay()/applyAsync() to run it eagerly.');
    const broker = await this.broker();
    const parent = currentCallContext();
    const { id, message, target, queue, addToParent } = await this.prepareCall(call, parent);
    await this.publish(broker, message, target);
    const result = new AsyncResult<R>(id, this, null, { name, queue });
    if (addToParent) parent.addTrail?.(result);
    return result;
  }

  /**
   * Send many tasks at once: each message is built exactly as sendTask builds it, then all are
   * published together (Broker.publishMany: one round trip per chunk where the transport allows,
   * sequential publishes otherwise). Results come back in the order of `calls`.
   */
  async sendTasks<R = unknown>(calls: readonly TaskCall[]): Promise<AsyncResult<R>[]> {
    if (!Array.isArray(calls)) throw new TypeError(`sendTasks: calls must be an array of { name, args?, kwargs?, options? }, got ${typeof calls}`);
    const checked = calls.map((c, i) => {
      if (c === null || typeof c !== 'object' || typeof c.name !== 'string' || !c.name) {
        throw new TypeError(`sendTasks: call ${i} must be { name, args?, kwargs?, options? } with a task name, got ${JSON.stringify(c)}`);
      }
      return checkCall(() => `sendTasks: call ${i} (${JSON.stringify(c.name)})`, c);
    });
    if (checked.length === 0) return [];
    const broker = await this.broker();
    const parent = currentCallContext();
    // The backend is looked up once for the batch; calls that ignore results never connect to it.
    const options = checked.map((c) => inheritParent(normalizeOptions(c.options), parent));
    const ignored = checked.map((c, i) => this.ignoresResult(c.name, options[i]!));
    const backend = ignored.includes(false) ? await this.backend() : null;
    const prepared: (PublishItem & { id: string; queue: string })[] = [];
    for (let i = 0; i < checked.length; i++) {
      const item = this.prepareWith(checked[i]!, options[i]!, ignored[i] ? null : backend);
      if (!ignored[i] && backend?.onTaskCall) await backend.onTaskCall(item.id);
      prepared.push(item);
    }
    await this.publishMany(broker, prepared);
    const results = prepared.map((p, i) => new AsyncResult<R>(p.id, this, null, { name: checked[i]!.name, queue: p.queue }));
    if (parent.addTrail) results.forEach((r, i) => options[i]!.add_to_parent !== false && parent.addTrail!(r));
    return results;
  }

  /**
   * Everything a call needs before its publish (no publish): options normalized, the message built
   * with the reply_to of the result backend in use, and the backend told about the task id.
   */
  private async prepareCall(call: Required<TaskCall>, parent: CallContext): Promise<PublishItem & { id: string; queue: string; addToParent: boolean }> {
    const o = inheritParent(normalizeOptions(call.options), parent);
    const backend = this.ignoresResult(call.name, o) ? null : await this.backend();
    const item = this.prepareWith(call, o, backend);
    if (backend?.onTaskCall) await backend.onTaskCall(item.id);
    return { ...item, addToParent: o.add_to_parent !== false };
  }

  /** Whether a call's result is ignored: the call's ignore_result, then the task's, then task_ignore_result. */
  private ignoresResult(name: string, o: Record<string, unknown>): boolean {
    return (o.ignore_result ?? this.tasks.get(name)?.options.ignore_result ?? this.conf.task_ignore_result) === true;
  }

  /** Build a call's message (options `o` normalized) with the reply_to of `backend` (null when the result is ignored). */
  private prepareWith(call: Required<TaskCall>, o: Record<string, unknown>, backend: ResultBackend | null): PublishItem & { id: string; queue: string } {
    const { message, id, exchange, routingKey, queue } = this.buildMessage(call.name, call.args, call.kwargs, o, backend?.replyTo ?? this.oid);
    return { id, queue, message, target: { exchange, routingKey } };
  }

  /** Publish canvas messages (CanvasHost): in bulk, with task_publish_retry_policy. */
  async publishCalls(items: PublishItem[]): Promise<void> {
    await this.publishMany(await this.broker(), items);
  }

  /** Publish with Celery's task_publish_retry_policy. */
  async publish(broker: Broker, message: Message, target: PublishTarget): Promise<void> {
    if (!this.conf.task_publish_retry) await broker.publish(message, target);
    else await withRetries(this.conf.task_publish_retry_policy, `publishing task ${String(message.headers.id ?? message.properties.correlation_id)}`, () => broker.publish(message, target));
    if (this.conf.task_send_sent_event) this.taskSent(broker, [{ message, target }]);
  }

  private taskSent(broker: Broker, items: readonly PublishItem[]): void {
    (this.sentEvents ??= new TaskSentEvents(String(this.conf.event_exchange ?? 'celeryev'), this.logger)).sent(broker, items);
  }

  /**
   * Publish many messages with Celery's task_publish_retry_policy: one Broker.publishMany (retried as
   * a whole, so a retry after a partial failure may duplicate messages, never lose one), or one
   * `publish` after another when the transport has no bulk call.
   */
  async publishMany(broker: Broker, items: PublishItem[]): Promise<void> {
    if (items.length === 0) return;
    if (!broker.publishMany) {
      for (const { message, target } of items) await this.publish(broker, message, target);
      return;
    }
    if (!this.conf.task_publish_retry) await broker.publishMany(items);
    else {
      const first = items[0]!.message;
      const what = `publishing ${items.length} task(s) (the first ${String(first.headers.id ?? first.properties.correlation_id)})`;
      await withRetries(this.conf.task_publish_retry_policy, what, () => broker.publishMany!(items));
    }
    if (this.conf.task_send_sent_event) this.taskSent(broker, items);
  }

  /** The periodic-task schedule every beat process runs: upsert, remove, list (docs/beat.md). */
  get beat(): BeatSchedule {
    return (this.beatSchedule ??= new BeatSchedule(this));
  }

  /** Create a worker for this app (Celery's app.Worker). */
  worker(options: WorkerOptions = {}): Worker {
    return new Worker(this, options);
  }

  /** Close broker and backend connections (the process stays alive until they are closed). */
  async close(): Promise<void> {
    this.startupAbort?.abort();
    await this.sentEvents?.close();
    const b = this.brokerPromise;
    const r = this.backendPromise;
    this.brokerPromise = undefined;
    this.backendPromise = undefined;
    await whileRunning(Promise.all([
      this.beatSchedule?.close(),
      b?.then((x) => x.close()).catch(() => undefined),
      r?.then((x) => x?.close()).catch(() => undefined),
    ]));
  }
}
