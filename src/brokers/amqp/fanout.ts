// Fanout for remote control (celery.pidbox): a non-durable fanout exchange, one auto-delete queue per subscriber,
// declared as kombu's pidbox declares them so Python and TypeScript nodes share the exchange. Celery events
// (celeryev) use the same channels on a durable topic exchange, as celery.events declares it.
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Message } from '../../protocol/message.js';
import type { Logger } from '../../app/log.js';
import type { BroadcastSubscription } from '../types.js';
import { publishOptions, toMessage } from './message.js';

/** celery.app.control: control_queue_ttl 300 s, control_queue_expires 10 s. */
const CONTROL_QUEUE_ARGS = { 'x-message-ttl': 300_000, 'x-expires': 10_000 };

/** A channel close waits this long for the broker's answer: a broker that stopped answering never sends it. */
const CLOSE_WAIT_MS = 2000;

/** Close a channel, giving up after `ms` (amqplib leaves the close pending when the connection dies meanwhile). */
async function closeWithin(ch: Channel, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([ch.close().catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

/** How a subscriber's queue is bound: pidbox (fanout, non-durable exchange) or events (topic, durable). */
interface Binding {
  type: 'fanout' | 'direct' | 'topic';
  routingKey: string;
  durable?: boolean;
  queueArgs?: Record<string, number>;
}

export class AmqpFanout {
  private channel: Promise<Channel> | null = null;
  private replyChannel: Promise<Channel> | null = null;
  private readonly subscriptions = new Set<{ close(): Promise<void> }>();
  private readonly eventExchanges = new Set<string>();
  private closed = false;

  constructor(private readonly open: () => Promise<ChannelModel>, private readonly logger: Logger) {}

  /** The channel kept under `slot`, opened on first use and again after it closed. */
  private channelOf(slot: 'channel' | 'replyChannel', what: string): Promise<Channel> {
    const opened = (this[slot] ??= (async () => {
      const ch = await (await this.open()).createChannel();
      ch.on('error', (err: Error) => this.logger.warning(`AMQP ${what} channel error: ${err.message}`));
      ch.on('close', () => { if (this[slot] === opened) this[slot] = null; });
      return ch;
    })().catch((err) => {
      this[slot] = null;
      throw err;
    }));
    return opened;
  }

  async broadcast(exchange: string, message: Message): Promise<void> {
    const ch = await this.channelOf('channel', 'fanout');
    await ch.assertExchange(exchange, 'fanout', { durable: false, autoDelete: false });
    ch.publish(exchange, '', message.body, publishOptions(message, 1));
  }

  /** A Celery event: transient, on the durable topic exchange (declared once: it outlives our channels). */
  async publishEvent(exchange: string, routingKey: string, message: Message): Promise<void> {
    const ch = await this.channelOf('channel', 'fanout');
    if (!this.eventExchanges.has(exchange)) {
      await ch.assertExchange(exchange, 'topic', { durable: true, autoDelete: false });
      this.eventExchanges.add(exchange);
    }
    ch.publish(exchange, routingKey, message.body, publishOptions(message, 1));
  }

  /** An event receiver's queue (Celery's celeryev.<id>): auto-delete, with event_queue_ttl / event_queue_expires. */
  subscribeEvents(exchange: string, queueName: string, bindingKey: string, handler: (message: Message) => void, ttlS: number, expiresS: number): Promise<BroadcastSubscription> {
    const queueArgs: Record<string, number> = {};
    if (ttlS > 0) queueArgs['x-message-ttl'] = Math.round(ttlS * 1000);
    if (expiresS > 0) queueArgs['x-expires'] = Math.round(expiresS * 1000);
    return this.subscribe(exchange, queueName, handler, { type: 'topic', routingKey: bindingKey, durable: true, queueArgs });
  }

  /**
   * A remote-control reply: declare the client's direct reply exchange (as kombu's _publish_reply
   * does) and publish to its routing key, on a channel of its own so a failure cannot cost a broadcast.
   */
  async reply(exchange: string, routingKey: string, message: Message): Promise<void> {
    const ch = await this.channelOf('replyChannel', 'reply');
    await ch.assertExchange(exchange, 'direct', { durable: false, autoDelete: false });
    ch.publish(exchange, routingKey, message.body, publishOptions(message, 1));
  }

  /** The client's side of replies: its reply queue `<routing key>.<exchange>`, bound with its routing key. */
  subscribeReplies(exchange: string, routingKey: string, handler: (message: Message) => void): Promise<BroadcastSubscription> {
    return this.subscribe(exchange, `${routingKey}.${exchange}`, handler, { type: 'direct', routingKey });
  }

  async subscribe(exchange: string, queueName: string, handler: (message: Message) => void, how: Binding = { type: 'fanout', routingKey: '' }): Promise<BroadcastSubscription> {
    let ch: Channel | null = null;
    let stopped = false;
    const attach = async (): Promise<void> => {
      const c = await (await this.open()).createChannel();
      ch = c;
      c.on('error', (err: Error) => this.logger.warning(`AMQP ${exchange} subscription channel error: ${err.message}`));
      c.on('close', () => {
        // Resubscribe after a connection loss; broadcasts sent meanwhile are missed, as with kombu.
        if (!stopped && !this.closed) setTimeout(() => void attach().catch((err) => this.logger.warning(`Could not resubscribe to ${exchange}: ${(err as Error).message}`)), 1000).unref();
      });
      await c.assertExchange(exchange, how.type, { durable: how.durable ?? false, autoDelete: false });
      await c.assertQueue(queueName, { durable: false, autoDelete: true, arguments: how.queueArgs ?? CONTROL_QUEUE_ARGS });
      await c.bindQueue(queueName, exchange, how.routingKey);
      await c.consume(queueName, (raw: ConsumeMessage | null) => {
        if (raw) handler(toMessage(raw));
      }, { noAck: true });
    };
    await attach();
    const sub = {
      close: async () => {
        stopped = true;
        this.subscriptions.delete(sub);
        if (ch) await closeWithin(ch, CLOSE_WAIT_MS);
      },
    };
    this.subscriptions.add(sub);
    return sub;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of [...this.subscriptions]) await s.close();
    for (const ch of [this.channel, this.replyChannel]) {
      if (!ch) continue;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ch.then((c) => closeWithin(c, CLOSE_WAIT_MS)).catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, CLOSE_WAIT_MS)))]);
      clearTimeout(timer);
    }
    this.channel = null;
    this.replyChannel = null;
  }
}
