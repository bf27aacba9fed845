// A worker's consumer: its own connection and channel, basic.qos = prefetch, manual acks, and recovery.
// When the channel or connection dies, RabbitMQ requeues every unacked delivery by itself; we reopen,
// redeclare the queues and basic.consume again. A delivery from a dead channel can no longer be acked
// (its tag means nothing on the new channel), so its ack/reject becomes a logged no-op.
import type { Channel, ConsumeMessage } from 'amqplib';
import type { Consumer, Delivery, DeliveryHandler } from '../types.js';
import type { Message } from '../../protocol/message.js';
import type { Logger } from '../../app/log.js';
import { retriesOnStartup, type Settings } from '../../app/settings.js';
import { AmqpConnection, maxConnectionRetries, reconnectDelay, sleep } from './connection.js';
import { declareTaskQueue, isQuorum, taskQueueSpec } from './topology.js';
import { toMessage } from './message.js';
import { QoS } from '../qos.js';
import { ConsumerRetries } from '../connection-retry.js';
import { BrokerConnectionError, explainChannelError } from './errors.js';
import type { AmqpEndpoint } from './url.js';

/** basic.qos prefetch_count is a 16-bit field. */
const PREFETCH_COUNT_MAX = 0xffff;

class AmqpDelivery implements Delivery {
  readonly message: Message;
  readonly exchange: string;
  readonly routingKey: string;
  readonly deliveryTag: string;
  readonly redelivered: boolean;
  private settled = false;

  constructor(private readonly consumer: AmqpConsumer, private readonly raw: ConsumeMessage, readonly queue: string, readonly channelId: number) {
    this.message = toMessage(raw);
    this.exchange = raw.fields.exchange;
    this.routingKey = raw.fields.routingKey;
    this.deliveryTag = String(raw.fields.deliveryTag);
    this.redelivered = raw.fields.redelivered;
  }

  get isSettled(): boolean {
    return this.settled;
  }

  async ack(): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    this.consumer.settle(this, this.raw, 'ack');
  }

  async reject(requeue: boolean): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    this.consumer.settle(this, this.raw, requeue ? 'requeue' : 'drop');
  }
}

export class AmqpConsumer implements Consumer {
  private readonly conn: AmqpConnection;
  private channel: Channel | null = null;
  /** Increases with every channel; a delivery is only settled on the channel it came from. */
  private channelId = 0;
  private consumerTags: string[] = [];
  /** Deliveries of the current channel not yet acked (held, in delivery tag order), the window and held ETA messages. */
  private readonly qos: QoS<number, AmqpDelivery>;
  private readonly pendingAcks = new Set<number>();
  private ackScheduled = false;
  private stopped = false;
  private closed = false;
  private recovering: Promise<void> | null = null;
  private started = false;
  /** The prefetch_count last sent with basic.qos (-1 before any). */
  private qosSent = -1;
  private qosDisabledLogged = false;
  private qosScheduled = false;
  private readonly retries: ConsumerRetries;
  /** Why the channel or connection went away last (named if the consumer gives up). */
  private lastLoss = 'the connection was lost';

  constructor(
    endpoint: AmqpEndpoint,
    private readonly settings: Settings,
    private readonly logger: Logger,
    private readonly queues: string[],
    private readonly handler: DeliveryHandler,
    prefetch: number,
    onFailure?: (err: Error) => void,
  ) {
    this.qos = new QoS(prefetch);
    this.conn = new AmqpConnection(endpoint, logger, 'consumer');
    this.retries = new ConsumerRetries({ settings, where: endpoint.displayUrl, logger, onFailure, stop: () => { this.stopped = true; } });
    this.conn.on('lost', (err?: Error) => {
      if (err) this.lastLoss = `the connection was lost (${err.message})`;
      this.scheduleRecovery();
    });
  }

  private get globalQos(): boolean {
    // Celery uses a per-channel limit on RabbitMQ, except for quorum queues, which do not support it.
    return !isQuorum(this.settings);
  }

  /** First start: retries what can be retried (broker_connection_retry_on_startup), fails on the rest. */
  async start(): Promise<void> {
    const retry = retriesOnStartup(this.settings);
    await this.conn.openWithRetry(retry ? maxConnectionRetries(this.settings.broker_connection_max_retries) : 0);
    await this.setup();
    this.started = true;
  }

