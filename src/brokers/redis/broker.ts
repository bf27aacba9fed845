// The Redis transport: kombu's key layout, so Python and TypeScript workers share queues.
import type { Redis } from 'ioredis';
import type { Broker, BrokerContext, Consumer, ConsumeOptions, DeliveryHandler, PublishItem, PublishTarget, SharedBuckets } from '../types.js';
import type { Message } from '../../protocol/message.js';
import { encodeEnvelope } from '../../protocol/envelope.js';
import type { TransportOptions } from '../../app/settings.js';
import { parseRedisUrl, type RedisTarget } from './url.js';
import { connectClient, closeClient, ConnectionBudget, writeTogether } from './connection.js';
import { KeyLayout } from './keys.js';
import { scriptsFor, type ScriptClient } from './scripts.js';
import { RedisConsumer } from './consumer.js';
import { resolveQueues } from './restore.js';
import { RedisFanout } from './fanout.js';
import { subscribeReplies } from './replies.js';
import { redisBuckets } from './rate-limit-buckets.js';
import type { BroadcastSubscription, QuotedEvents } from '../types.js';

/** A bulk publish sends what it has encoded every this many messages. */
export const SEND_EVERY = 250;
/** Most values one bulk LPUSH carries; a longer run for one list is split into several commands. */
export const LPUSH_CHUNK = 1000;

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
  private readonly fanout: RedisFanout;
  private readonly budget: ConnectionBudget;
  private evictionChecked = false;

  constructor(url: string, private readonly ctx: BrokerContext) {
    this.transportOptions = { ...(ctx.settings.broker_transport_options ?? {}) };
    const t = this.transportOptions;
    this.target = parseRedisUrl(url, t, ctx.settings.broker_use_ssl);
    this.displayUrl = this.target.displayUrl;
    this.keys = new KeyLayout(t);
    this.fanout = new RedisFanout({
      commandClient: () => this.commandClient(), db: this.target.db, transportOptions: t, logger: ctx.logger,
      newSubscriber: () => connectClient(this.target, this.transportOptions, { blocking: true, idleExit: ctx.idleExit }),
    });
    this.budget = new ConnectionBudget(t.max_connections != null ? Number(t.max_connections) : undefined, 'broker_transport_options.max_connections');
  }

  get visibilityTimeout(): number {
    return Number(this.transportOptions.visibility_timeout ?? 3600);
  }

  connect(): Promise<void> {
    return (this.connecting ??= (async () => {
      const connectTimeout = Number(this.ctx.settings.broker_connection_timeout ?? 4);
      this.budget.take('command');
      this.client = await connectClient(this.target, this.transportOptions, { connectTimeout: Math.max(connectTimeout, 2), idleExit: this.ctx.idleExit });
      this.client.on('error', (err) => this.ctx.logger.debug(`redis: ${err.message}`));
      this.scripts = scriptsFor(this.client);
    })().catch((err) => {
      this.budget.give();
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
        writeTogether(client);
        await client.lpush(this.keys.queueKey(q, step), payload);
      }),
    );
  }

  /**
   * Bulk publish: the routing of `publish` (exchange bindings, priority sub-lists), then one
   * `LPUSH key v1 v2 …` per list and chunk of LPUSH_CHUNK values, in a pipeline per SEND_EVERY
   * encoded messages (sent while the rest are encoded); it resolves once Redis has them all. LPUSH inserts
   * its values left to right, so a consumer popping from the right sees them in input order, as with
   * one LPUSH per message. Not atomic: after an error some chunks may be queued already.
   */
  async publishMany(items: PublishItem[]): Promise<void> {
    if (items.length === 0) return;
    const { client } = await this.ready();
    // Queues on the default exchange first, as sequential publishes would have declared them before
    // a later message of the batch is routed through their exchange binding.
    const direct = new Set<string>();
    for (const { target } of items) if (target.exchange === '' && !this.declared.has(target.routingKey)) direct.add(target.routingKey);
    if (direct.size > 0) await Promise.all([...direct].map((q) => this.declareQueue(client, q)));
    const routes = new Map<string, string[]>();
    const lists = new Map<string, string[]>();
    const undeclared = new Set<string>();
    const sent: Promise<[Error | null, unknown][] | null>[] = [];
    let encoded = 0;
    // Encoded messages leave in pipelines of SEND_EVERY while the rest are still being encoded, so
    // Redis stores the first ones while this process works on the next. Successive LPUSHes to a
    // list on one connection leave it in the order one LPUSH of the whole batch would.
    const send = () => {
      const pipe = client.pipeline();
      for (const q of undeclared) if (!this.declared.has(q)) pipe.sadd(this.keys.bindingKey(q), this.keys.bindingMember(q, q));
      for (const [key, values] of lists) {
        for (let i = 0; i < values.length; i += LPUSH_CHUNK) pipe.lpush(key, ...values.slice(i, i + LPUSH_CHUNK));
      }
      lists.clear();
      encoded = 0;
      sent.push(pipe.exec());
    };
    for (const { message, target } of items) {
      let queues: string[];
      if (target.exchange === '') {
        queues = [target.routingKey];
      } else {
        const route = `${target.exchange}\u0000${target.routingKey}`;
        let resolved = routes.get(route);
        if (!resolved) routes.set(route, (resolved = await resolveQueues(client, this.keys, target.exchange, target.routingKey)));
        queues = resolved;
      }
      const payload = encodeEnvelope(message, { exchange: target.exchange, routing_key: target.routingKey });
      const step = this.keys.stepFor(message.properties.priority);
      for (const q of queues) {
        if (!this.declared.has(q)) undeclared.add(q);
        const key = this.keys.queueKey(q, step);
        let values = lists.get(key);
        if (!values) lists.set(key, (values = []));
        values.push(payload);
      }
      if (++encoded >= SEND_EVERY) send();
    }
    if (encoded > 0) send();
    const replies = (await Promise.all(sent)).flatMap((r) => r ?? []);
    const failed = replies.find(([err]) => err);
    if (failed) throw failed[0];
    for (const q of undeclared) this.declared.add(q);
  }

  async consume(queues: string[], handler: DeliveryHandler, opts: ConsumeOptions): Promise<Consumer> {
    if (queues.length === 0) throw new Error('consume() needs at least one queue');
    const { client, scripts } = await this.ready();
    await this.requireServerVersion(client);
    await this.warnIfKeysCanBeEvicted(client);
    for (const q of queues) await this.declareQueue(client, q);
    const consumer = new RedisConsumer(
      {
        client,
        scripts,
        keys: this.keys,
        logger: this.ctx.logger,
        visibilityTimeout: this.visibilityTimeout,
        retry: this.ctx.settings,
        displayUrl: this.displayUrl,
        user: this.target.options.username ?? 'default',
        onFailure: opts.onFailure,
        newBlockingClient: async () => {
          this.budget.take('blocking (consumer)');
          let b: Redis;
          try {
            b = await connectClient(this.target, this.transportOptions, { blocking: true, blockSeconds: 1 });
          } catch (err) {
            this.budget.give();
            throw err;
          }
          b.on('error', (err) => this.ctx.logger.debug(`redis (blocking): ${err.message}`));
          this.blockingClients.add(b);
          b.once('end', () => {
            if (this.blockingClients.delete(b)) this.budget.give();
          });
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

  /**
   * Redis may delete queue lists, bindings and unacked entries when maxmemory is reached under any
   * policy but noeviction: say so once, when a worker starts consuming (CONFIG may be disabled).
   */
  private versionChecked = false;

  /** A worker needs Redis 6.2 (BLMOVE, SET … GET): an older server fails the start with that said. */
  private async requireServerVersion(client: Redis): Promise<void> {
    if (this.versionChecked) return;
    let info: string;
    try {
      info = await client.info('server');
    } catch (err) {
      this.ctx.logger.debug(`Could not read the server version of ${this.displayUrl}: ${(err as Error).message}`);
      return;
    }
    const problem = redisVersionProblem(info, this.displayUrl);
    if (problem) throw new Error(problem);
    this.versionChecked = true;
  }

  private async warnIfKeysCanBeEvicted(client: Redis): Promise<void> {
    if (this.evictionChecked) return;
    this.evictionChecked = true;
    let policy: string | undefined;
    try {
      const reply = (await client.call('CONFIG', 'GET', 'maxmemory-policy')) as string[];
      policy = reply[1];
    } catch (err) {
      this.ctx.logger.debug(`Could not read maxmemory-policy from ${this.displayUrl}: ${(err as Error).message}`);
      return;
    }
    if (!policy || policy === 'noeviction') return;
    const what = policy.startsWith('volatile')
      ? 'keys with an expiry (results, consumer heartbeats)'
      : 'any key, including queues, _kombu.binding.* and unacked messages';
    this.ctx.logger.warning(
      `Redis at ${this.displayUrl} has maxmemory-policy '${policy}': when maxmemory is reached it evicts ${what}, which loses tasks ` +
        `or raises InconsistencyError. Set maxmemory-policy to noeviction (redis.conf or CONFIG SET maxmemory-policy noeviction) and size maxmemory for your backlog.`,
    );
  }

  /** Fanout (celery.pidbox) over pub/sub: see fanout.ts. */
  broadcast(exchange: string, message: Message): Promise<void> {
    return this.fanout.broadcast(exchange, message);
  }

  subscribeBroadcast(exchange: string, _queueName: string, handler: (message: Message) => void): Promise<BroadcastSubscription> {
    return this.fanout.subscribe(exchange, handler);
  }

  /** Celery events: PUBLISH on '/{db}.celeryev/<routing key>', as kombu's fanout exchange on Redis. */
  publishEvent(exchange: string, routingKey: string, message: Message): Promise<void> {
    return this.fanout.broadcast(exchange, message, routingKey);
  }

  /** publishEvent for events given as text: see RedisFanout.publishEventJson. */
  publishEventJson(exchange: string, routingKey: string, body: QuotedEvents): Promise<void> {
    return this.fanout.publishEventJson(exchange, routingKey, body);
  }

  subscribeEvents(exchange: string, _queueName: string, bindingKey: string, handler: (message: Message) => void): Promise<BroadcastSubscription> {
    return this.fanout.subscribe(exchange, handler, bindingKey);
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

  async peek(queue: string, limit: number): Promise<string[]> {
    const { client } = await this.ready();
    const out: string[] = [];
    // kombu pops from the right end of a list: the next message out is the last element.
    for (const k of this.keys.queueKeys(queue)) {
      if (out.length >= limit) break;
      out.push(...(await client.lrange(k, -(limit - out.length), -1)).reverse());
    }
    return out;
  }

  /** A remote-control reply: a publish to the reply exchange, routed to the client's bound reply queue. */
  sendReply(to: PublishTarget, message: Message): Promise<void> {
    return this.publish(message, to);
  }

  async subscribeReplies(exchange: string, routingKey: string, handler: (message: Message) => void): Promise<BroadcastSubscription> {
    const { client } = await this.ready();
    return subscribeReplies(client, () => connectClient(this.target, this.transportOptions, { blocking: true }), this.keys, this.ctx.logger, exchange, routingKey, handler);
  }

  /** global_rate_limit buckets on this Redis. */
  async sharedBuckets(): Promise<SharedBuckets> {
    return redisBuckets((await this.ready()).client, this.displayUrl);
  }

  async close(): Promise<void> {
    this.fanout.close();
    for (const c of this.consumers) await c.close().catch(() => undefined);
    this.consumers.clear();
    for (const b of this.blockingClients) b.disconnect();
    this.blockingClients.clear();
    await closeClient(this.client);
    if (this.client) this.budget.give();
    this.client = undefined;
    this.connecting = undefined;
  }
}

/**
 * Why a server whose `INFO server` reads `info` cannot host a Celeriac worker, or null when it can (or
 * does not say its version: Redis-compatible servers are given the benefit of the doubt).
 */
export function redisVersionProblem(info: string, where: string): string | null {
  const m = /^redis_version:(\d+)\.(\d+)/m.exec(info);
  if (!m) return null;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major > 6 || (major === 6 && minor >= 2)) return null;
  const version = /^redis_version:(\S+)/m.exec(info)![1];
  return `The Redis server at ${where} is version ${version}; a Celeriac worker needs Redis 6.2 or later (it waits with BLMOVE and stores results with SET … GET). Upgrade the server, or point broker_url at one that is 6.2 or later.`;
}
