// Fanout over Redis pub/sub, as kombu does it: PUBLISH/PSUBSCRIBE on '/{db}.<exchange>' (fanout_prefix),
// with '/<routing key>' appended when there is one (fanout_patterns). Used for celery.pidbox remote
// control (no routing key) and the celeryev event stream (routing key = event type). Wired into RedisBroker.
import type { Redis } from 'ioredis';
import type { Message } from '../../protocol/message.js';
import { decodeEnvelope, encodeEnvelope, eventEnvelopeEnds } from '../../protocol/envelope.js';
import { publishWire, sendPublishWire } from './resp.js';
import { writeTogether } from './connection.js';
import type { TransportOptions } from '../../app/settings.js';
import type { Logger } from '../../app/log.js';
import type { BroadcastSubscription, QuotedEvents } from '../types.js';

export interface FanoutDeps {
  commandClient: () => Promise<Redis>;
  /** A fresh connection: a subscribed connection cannot run other commands. */
  newSubscriber: () => Promise<Redis>;
  db: number;
  transportOptions: TransportOptions;
  logger: Logger;
}

/** kombu's keyprefix_fanout: '/{db}.' by default, a custom string, or '' when fanout_prefix is false. */
export function fanoutPrefix(db: number, opts: TransportOptions): string {
  const p = (opts as Record<string, unknown>).fanout_prefix;
  if (p === false) return '';
  if (typeof p === 'string') return p;
  return `/${db}.`;
}

export class RedisFanout {
  private readonly subscribers = new Set<Redis>();

  constructor(private readonly deps: FanoutDeps) {}

  private channel(exchange: string): string {
    return fanoutPrefix(this.deps.db, this.deps.transportOptions) + exchange;
  }

  /** kombu's publish/subscribe topic: '/<routing key>' follows the exchange unless fanout_patterns is false. */
  private topic(exchange: string, routingKey: string): string {
    const patterns = (this.deps.transportOptions as Record<string, unknown>).fanout_patterns !== false;
    return this.channel(exchange) + (routingKey && patterns ? `/${routingKey}` : '');
  }

  async broadcast(exchange: string, message: Message, routingKey = ''): Promise<void> {
    const client = await this.deps.commandClient();
    await client.publish(this.topic(exchange, routingKey), encodeEnvelope(message, { exchange, routing_key: routingKey }));
  }

  /**
   * Celery events given as text (the event dispatcher's messages): the envelope is written around them
   * directly (eventEnvelopeEnds: the body as text, no base64), straight into the RESP bytes of
   * the PUBLISH (publishWire: no joined string, no copy by ioredis), and the publishes of one turn leave
   * the socket in one write.
   */
  async publishEventJson(exchange: string, routingKey: string, body: QuotedEvents): Promise<void> {
    const client = await this.deps.commandClient();
    const [head, tail] = eventEnvelopeEnds(body.list, body.hostname, { exchange, routing_key: routingKey });
    const wire = publishWire(this.topic(exchange, routingKey), head, body.events, tail);
    writeTogether(client);
    await sendPublishWire(client, wire);
  }

  /** `bindingKey` as kombu binds a fanout queue: '#' becomes the pub/sub wildcard '*'. */
  async subscribe(exchange: string, handler: (message: Message) => void, bindingKey = ''): Promise<BroadcastSubscription> {
    const sub = await this.deps.newSubscriber();
    this.subscribers.add(sub);
    const pattern = this.topic(exchange, bindingKey.replaceAll('#', '*'));
    sub.on('pmessage', (_pattern: string, _channel: string, text: string) => {
      let message: Message;
      try {
        message = decodeEnvelope(text).message;
      } catch (err) {
        this.deps.logger.warning(`Discarding an unreadable ${exchange} broadcast: ${(err as Error).message}`);
        return;
      }
      handler(message);
    });
    // ioredis re-subscribes by itself after a reconnect.
    await sub.psubscribe(pattern);
    return {
      close: async () => {
        this.subscribers.delete(sub);
        sub.disconnect();
      },
    };
  }

  close(): void {
    for (const s of this.subscribers) s.disconnect();
    this.subscribers.clear();
  }
}
