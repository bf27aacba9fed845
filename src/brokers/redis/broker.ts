// The Redis transport: kombu's key layout, so Python and TypeScript workers share queues.
import type { Redis } from 'ioredis';
import type { Broker, BrokerContext, Consumer, ConsumeOptions, DeliveryHandler, PublishTarget } from '../types.js';
import type { Message } from '../../protocol/message.js';
import { encodeEnvelope } from '../../protocol/envelope.js';
import type { TransportOptions } from '../../app/settings.js';
import { parseRedisUrl, type RedisTarget } from './url.js';
import { connectClient, closeClient } from './connection.js';
import { KeyLayout } from './keys.js';
import { scriptsFor, type ScriptClient } from './scripts.js';
import { RedisConsumer, resolveQueues } from './consumer.js';

export class RedisBroker implements Broker {
  readonly transport = 'redis';
  readonly displayUrl: string;
  private readonly target: RedisTarget;
  private readonly transportOptions: TransportOptions;
  readonly keys: KeyLayout;
  private client: Redis | undefined;
  private scripts: ScriptClient | undefined;
  private connecting: Promise<void> | undefined;
  private readonly declared = new Set<string>();
  private readonly consumers = new Set<RedisConsumer>();
  private readonly blockingClients = new Set<Redis>();

  constructor(url: string, private readonly ctx: BrokerContext) {
    this.transportOptions = { ...(ctx.settings.broker_transport_options ?? {}) };
    const t = this.transportOptions;
    if (t.socket_timeout == null && ctx.settings.redis_socket_timeout != null) t.socket_timeout = ctx.settings.redis_socket_timeout;
    if (t.socket_connect_timeout == null && ctx.settings.redis_socket_connect_timeout != null) t.socket_connect_timeout = ctx.settings.redis_socket_connect_timeout;
    this.target = parseRedisUrl(url, t, ctx.settings.broker_use_ssl);
    this.displayUrl = this.target.displayUrl;
    this.keys = new KeyLayout(t);
  }

  get visibilityTimeout(): number {
    return Number(this.transportOptions.visibility_timeout ?? 3600);
  }

  connect(): Promise<void> {
    return (this.connecting ??= (async () => {
      const connectTimeout = Number(this.ctx.settings.broker_connection_timeout ?? 4);
      this.client = await connectClient(this.target, this.transportOptions, { connectTimeout: Math.max(connectTimeout, 2) });
      this.client.on('error', (err) => this.ctx.logger.debug(`redis: ${err.message}`));
      this.scripts = scriptsFor(this.client);
    })().catch((err) => {
      this.connecting = undefined;
      throw err;
    }));
  }

  private async ready(): Promise<{ client: Redis; scripts: ScriptClient }> {
    await this.connect();
    return { client: this.client!, scripts: this.scripts! };
  }

  /** The redis client for commands (used by tests and tools). */
  async commandClient(): Promise<Redis> {
    return (await this.ready()).client;
  }

  /** kombu's queue_bind for Celery's default routing: exchange = queue name, routing key = queue name. */
  private async declareQueue(client: Redis, queue: string): Promise<void> {
    if (this.declared.has(queue)) return;
    await client.sadd(this.keys.bindingKey(queue), this.keys.bindingMember(queue, queue));
    this.declared.add(queue);
  }

  async publish(message: Message, target: PublishTarget): Promise<void> {
    const { client } = await this.ready();
    const queues = target.exchange === '' ? [target.routingKey] : await resolveQueues(client, this.keys, target.exchange, target.routingKey);
    const payload = encodeEnvelope(message, { exchange: target.exchange, routing_key: target.routingKey });
    const step = this.keys.stepFor(message.properties.priority);
    await Promise.all(
      queues.map(async (q) => {
        if (!this.declared.has(q)) await this.declareQueue(client, q);
        await client.lpush(this.keys.queueKey(q, step), payload);
      }),
    );
  }

  async consume(queues: string[], handler: DeliveryHandler, opts: ConsumeOptions): Promise<Consumer> {
    if (queues.length === 0) throw new Error('consume() needs at least one queue');
    const { client, scripts } = await this.ready();
    for (const q of queues) await this.declareQueue(client, q);
    const consumer = new RedisConsumer(
      {
        client,
        scripts,
        keys: this.keys,
        logger: this.ctx.logger,
        visibilityTimeout: this.visibilityTimeout,
        newBlockingClient: async () => {
          const b = await connectClient(this.target, this.transportOptions, { blocking: true });
          b.on('error', (err) => this.ctx.logger.debug(`redis (blocking): ${err.message}`));
          this.blockingClients.add(b);
          b.once('end', () => this.blockingClients.delete(b));
          return b;
        },
      },
      queues,
      handler,
      opts.prefetch,
    );
    this.consumers.add(consumer);
    await consumer.start();
    return consumer;
  }

  async purge(queue: string): Promise<number> {
    const { client } = await this.ready();
    const keys = this.keys.queueKeys(queue);
    const pipe = client.multi();
    for (const k of keys) pipe.llen(k);
    for (const k of keys) pipe.del(k);
    const res = (await pipe.exec()) ?? [];
    return res.slice(0, keys.length).reduce((n, [, v]) => n + Number(v ?? 0), 0);
  }

  async queueLength(queue: string): Promise<number> {
    const { client } = await this.ready();
    const lens = await Promise.all(this.keys.queueKeys(queue).map((k) => client.llen(k)));
    return lens.reduce((a, b) => a + b, 0);
  }

  async close(): Promise<void> {
    for (const c of this.consumers) await c.close().catch(() => undefined);
    this.consumers.clear();
    for (const b of this.blockingClients) b.disconnect();
    this.blockingClients.clear();
    await closeClient(this.client);
    this.client = undefined;
    this.connecting = undefined;
  }
}
