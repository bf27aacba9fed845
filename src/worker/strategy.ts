// Every decision made before a task reaches the pool, as Celery's worker/strategy.py default():
// decode, unknown task, revoked, expired, ETA hold, rate limits, then hand the request to the pool.
import type { Delivery } from '../brokers/types.js';
import { decodeTask, type DecodeOptions, type TaskRequest } from '../protocol/message.js';
import { ContentDisallowed, DecodeError, InvalidTaskError } from '../protocol/errors.js';
import type { AsyncPool } from './pool.js';
import type { RateLimiter } from './rate-limit.js';
import type { GlobalRateLimiter } from './global-rate-limit.js';
import type { EtaSchedule } from './eta.js';
import { buildMeta } from './meta.js';
import { Request, storeSafely, type RequestOwner, type TaskEvent } from './request.js';
import { receivedFields } from '../events/task-fields.js';
import { repr } from '../protocol/repr.js';

export interface StrategyOwner extends RequestOwner {
  readonly decodeOptions: DecodeOptions;
  readonly rateLimiter: RateLimiter;
  readonly globalRateLimiter: GlobalRateLimiter;
  readonly pool: AsyncPool;
  readonly eta: EtaSchedule;
  /** False once shutdown began: deliveries are left for restoreUnacked. */
  readonly accepting: boolean;
}

export class Strategy {
  constructor(private readonly w: StrategyOwner) {}

  /** The consumer's handler: one delivery in, a decision out; never throws. */
  readonly onDelivery = (d: Delivery): void => {
    try {
      this.accept(d);
    } catch (err) {
      this.onInternalError(d, err);
    }
  };

  private accept(d: Delivery): void {
    const w = this.w;
    if (!w.accepting) return; // restored on shutdown
    let f: TaskRequest;
    try {
      f = decodeTask(d.message, w.decodeOptions);
    } catch (err) {
      this.onBadMessage(d, err as Error);
      return;
    }
    const task = w.host.tasks.get(f.task);
    if (!task) {
      this.onUnregistered(d, f).catch((err: unknown) => this.onInternalError(d, err));
      return;
    }
    const request = new Request(w, d, f, task);
    if (w.revoked.has(f.id)) {
      request.onRevoked('revoked').catch((err: unknown) => request.onInternalError(err));
      return;
    }
    if (f.expires && f.expires.getTime() <= Date.now()) {
      request.onRevoked('expired').catch((err: unknown) => request.onInternalError(err));
      return;
    }
    if (w.logger.isEnabled('info')) w.logger.info(`Task ${f.task}[${f.id}] received`);
    w.taskEvents?.taskReceived(receivedFields(f));
    // Event objects are built only for listeners: most workers have none on the per-task events.
    if (w.events.listenerCount('taskReceived') > 0) w.events.emit('taskReceived', { id: f.id, name: f.task, request: f } satisfies TaskEvent);
    const delay = f.eta ? f.eta.getTime() - Date.now() : 0;
    if (delay > 0) w.eta.hold(request, delay, this.dispatch);
    else this.dispatch(request);
  }

  /** The worker failed on a delivery before it became a task run: said once, settled (requeued once, then rejected). */
  private onInternalError(d: Delivery, err: unknown): void {
    const requeue = !d.redelivered;
    d.reject(requeue).catch(() => undefined); // first: the line below may fail the same way
    this.w.logger.error(
      `Internal error in the worker accepting a message from queue '${d.queue}' (delivery_tag ${d.deliveryTag}): ${(err as Error)?.stack ?? err}\n` +
        `${requeue ? 'The message is requeued once' : 'The message came back before and is rejected'}; please report this.`,
    );
  }

  /** Hand a due request to the pool, after its per-worker and then its global rate-limit token (kept unacked while it waits). */
  readonly dispatch = (request: Request): void => {
    const w = this.w;
    if (!w.accepting) return;
    const name = request.taskName;
    if (!w.rateLimiter.has(name) && !w.globalRateLimiter.has(name)) {
      w.pool.submit(request);
      return;
    }
    const submit = () => {
      if (w.accepting) w.pool.submit(request);
    };
    const global = () => {
      if (!w.accepting) return;
      if (w.globalRateLimiter.has(name)) w.globalRateLimiter.schedule(name, submit);
      else submit();
    };
    if (w.rateLimiter.has(name)) w.rateLimiter.schedule(name, global);
    else global();
  };

  /** Bad input is settled as Celery settles it, and the worker keeps serving. */
  private onBadMessage(d: Delivery, err: Error): void {
    const { logger } = this.w;
    const where = `queue '${d.queue}' (delivery_tag ${d.deliveryTag})`;
    if (err instanceof DecodeError) {
      // Celery acks undecodable messages so they cannot loop.
      logger.critical(`Can't decode message body from ${where}: ${err.message}. The message has been discarded.`);
      void d.ack().catch(() => undefined);
    } else if (err instanceof ContentDisallowed) {
      logger.error(`${err.message} — message from ${where} rejected.`);
      void d.reject(false).catch(() => undefined);
    } else {
      const kind = err instanceof InvalidTaskError ? 'Received invalid task message' : 'Received unreadable message';
      logger.error(`${kind} from ${where}: ${err.message}. The message has been rejected and discarded.`);
      void d.reject(false).catch(() => undefined);
    }
  }

  private async onUnregistered(d: Delivery, f: TaskRequest): Promise<void> {
    const w = this.w;
    w.logger.error(
      `Received unregistered task of type '${f.task}'.\nThe message has been ignored and discarded.\n\n` +
        `Did you remember to register the task with app.task('${f.task}', ...) in the module given to -A?`,
    );
    const exc = { exc_type: 'NotRegistered', exc_message: [f.task], exc_module: 'celery.exceptions' };
    const extras = { extended: w.resultExtended, hostname: w.hostname, queue: d.routingKey || d.queue };
    await storeSafely(w, buildMeta(f, 'FAILURE', exc, null, extras), f);
    w.taskEvents?.send('task-failed', { uuid: f.id, exception: `NotRegistered(${repr(f.task)})` });
    w.events.emit('taskFailure', { id: f.id, name: f.task, state: 'FAILURE', error: exc } satisfies TaskEvent);
    await d.reject(false).catch(() => undefined);
  }
}