  private async setup(): Promise<void> {
    const model = await this.conn.open();
    const ch = await model.createChannel();
    const id = ++this.channelId;
    ch.on('error', (err: Error) => {
      this.lastLoss = `the channel closed (${err.message})`;
      this.logger.warning(`AMQP consumer channel error on ${this.conn.endpoint.displayUrl}: ${err.message}`);
    });
    ch.on('close', () => this.onChannelClosed(id));
    this.channel = ch;
    this.consumerTags = [];
    let step = 'basic.qos';
    try {
      this.qosSent = this.qosCount();
      await ch.prefetch(this.qosSent, this.globalQos);
      for (const q of this.queues) {
        step = `declaring queue "${q}"`;
        await declareTaskQueue(ch, taskQueueSpec(q, this.settings));
      }
      for (const q of this.queues) {
        step = `consuming from queue "${q}"`;
        const { consumerTag } = await ch.consume(q, (m) => this.onMessage(m, q, id), { noAck: false });
        this.consumerTags.push(consumerTag);
      }
    } catch (err) {
      if (this.channel === ch) this.channel = null;
      await ch.close().catch(() => undefined);
      throw err instanceof BrokerConnectionError ? err : explainChannelError(err, this.conn.endpoint, step);
    }
    if (this.stopped) await this.cancelConsumers(ch);
  }

  private onMessage(m: ConsumeMessage | null, queue: string, id: number): void {
    if (m === null) {
      // basic.cancel from the server: the queue was deleted. Reopen, which redeclares it.
      this.logger.warning(`RabbitMQ cancelled the consumer of queue "${queue}" (queue deleted?); redeclaring it`);
      if (id === this.channelId) this.channel?.close().catch(() => undefined);
      return;
    }
    let d: AmqpDelivery;
    try {
      d = new AmqpDelivery(this, m, queue, id);
    } catch (err) {
      // Its properties cannot be read: dead-letter it (or drop it) rather than let the error reach amqplib's frame loop.
      this.logger.error(`Discarding an unreadable message from "${queue}" (delivery tag ${m.fields.deliveryTag}): ${(err as Error).message}. It is rejected without requeue (dead-lettered if the queue has a dead-letter exchange).`);
      if (id === this.channelId) this.channel?.nack(m, false, false);
      return;
    }
    this.qos.held.set(m.fields.deliveryTag, d);
    try {
      this.handler(d);
    } catch (err) {
      this.logger.error(`Delivery handler threw for delivery ${d.deliveryTag} from "${queue}": ${(err as Error).message}`);
    }
  }

  /** Called by a delivery: ack/reject on the channel it came from, or log that it will be redelivered. */
  settle(d: AmqpDelivery, raw: ConsumeMessage, how: 'ack' | 'requeue' | 'drop'): void {
    const ch = this.channel;
    if (d.channelId !== this.channelId || !ch) {
      const id = d.message.headers.id ?? d.message.properties.correlation_id ?? '?';
      this.logger.warning(`Not sending ${how === 'ack' ? 'ack' : 'reject'} for task ${String(id)} (delivery tag ${d.deliveryTag}): the channel it arrived on is gone, so RabbitMQ will redeliver it (possible duplicate)`);
      return;
    }
    if (how === 'ack') {
      // Acks made in one turn of the event loop leave as one basic.ack(multiple) where they are
      // contiguous: a frame (and a socket write) per task costs more than the task itself.
      this.pendingAcks.add(raw.fields.deliveryTag);
      if (!this.ackScheduled) {
        this.ackScheduled = true;
        setImmediate(() => this.flushAcks());
      }
      return;
    }
    this.qos.held.delete(raw.fields.deliveryTag);
    try {
      ch.reject(raw, how === 'requeue');
    } catch (err) {
      this.logger.warning(`Could not reject delivery ${d.deliveryTag}: ${(err as Error).message}; RabbitMQ will redeliver it`);
    }
  }

  /** Send the pending acks: one multiple-ack for the oldest contiguous run, single acks for the rest. */
  private flushAcks(): void {
    this.ackScheduled = false;
    const pending = this.pendingAcks;
    if (pending.size === 0) return;
    const ch = this.channel;
    if (!ch) return; // onChannelClosed already dropped them (RabbitMQ redelivers)
    let upTo = -1;
    for (const tag of this.qos.held.keys()) {
      if (!pending.has(tag)) break;
      upTo = tag;
      this.qos.held.delete(tag);
      pending.delete(tag);
    }
    try {
      if (upTo >= 0) ch.ack({ fields: { deliveryTag: upTo } } as ConsumeMessage, true);
      for (const tag of pending) {
        this.qos.held.delete(tag);
        ch.ack({ fields: { deliveryTag: tag } } as ConsumeMessage, false);
      }
    } catch (err) {
      this.logger.warning(`Could not ack ${pending.size + (upTo >= 0 ? 1 : 0)} deliveries: ${(err as Error).message}; RabbitMQ will redeliver them`);
    }
    pending.clear();
  }

