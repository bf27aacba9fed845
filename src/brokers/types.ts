// The Broker interface: the few primitives every transport fills in (kombu's virtual Channel, trimmed).
// Acknowledgement bookkeeping, prefetch and claim renewal live inside each transport; the worker only
// sees deliveries it must ack or reject.
import type { Message } from '../protocol/message.js';
import type { Settings } from '../app/settings.js';
import type { Logger } from '../app/log.js';

export interface PublishTarget {
  /** '' is the default (anonymous) exchange: the routing key names the queue. */
  exchange: string;
  routingKey: string;
}

/** One message of a bulk publish and where it goes. */
export interface PublishItem {
  message: Message;
  target: PublishTarget;
}

export interface Delivery {
  readonly message: Message;
  /** The queue this delivery was taken from. */
  readonly queue: string;
  readonly exchange: string;
  readonly routingKey: string;
  /** kombu's delivery_tag (virtual transports) or the channel's integer tag as a string (AMQP). */
  readonly deliveryTag: string;
  readonly redelivered: boolean;
  /** Acknowledge: the message is done and will never come back. Idempotent. */
  ack(): Promise<void>;
  /** requeue=true: back on the queue for another worker; false: drop it (or dead-letter it). Idempotent. */
  reject(requeue: boolean): Promise<void>;
}

export type DeliveryHandler = (delivery: Delivery) => void;

export interface ConsumeOptions {
  /** Most unacknowledged deliveries outstanding at once; 0 means no limit. */
  prefetch: number;
  /**
   * Called once when the consumer stops for good: it gave up reconnecting (broker_connection_retry,
   * broker_connection_max_retries; see connection-retry.ts). No delivery follows; the worker shuts
   * down and exits non-zero. Without it the consumer logs the error itself.
   */
  onFailure?: (err: Error) => void;
}

export interface Consumer {
  /** Change the prefetch window: most deliveries held at once for running (0 = no limit). */
  setPrefetch(n: number): void;
  /**
   * How many ETA messages the worker holds until they are due. Each raises the limit by one (Celery's
   * qos.increment_eventually), while fetch sizes follow the window alone: a worker holding many ETA
   * messages keeps taking the rest of its queue.
   */
  setEtaHeld(n: number): void;
  /** Stop fetching. Deliveries already handed out stay valid until acked or rejected. */
  stop(): Promise<void>;
  /** Put back every delivery that was handed out and not yet acked or rejected (warm shutdown). */
  restoreUnacked(): Promise<number>;
  /** Deliveries handed out and not yet settled (a stopped consumer holding none can be closed). */
  readonly heldCount?: number;
  /** Stop, put back what is still held, and release what the consumer keeps open (connection, timers). */
  close?(): Promise<void>;
}

