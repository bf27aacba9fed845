// The embedded broker: Celery messages in a SQLite file that several processes on one machine share.
import { encodeEnvelope } from '../../protocol/envelope.js';
import type { Message } from '../../protocol/message.js';
import type { Logger } from '../../app/log.js';
import type { Settings } from '../../app/settings.js';
import type { BroadcastSubscription, Broker, BrokerContext, ConsumeOptions, Consumer, DeliveryHandler, PublishItem, PublishTarget, SharedBuckets } from '../types.js';
import { broadcast, BROADCAST_SCHEMA, subscribe } from './fanout.js';
import { openDatabase, type SqliteDatabase } from './database.js';
import { sqliteBuckets } from './rate-limits.js';
import { replyChannel } from '../reply-channel.js';
import { countVisible, insertMessage, MESSAGES_SCHEMA, peekVisible, purgeVisible } from './messages.js';
import { SqliteConsumer } from './consumer.js';
import type { RetrySettings } from '../connection-retry.js';
import { parseSqliteUrl, type SqliteLocation } from './url.js';

/** Without renewal a lease would have to outlast the longest task; with it, it only bounds recovery. */
export const DEFAULT_LEASE_SECONDS = 30;
const MIN_POLL_MS = 20;
const DEFAULT_MAX_POLL_MS = 250;

export interface SqliteBrokerOptions {
  leaseMs: number;
  minPollMs: number;
  maxPollMs: number;
}

/** broker_transport_options: visibility_timeout (s) is the lease, polling_interval (s) the longest idle poll. */
export function brokerOptionsFrom(settings: Settings): SqliteBrokerOptions {
  const t = settings.broker_transport_options ?? {};
  const vt = Number(t.visibility_timeout);
  const pi = Number(t.polling_interval);
  return {
    leaseMs: Number.isFinite(vt) && vt > 0 ? vt * 1000 : DEFAULT_LEASE_SECONDS * 1000,
    minPollMs: MIN_POLL_MS,
    maxPollMs: Number.isFinite(pi) && pi > 0 ? Math.max(MIN_POLL_MS, pi * 1000) : DEFAULT_MAX_POLL_MS,
  };
}

export class SqliteBroker implements Broker {
  readonly transport = 'sqlite';
  readonly displayUrl: string;
  private readonly location: SqliteLocation;
  private db: SqliteDatabase | null = null;
  private readonly consumers = new Set<SqliteConsumer>();
  private readonly subscriptions = new Set<BroadcastSubscription>();

  constructor(url: string, private readonly logger: Logger, private readonly opts: SqliteBrokerOptions, private readonly retry: Partial<RetrySettings> = {}) {
    this.location = parseSqliteUrl(url);
    this.displayUrl = url;
  }

  /** The connection, for tests and stats. */
  get database(): SqliteDatabase {
    if (!this.db) throw new Error(`Embedded broker ${this.displayUrl} is not connected: call connect() first`);
    return this.db;
  }

  async connect(): Promise<void> {
    if (this.db) return;
    const db = await openDatabase(this.location);
    try {
      await db.ensureSchema('messages', MESSAGES_SCHEMA);
      await db.ensureSchema('broadcast', BROADCAST_SCHEMA);
    } catch (err) {
      await db.release();
      throw err;
    }
    this.db = db;
  }

  async publish(message: Message, target: PublishTarget): Promise<void> {
    const db = this.database;
    const row = toRow(message, target);
    await db.write((d) => insertMessage(d, row.queue, row.priority, row.payload, Date.now()));
    db.events.emit('publish', row.queue);
  }

  /** Bulk publish: every row inserted in one write transaction, in input order. */
  async publishMany(items: PublishItem[]): Promise<void> {
    if (items.length === 0) return;
    const db = this.database;
    const rows = items.map(({ message, target }) => toRow(message, target));
    await db.write((d) => {
      const now = Date.now();
      for (const r of rows) insertMessage(d, r.queue, r.priority, r.payload, now);
    });
    for (const q of new Set(rows.map((r) => r.queue))) db.events.emit('publish', q);
  }

  async consume(queues: string[], handler: DeliveryHandler, opts: ConsumeOptions): Promise<Consumer> {
    if (queues.length === 0) throw new Error('Embedded broker: consume() needs at least one queue');
    const c = new SqliteConsumer(this.database, [...new Set(queues)], handler, { ...this.opts, prefetch: opts.prefetch, retry: this.retry, onFailure: opts.onFailure }, this.logger);
    this.consumers.add(c);
    c.start();
    return c;
  }

  async purge(queue: string): Promise<number> {
    return this.database.write((d) => purgeVisible(d, queue, Date.now()));
  }

  async queueLength(queue: string): Promise<number> {
    return this.database.read((d) => countVisible(d, queue, Date.now()));
  }

  async peek(queue: string, limit: number): Promise<string[]> {
    return this.database.read((d) => peekVisible(d, queue, Date.now(), limit));
  }

  /** Remote control fanout (celery.pidbox) between the processes sharing the file. */
  async broadcast(exchange: string, message: Message): Promise<void> {
    await broadcast(this.database, exchange, message);
  }

  async subscribeBroadcast(exchange: string, _queueName: string, handler: (message: Message) => void, bindingKey?: string): Promise<BroadcastSubscription> {
    const sub = subscribe(this.database, exchange, handler, this.logger, bindingKey);
    this.subscriptions.add(sub);
    return {
      close: async () => {
        this.subscriptions.delete(sub);
        await sub.close();
      },
    };
  }

  /** Celery events travel on the broadcast table too, their routing key in the envelope. */
  async publishEvent(exchange: string, routingKey: string, message: Message): Promise<void> {
    await broadcast(this.database, exchange, message, routingKey);
  }

  subscribeEvents(exchange: string, queueName: string, bindingKey: string, handler: (message: Message) => void): Promise<BroadcastSubscription> {
    return this.subscribeBroadcast(exchange, queueName, handler, bindingKey);
  }

  /** Remote-control replies travel on the broadcast table, on a channel named after the client's routing key. */
  sendReply(to: PublishTarget, message: Message): Promise<void> {
    return this.broadcast(replyChannel(to.exchange, to.routingKey), message);
  }

  subscribeReplies(exchange: string, routingKey: string, handler: (message: Message) => void): Promise<BroadcastSubscription> {
    return this.subscribeBroadcast(replyChannel(exchange, routingKey), '', handler);
  }

  /** global_rate_limit buckets in this database file, shared by every process on it. */
  async sharedBuckets(): Promise<SharedBuckets> {
    return sqliteBuckets(this.database.acquire(), this.displayUrl);
  }

  async close(): Promise<void> {
    if (!this.db) return;
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    this.subscriptions.clear();
    await Promise.all([...this.consumers].map((c) => c.close()));
    this.consumers.clear();
    const db = this.db;
    this.db = null;
    await db.release();
  }
}

/** Direct routing: the routing key names the queue (Celery's default exchange is direct). */
function toRow(message: Message, target: PublishTarget): { queue: string; priority: number; payload: string } {
  const queue = target.routingKey;
  if (!queue) throw new Error(`Embedded broker: cannot publish to exchange ${JSON.stringify(target.exchange)} without a routing key (the queue name)`);
  const payload = encodeEnvelope(message, { exchange: target.exchange, routing_key: target.routingKey });
  return { queue, priority: Number(message.properties.priority ?? 0) || 0, payload };
}

export function createSqliteBroker(url: string, ctx: BrokerContext): SqliteBroker {
  return new SqliteBroker(url, ctx.logger, brokerOptionsFrom(ctx.settings), ctx.settings);
}
