// The RabbitMQ broker: Celery's topology, publisher confirms on every publish, and a consumer per worker.
import type { ConfirmChannel, GetMessage } from 'amqplib';
import type { Broker, BrokerContext, Consumer, ConsumeOptions, DeliveryHandler, PublishItem, PublishTarget } from '../types.js';
import type { Message } from '../../protocol/message.js';
import type { RetryPolicy } from '../../app/settings.js';
import { AmqpConnection, maxConnectionRetries, sleep } from './connection.js';
import { AmqpConsumer } from './consumer.js';
import { declareTaskQueue, taskQueueSpec } from './topology.js';
import { defaultDeliveryMode, publishOptions } from './message.js';
import { BrokerConnectionError, PublishError, explainChannelError } from './errors.js';
import { parseAmqpUrl, type AmqpEndpoint } from './url.js';
import { AmqpFanout } from './fanout.js';
import type { BroadcastSubscription } from '../types.js';

const DEFAULT_CONFIRM_TIMEOUT_S = 30;

/** Sleep before retry n (0-based), kombu's retry_over_time: interval_start + n * interval_step, capped. */
function retryInterval(policy: RetryPolicy, n: number): number {
  const start = policy.interval_start ?? 0;
  const step = policy.interval_step ?? 0.2;
  const max = policy.interval_max ?? 1;
  return Math.min(start + n * step, max) * 1000;
}

const targetKey = (target: PublishTarget): string => `${target.exchange}\u0000${target.routingKey}`;

export class AmqpBroker implements Broker {
  readonly transport = 'amqp';
  readonly displayUrl: string;
  readonly endpoint: AmqpEndpoint;
  private readonly conn: AmqpConnection;
  private channel: { ch: ConfirmChannel; generation: number; declared: Set<string> } | null = null;
  private opening: Promise<{ ch: ConfirmChannel; declared: Set<string> }> | null = null;
  private readonly consumers = new Set<AmqpConsumer>();
  private closed = false;
  private readonly fanout: AmqpFanout;

  constructor(url: string, private readonly ctx: BrokerContext) {
    this.endpoint = parseAmqpUrl(url, ctx.settings);
    this.displayUrl = this.endpoint.displayUrl;
    this.conn = new AmqpConnection(this.endpoint, ctx.logger, 'producer', ctx.idleExit);
    this.fanout = new AmqpFanout(() => this.conn.open(), ctx.logger);
  }

  /** Fanout (celery.pidbox remote control): see fanout.ts. */
  broadcast(exchange: string, message: Message): Promise<void> {
    return this.fanout.broadcast(exchange, message);
  }

  subscribeBroadcast(exchange: string, queueName: string, handler: (message: Message) => void): Promise<BroadcastSubscription> {
    return this.fanout.subscribe(exchange, queueName, handler);
  }

  /** Celery events on the durable topic exchange: see fanout.ts. */
  publishEvent(exchange: string, routingKey: string, message: Message): Promise<void> {
    return this.fanout.publishEvent(exchange, routingKey, message);
  }

  subscribeEvents(exchange: string, queueName: string, bindingKey: string, handler: (message: Message) => void): Promise<BroadcastSubscription> {
    const s = this.ctx.settings;
    return this.fanout.subscribeEvents(exchange, queueName, bindingKey, handler, Number(s.event_queue_ttl ?? 5), Number(s.event_queue_expires ?? 60));
  }

  sendReply(to: PublishTarget, message: Message): Promise<void> {
    return this.fanout.reply(to.exchange, to.routingKey, message);
  }

  subscribeReplies(exchange: string, routingKey: string, handler: (message: Message) => void): Promise<BroadcastSubscription> {
    return this.fanout.subscribeReplies(exchange, routingKey, handler);
  }

  /** One attempt: a worker's start-up retries wrap it (Celeriac.broker), a producer fails at once. */
  async connect(): Promise<void> {
    await this.conn.open();
    await this.confirmChannel();
  }