  private onChannelClosed(id: number): void {
    if (id !== this.channelId) return;
    this.channel = null;
    if (this.pendingAcks.size) {
      this.logger.warning(`AMQP channel closed before ${this.pendingAcks.size} acks were sent; RabbitMQ will redeliver those tasks (possible duplicates)`);
      this.pendingAcks.clear();
    }
    if (this.qos.held.size) {
      this.logger.warning(`AMQP channel closed with ${this.qos.held.size} unacknowledged deliveries; RabbitMQ requeues them`);
      this.qos.held.clear();
    }
    this.scheduleRecovery();
  }

  private scheduleRecovery(): void {
    if (!this.started || this.closed || this.stopped || this.recovering) return;
    this.recovering = this.recover().finally(() => { this.recovering = null; });
  }

  /** Reopen and consume again, with Celery's retry settings; when they are spent the owner is told (onFailure). */
  private async recover(): Promise<void> {
    // broker_connection_retry=False: Celery shuts the worker down at the loss itself.
    if (this.retries.max === 0 && this.retries.failed(this.lastLoss, '')) return;
    for (let attempt = 0; !this.closed && !this.stopped; attempt++) {
      const delay = attempt === 0 && this.conn.isOpen ? 100 : reconnectDelay(attempt);
      await sleep(delay);
      if (this.closed || this.stopped) return;
      if (this.channel) return;
      try {
        await this.setup();
        this.retries.succeeded();
        this.logger.info(`Resumed consuming from ${this.queues.join(', ')} on ${this.conn.endpoint.displayUrl}`);
        return;
      } catch (err) {
        if (this.retries.failed((err as Error).message, `trying again in ${(reconnectDelay(attempt + 1) / 1000).toFixed(2)} seconds`)) return;
      }
    }
  }

  setPrefetch(n: number): void {
    this.qos.setPrefetch(n);
    this.applyQos();
  }

  setEtaHeld(n: number): void {
    this.qos.setEtaHeld(n);
    // One basic.qos per turn of the event loop, however many ETA messages arrived in it (Celery's qos.update).
    if (this.qosScheduled) return;
    this.qosScheduled = true;
    setImmediate(() => {
      this.qosScheduled = false;
      this.applyQos();
    });
  }

  /** basic.qos of the window plus the held ETA messages (kombu's QoS.set: above 65535, no limit). */
  private qosCount(): number {
    const n = this.qos.limit;
    if (n === 0) return 0;
    if (n <= PREFETCH_COUNT_MAX) return n;
    if (!this.qosDisabledLogged) this.logger.warning(`QoS: Disabled: prefetch_count exceeds ${PREFETCH_COUNT_MAX} (${this.qos.etaHeld} ETA messages held)`);
    this.qosDisabledLogged = true;
    return 0;
  }

  private applyQos(): void {
    const n = this.qosCount();
    if (n === this.qosSent) return;
    this.qosSent = n;
    this.channel?.prefetch(n, this.globalQos).catch((err: Error) => this.logger.warning(`basic.qos(${n}) failed: ${err.message}`));
  }

  private async cancelConsumers(ch: Channel): Promise<void> {
    const tags = this.consumerTags;
    this.consumerTags = [];
    for (const tag of tags) await ch.cancel(tag).catch(() => undefined);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.channel) await this.cancelConsumers(this.channel);
  }

  get heldCount(): number {
    return this.qos.held.size;
  }

  restoreUnacked(): Promise<number> {
    this.flushAcks();
    return this.qos.restoreUnacked(async (d) => {
      if (d.isSettled || d.channelId !== this.channelId || !this.channel) return false;
      await d.reject(true);
      return true;
    }, this.logger);
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.closed = true;
    this.flushAcks();
    const ch = this.channel;
    this.channel = null;
    this.channelId++;
    if (ch) await ch.close().catch(() => undefined);
    await this.conn.close();
  }
}
