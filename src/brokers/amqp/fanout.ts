// Fanout for remote control (celery.pidbox): a non-durable fanout exchange, one auto-delete queue per subscriber,
// declared as kombu's pidbox declares them so Python and TypeScript nodes share the exchange.
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Message } from '../../protocol/message.js';
import type { Logger } from '../../app/log.js';
import type { BroadcastSubscription } from '../types.js';
import { publishOptions, toMessage } from './message.js';

/** celery.app.control: control_queue_ttl 300 s, control_queue_expires 10 s. */
const CONTROL_QUEUE_ARGS = { 'x-message-ttl': 300_000, 'x-expires': 10_000 };

export class AmqpFanout {
  private channel: Promise<Channel> | null = null;
  private replyChannel: Promise<Channel> | null = null;
  private readonly subscriptions = new Set<{ close(): Promise<void> }>();
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

  async subscribe(exchange: string, queueName: string, handler: (message: Message) => void, how: { type: 'fanout' | 'direct'; routingKey: string } = { type: 'fanout', routingKey: '' }): Promise<BroadcastSubscription> {
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
      await c.assertExchange(exchange, how.type, { durable: false, autoDelete: false });
      await c.assertQueue(queueName, { durable: false, autoDelete: true, arguments: CONTROL_QUEUE_ARGS });
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
        await ch?.close().catch(() => undefined);
      },
    };
    this.subscriptions.add(sub);
    return sub;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of [...this.subscriptions]) await s.close();
    for (const ch of [this.channel, this.replyChannel]) if (ch) await ch.then((c) => c.close()).catch(() => undefined);
    this.channel = null;
    this.replyChannel = null;
  }
}