  /** The confirm channel of the current connection, opened (and the connection reopened) on demand. */
  private async confirmChannel(): Promise<{ ch: ConfirmChannel; declared: Set<string> }> {
    const current = this.channel;
    if (current && current.generation === this.conn.generation && this.conn.isOpen) return current;
    this.opening ??= (async () => {
      const model = await this.conn.open();
      const generation = this.conn.generation;
      const ch = await model.createConfirmChannel();
      const entry = { ch, generation, declared: new Set<string>() };
      ch.on('error', (err: Error) => this.ctx.logger.warning(`AMQP publish channel error on ${this.displayUrl}: ${err.message}`));
      ch.on('close', () => { if (this.channel === entry) this.channel = null; });
      this.channel = entry;
      return entry;
    })().finally(() => { this.opening = null; });
    return this.opening;
  }

  async publish(message: Message, target: PublishTarget): Promise<void> {
    await this.withPublishRetries(`Publish to ${target.exchange || '(default exchange)'}/${target.routingKey}`, () => this.publishOnce(message, target));
  }

  /**
   * Bulk publish: every message goes out on the confirm channel at once, then we wait for all the
   * confirms. A failed attempt (nack, closed channel, confirm timeout) is retried like `publish`, with
   * only the messages RabbitMQ has not confirmed.
   */
  async publishMany(items: PublishItem[]): Promise<void> {
    if (items.length === 0) return;
    const batch = { left: items };
    await this.withPublishRetries(`Bulk publish of ${items.length} message(s)`, () => this.publishManyOnce(batch));
  }

  /** Retry `attempt` with task_publish_retry_policy (off when task_publish_retry is false). */
  private async withPublishRetries(what: string, attempt: () => Promise<void>): Promise<void> {
    const s = this.ctx.settings;
    const policy: RetryPolicy = s.task_publish_retry === false ? { max_retries: 0 } : (s.task_publish_retry_policy ?? {});
    const maxRetries = policy.max_retries == null ? Infinity : policy.max_retries;
    const deadline = policy.timeout != null ? Date.now() + policy.timeout * 1000 : Infinity;
    for (let n = 0; ; n++) {
      try {
        await attempt();
        return;
      } catch (err) {
        const permanent = err instanceof BrokerConnectionError && err.permanent;
        if (permanent || this.closed || n >= maxRetries || Date.now() >= deadline) {
          if (permanent || n === 0) throw err;
          throw new PublishError(`${(err as Error).message} (gave up after ${n + 1} attempts, task_publish_retry_policy)`);
        }
        const wait = retryInterval(policy, n);
        this.ctx.logger.warning(`${what} not confirmed: ${(err as Error).message}; retrying in ${(wait / 1000).toFixed(2)} s (${n + 1}/${maxRetries === Infinity ? '∞' : maxRetries})`);
        await sleep(wait);
      }
    }
  }

  /** As Celery does before the first publish to a target: the queue's exchange, the queue and the binding. */
  private async declareTarget(ch: ConfirmChannel, declared: Set<string>, target: PublishTarget): Promise<void> {
    const key = targetKey(target);
    if (declared.has(key)) return;
    const spec = taskQueueSpec(target.routingKey, this.ctx.settings, target.exchange || undefined);
    try {
      await declareTaskQueue(ch, spec);
    } catch (err) {
      throw explainChannelError(err, this.endpoint, `declaring queue "${spec.queue}"`);
    }
    declared.add(key);
  }

  private get confirmTimeoutS(): number {
    return Number(this.ctx.settings.broker_transport_options?.confirm_timeout ?? DEFAULT_CONFIRM_TIMEOUT_S);
  }