export interface Broker {
  /** 'redis', 'amqp', 'sqlite', 'memory'. */
  readonly transport: string;
  /** The URL with its password masked, for banners and errors. */
  readonly displayUrl: string;
  connect(): Promise<void>;
  /** Resolves only once the broker has the message (Redis reply, AMQP publisher confirm, SQLite commit). */
  publish(message: Message, target: PublishTarget): Promise<void>;
  /**
   * Optional bulk publish: resolves only once the broker has every message (the guarantee of
   * `publish`), in as few round trips as the transport allows (Redis: one LPUSH per queue list and
   * chunk; AMQP: every publish on the confirm channel, then all confirms; SQLite: one transaction).
   * Messages bound for the same queue keep their input order. On failure some messages may already
   * be queued: a retry of the whole batch can duplicate them, never lose them.
   */
  publishMany?(items: PublishItem[]): Promise<void>;
  consume(queues: string[], handler: DeliveryHandler, opts: ConsumeOptions): Promise<Consumer>;
  /** Remove every waiting message from the queue; returns how many were removed. */
  purge(queue: string): Promise<number>;
  /** Messages waiting in the queue (all priorities). */
  queueLength(queue: string): Promise<number>;
  /**
   * Optional: the first `limit` waiting messages of a queue as stored, without taking them (a monitor
   * reading `<queue>.dlq`). Redis: LRANGE of the list; SQLite: the rows' payloads; memory: the entries;
   * AMQP: basic.get of each, then every one requeued.
   */
  peek?(queue: string, limit: number): Promise<string[]>;
  close(): Promise<void>;
  /**
   * Optional fanout primitives (Celery's celery.pidbox remote control). Redis: PUBLISH/PSUBSCRIBE on
   * `/{db}.<exchange>`; AMQP: a non-durable fanout exchange with one auto-delete queue per subscriber.
   * Fire-and-forget: a subscriber that is not connected misses the message.
   */
  broadcast?(exchange: string, message: Message): Promise<void>;
  /** `queueName` names the subscriber's own queue where the transport needs one (AMQP: `<node>.celery.pidbox`). */
  subscribeBroadcast?(exchange: string, queueName: string, handler: (message: Message) => void): Promise<BroadcastSubscription>;
  /**
   * Optional remote-control reply channel (kombu's reply.celery.pidbox direct exchange): a worker sends
   * a reply to the client waiting on `to.routingKey`; a reply nobody waits for is dropped.
   */
  sendReply?(to: PublishTarget, message: Message): Promise<void>;
  /** The client's side: receive the replies sent to `routingKey` until the subscription is closed. */
  subscribeReplies?(exchange: string, routingKey: string, handler: (message: Message) => void): Promise<BroadcastSubscription>;
  /**
   * Optional Celery event stream (the celeryev exchange, see src/events/): Redis PUBLISH on
   * `/{db}.<exchange>/<routing key>` (kombu's fanout_patterns); AMQP a durable topic exchange; SQLite
   * the broadcast table; memory in-process. Fire-and-forget: a monitor that is not listening misses it.
   */
  publishEvent?(exchange: string, routingKey: string, message: Message): Promise<void>;
  /**
   * Optional: publishEvent for the event dispatcher's messages given as text (headers {hostname},
   * delivery_mode 1): a transport that writes text (Redis) puts the quoted events into its envelope as
   * they are, without a Buffer or another escaping pass. The dispatcher uses it where a broker has it.
   */
  publishEventJson?(exchange: string, routingKey: string, body: QuotedEvents): Promise<void>;
  /**
   * Receive the events whose routing key matches `bindingKey` (topic syntax: '#' is every event) on the
   * subscriber's own queue `queueName` (AMQP: auto-delete, event_queue_ttl and event_queue_expires).
   */
  subscribeEvents?(exchange: string, queueName: string, bindingKey: string, handler: (message: Message) => void): Promise<BroadcastSubscription>;
  /** Optional store of rate-limit buckets every worker on this broker shares (global_rate_limit). */
  sharedBuckets?(): Promise<SharedBuckets>;
}

/** Celery event messages as the event dispatcher hands them to a transport that writes text (Broker.publishEventJson). */
export interface QuotedEvents {
  /** Each event's JSON text in quoted form: JSON.stringify(text) without its outer quotes. */
  events: readonly string[];
  /** True: the body is the list of the events (task.multi); false: the body is the one event. */
  list: boolean;
  /** The sender: the message's `hostname` header. */
  hostname: string;
}

/** Token buckets every worker shares, one per name (global_rate_limit). */
export interface SharedBuckets {
  /** Where they live, for logs. */
  readonly where: string;
  /** Take a token for `name`: 0 when taken, else the ms to wait before asking again. */
  take(name: string, intervalMs: number, capacity: number): Promise<number>;
  close(): Promise<void>;
}

export interface BroadcastSubscription {
  close(): Promise<void>;
}

export interface BrokerContext {
  settings: Settings;
  logger: Logger;
  /** An app's broker: idle connections must not keep the process alive (app/keep-alive.ts). */
  idleExit?: boolean;
}

export type BrokerFactory = (url: string, ctx: BrokerContext) => Broker;