  private async publishOnce(message: Message, target: PublishTarget): Promise<void> {
    const { ch, declared } = await this.confirmChannel();
    await this.declareTarget(ch, declared, target);
    const timeoutS = this.confirmTimeoutS;
    const opts = publishOptions(message, defaultDeliveryMode(this.ctx.settings));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new PublishError(`RabbitMQ did not confirm the publish within ${timeoutS} s (broker_transport_options.confirm_timeout)`)), timeoutS * 1000);
      try {
        ch.publish(target.exchange, target.routingKey, message.body, opts, (err: unknown) => {
          clearTimeout(timer);
          if (err) reject(new PublishError(`RabbitMQ did not confirm the publish to ${this.displayUrl}: ${(err as Error)?.message ?? 'nack'}`));
          else resolve();
        });
      } catch (err) {
        clearTimeout(timer);
        reject(new PublishError(`Publish to ${this.displayUrl} failed: ${(err as Error).message}`));
      }
    });
  }

  /** One attempt of a bulk publish of `batch.left`; on failure `batch.left` keeps only the unconfirmed items. */
  private async publishManyOnce(batch: { left: PublishItem[] }): Promise<void> {
    const items = batch.left;
    const { ch, declared } = await this.confirmChannel();
    for (const { target } of items) if (!declared.has(targetKey(target))) await this.declareTarget(ch, declared, target);
    const mode = defaultDeliveryMode(this.ctx.settings);
    const confirmed = new Array<boolean>(items.length).fill(false);
    let firstError: Error | undefined;
    let pending = 0;
    let settle!: () => void;
    const allSettled = new Promise<void>((resolve) => { settle = resolve; });
    for (let i = 0; i < items.length; i++) {
      const { message, target } = items[i]!;
      try {
        pending++;
        ch.publish(target.exchange, target.routingKey, message.body, publishOptions(message, mode), (err: unknown) => {
          if (err) firstError ??= new PublishError(`RabbitMQ did not confirm the publish to ${this.displayUrl}: ${(err as Error)?.message ?? 'nack'}`);
          else confirmed[i] = true;
          if (--pending === 0) settle();
        });
      } catch (err) {
        pending--;
        firstError ??= new PublishError(`Publish to ${this.displayUrl} failed: ${(err as Error).message}`);
        break; // the channel is gone: the rest goes out on the next attempt
      }
    }
    if (pending === 0) settle();
    const timeoutS = this.confirmTimeoutS;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      allSettled.then(() => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), timeoutS * 1000); }),
    ]);
    clearTimeout(timer);
    if (timedOut) firstError ??= new PublishError(`RabbitMQ did not confirm ${pending} of ${items.length} bulk publishes within ${timeoutS} s (broker_transport_options.confirm_timeout)`);
    const left = items.filter((_, i) => !confirmed[i]);
    if (left.length === 0) return;
    batch.left = left;
    throw firstError ?? new PublishError(`RabbitMQ did not confirm ${left.length} of ${items.length} bulk publishes`);
  }

  async consume(queues: string[], handler: DeliveryHandler, opts: ConsumeOptions): Promise<Consumer> {
    const consumer = new AmqpConsumer(this.endpoint, this.ctx.settings, this.ctx.logger, queues, handler, opts.prefetch, opts.onFailure);
    this.consumers.add(consumer);
    try {
      await consumer.start();
    } catch (err) {
      this.consumers.delete(consumer);
      await consumer.close();
      throw err;
    }
    return consumer;
  }

  /** Run one operation on a short-lived channel, so a 404 for a missing queue does not close the confirm channel. */
  private async withChannel<T>(fn: (ch: ConfirmChannel) => Promise<T>, onNotFound: T): Promise<T> {
    const model = await this.conn.open();
    const ch = await model.createConfirmChannel();
    ch.on('error', () => undefined);
    try {
      return await fn(ch);
    } catch (err) {
      if (/NOT_FOUND|NOT-FOUND/.test(String((err as Error).message))) return onNotFound;
      throw err;
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  async purge(queue: string): Promise<number> {
    return this.withChannel(async (ch) => (await ch.purgeQueue(queue)).messageCount, 0);
  }

  async queueLength(queue: string): Promise<number> {
    return this.withChannel(async (ch) => (await ch.checkQueue(queue)).messageCount, 0);
  }

  async peek(queue: string, limit: number): Promise<string[]> {
    return this.withChannel(async (ch) => {
      const out: string[] = [];
      // basic.get without ack, then one nack of them all with requeue: each goes back to the queue's head.
      let last: GetMessage | false = false;
      while (out.length < limit) {
        const m = await ch.get(queue, { noAck: false });
        if (!m) break;
        last = m;
        out.push(m.content.toString('utf8'));
      }
      if (last) ch.nack(last, true, true);
      return out;
    }, []);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.fanout.close();
    for (const c of this.consumers) await c.close();
    this.consumers.clear();
    this.channel = null;
    await this.conn.close();
  }
}
