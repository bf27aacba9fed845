// memory:// — an in-process broker for tests and single-process apps. Every broker opened with the
// same URL in this process shares one set of queues, so a producer and a worker meet. Nothing survives
// the process.
import { randomUUID } from 'node:crypto';
import { decodeEnvelope, encodeEnvelope, markRedelivered } from '../../protocol/envelope.js';
import type { Message } from '../../protocol/message.js';
import type { Logger } from '../../app/log.js';
import type { BroadcastSubscription, Broker, BrokerContext, ConsumeOptions, Consumer, Delivery, DeliveryHandler, PublishItem, PublishTarget, SharedBuckets } from '../types.js';
import { replyChannel } from '../reply-channel.js';
import { topicMatches } from '../topic.js';
import { memoryBuckets } from './rate-limit-buckets.js';
import { QoS } from '../qos.js';

interface Entry {
  seq: number;
  priority: number;
  /** The kombu envelope, so a consumer never shares objects with the producer. */
  payload: string;
}

/** Waiting messages of one queue: highest priority first, then oldest (a restored message keeps its place). */
class MemoryQueue {
  private readonly buckets = new Map<number, Entry[]>();
  private priorities: number[] = [];
  size = 0;

  push(e: Entry): void {
    let b = this.buckets.get(e.priority);
    if (!b) {
      this.buckets.set(e.priority, (b = []));
      this.priorities = [...this.buckets.keys()].sort((x, y) => y - x);
    }
    if (b.length === 0 || b[b.length - 1]!.seq < e.seq) b.push(e);
    else b.splice(lowerBound(b, e.seq), 0, e);
    this.size++;
  }

  shift(): Entry | undefined {
    for (const p of this.priorities) {
      const b = this.buckets.get(p)!;
      if (b.length > 0) {
        this.size--;
        return b.shift();
      }
    }
    return undefined;
  }

  /** The next `limit` entries in fetch order, left in place. */
  peek(limit: number): Entry[] {
    const out: Entry[] = [];
    for (const p of this.priorities) for (const e of this.buckets.get(p)!) if (out.length < limit) out.push(e);
    return out;
  }

  clear(): number {
    const n = this.size;
    this.buckets.clear();
    this.priorities = [];
    this.size = 0;
    return n;
  }
}

function lowerBound(b: Entry[], seq: number): number {
  let lo = 0;
  let hi = b.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (b[mid]!.seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

interface Transport {
  queues: Map<string, MemoryQueue>;
  consumers: Set<MemoryConsumer>;
  /** Fanout subscribers per exchange (remote control, events), each with the routing key it was sent with. */
  fanout: Map<string, Set<(m: Message, routingKey: string) => void>>;
  seq: number;
}

const TRANSPORTS = new Map<string, Transport>();

function transportFor(url: string): Transport {
  let t = TRANSPORTS.get(url);
  if (!t) TRANSPORTS.set(url, (t = { queues: new Map(), consumers: new Set(), fanout: new Map(), seq: 0 }));
  return t;
}

function queueOf(t: Transport, name: string): MemoryQueue {
  let q = t.queues.get(name);
  if (!q) t.queues.set(name, (q = new MemoryQueue()));
  return q;
}

/** Let consumers of these queues take what they can, in turn, after the current call stack. */
function notify(t: Transport): void {
  queueMicrotask(() => {
    for (const c of [...t.consumers]) c.dispatch();
  });
}

class MemoryDelivery implements Delivery {
  settled = false;
  constructor(
    readonly message: Message,
    readonly queue: string,
    readonly exchange: string,
    readonly routingKey: string,
    readonly deliveryTag: string,
    readonly redelivered: boolean,
    readonly entry: Entry,
    readonly raw: Record<string, unknown>,
    private readonly consumer: MemoryConsumer,
  ) {}

  async ack(): Promise<void> {
    this.consumer.settle(this, false);
  }

  async reject(requeue: boolean): Promise<void> {
    this.consumer.settle(this, requeue);
  }
}

class MemoryConsumer implements Consumer {
  private readonly qos: QoS<MemoryDelivery, MemoryDelivery>;
  private stopped = false;
  private turn = 0;

  constructor(
    private readonly t: Transport,
    private readonly queues: string[],
    private readonly handler: DeliveryHandler,
    prefetch: number,
    private readonly logger: Logger,
  ) {
    this.qos = new QoS(prefetch);
  }

  setPrefetch(n: number): void {
    this.qos.setPrefetch(n);
    notify(this.t);
  }

  setEtaHeld(n: number): void {
    this.qos.setEtaHeld(n);
    notify(this.t);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.t.consumers.delete(this);
  }

  get heldCount(): number {
    return this.qos.held.size;
  }

  restoreUnacked(): Promise<number> {
    return this.qos.restoreUnacked((d) => this.settle(d, true), this.logger);
  }

  /** Hand out waiting messages up to the prefetch credit, taking the queues in turn. */
  dispatch(): void {
    while (!this.stopped && this.qos.free() > 0) {
      const taken = this.takeOne();
      if (!taken) return;
      const [queue, entry] = taken;
      let env;
      try {
        env = decodeEnvelope(entry.payload);
      } catch (err) {
        this.logger.error(`memory broker: dropping undecodable message from queue ${queue}: ${(err as Error).message}`);
        continue;
      }
      const d = new MemoryDelivery(env.message, queue, env.deliveryInfo.exchange, env.deliveryInfo.routing_key || queue, env.deliveryTag, env.deliveryInfo.redelivered === true, entry, env.raw, this);
      this.qos.held.set(d, d);
      try {
        this.handler(d);
      } catch (err) {
        this.logger.error(`memory broker: delivery handler threw for message ${d.deliveryTag}: ${(err as Error).message}`);
      }
    }
  }

  private takeOne(): [string, Entry] | undefined {
    for (let i = 0; i < this.queues.length; i++) {
      const name = this.queues[(this.turn + i) % this.queues.length]!;
      const e = this.t.queues.get(name)?.shift();
      if (e) {
        this.turn = (this.turn + i + 1) % this.queues.length;
        return [name, e];
      }
    }
    return undefined;
  }

  /** Ack (requeue=false drops) or put back; false when the delivery was already settled. */
  settle(d: MemoryDelivery, requeue: boolean): boolean {
    if (d.settled) return false;
    d.settled = true;
    this.qos.held.delete(d);
    if (requeue) queueOf(this.t, d.queue).push({ ...d.entry, payload: markRedelivered(d.raw) });
    notify(this.t);
    return true;
  }
}

export class MemoryBroker implements Broker {
  readonly transport = 'memory';
  private readonly t: Transport;
  private readonly consumers = new Set<MemoryConsumer>();
  private readonly subscriptions = new Set<BroadcastSubscription>();

  constructor(readonly displayUrl: string, private readonly logger: Logger) {
    this.t = transportFor(displayUrl);
  }

  async connect(): Promise<void> {}

  async publish(message: Message, target: PublishTarget): Promise<void> {
    const [queue, payload] = encodeFor(message, target);
    this.enqueue(queue, message, payload);
    notify(this.t);
  }

  /** Bulk publish: all or nothing (every item is encoded before any is queued), in input order. */
  async publishMany(items: PublishItem[]): Promise<void> {
    if (items.length === 0) return;
    const encoded = items.map(({ message, target }) => encodeFor(message, target));
    items.forEach(({ message }, i) => this.enqueue(encoded[i]![0], message, encoded[i]![1]));
    notify(this.t);
  }

  private enqueue(queue: string, message: Message, payload: string): void {
    queueOf(this.t, queue).push({ seq: ++this.t.seq, priority: Number(message.properties.priority ?? 0) || 0, payload });
  }

  async consume(queues: string[], handler: DeliveryHandler, opts: ConsumeOptions): Promise<Consumer> {
    if (queues.length === 0) throw new Error('memory broker: consume() needs at least one queue');
    const c = new MemoryConsumer(this.t, [...new Set(queues)], handler, opts.prefetch, this.logger);
    this.consumers.add(c);
    this.t.consumers.add(c);
    notify(this.t);
    return c;
  }

  async purge(queue: string): Promise<number> {
    return this.t.queues.get(queue)?.clear() ?? 0;
  }

  async queueLength(queue: string): Promise<number> {
    return this.t.queues.get(queue)?.size ?? 0;
  }

  async peek(queue: string, limit: number): Promise<string[]> {
    return (this.t.queues.get(queue)?.peek(limit) ?? []).map((e) => e.payload);
  }

  /** Fire-and-forget to every current subscriber of the exchange, each with its own copy. */
  async broadcast(exchange: string, message: Message, routingKey = ''): Promise<void> {
    const subs = this.t.fanout.get(exchange);
    if (!subs?.size) return;
    const payload = encodeEnvelope(message, { exchange, routing_key: routingKey });
    for (const h of [...subs]) {
      queueMicrotask(() => {
        try {
          h(decodeEnvelope(payload).message, routingKey);
        } catch (err) {
          this.logger.error(`memory broker: broadcast on ${exchange} could not be handled: ${(err as Error).message}`);
        }
      });
    }
  }

  async subscribeBroadcast(exchange: string, _queueName: string, handler: (message: Message) => void, bindingKey?: string): Promise<BroadcastSubscription> {
    let subs = this.t.fanout.get(exchange);
    if (!subs) this.t.fanout.set(exchange, (subs = new Set()));
    const h = (m: Message, routingKey: string) => {
      if (bindingKey === undefined || topicMatches(bindingKey, routingKey)) handler(m);
    };
    subs.add(h);
    const sub: BroadcastSubscription = { close: async () => { subs.delete(h); this.subscriptions.delete(sub); } };
    this.subscriptions.add(sub);
    return sub;
  }

  /** Celery events: in-process, to the subscribers whose binding key matches. */
  publishEvent(exchange: string, routingKey: string, message: Message): Promise<void> {
    return this.broadcast(exchange, message, routingKey);
  }

  subscribeEvents(exchange: string, queueName: string, bindingKey: string, handler: (message: Message) => void): Promise<BroadcastSubscription> {
    return this.subscribeBroadcast(exchange, queueName, handler, bindingKey);
  }

  /** Remote-control replies are broadcasts on a channel named after the client's routing key. */
  sendReply(to: PublishTarget, message: Message): Promise<void> {
    return this.broadcast(replyChannel(to.exchange, to.routingKey), message);
  }

  subscribeReplies(exchange: string, routingKey: string, handler: (message: Message) => void): Promise<BroadcastSubscription> {
    return this.subscribeBroadcast(replyChannel(exchange, routingKey), '', handler);
  }

  async sharedBuckets(): Promise<SharedBuckets> {
    return memoryBuckets(this.displayUrl);
  }

  /** Like a closed AMQP channel: unacknowledged deliveries go back to their queues. */
  async close(): Promise<void> {
    for (const s of [...this.subscriptions]) await s.close();
    for (const c of this.consumers) {
      await c.stop();
      await c.restoreUnacked();
    }
    this.consumers.clear();
  }
}

/** The queue (the routing key: direct routing) and the envelope of a message. */
function encodeFor(message: Message, target: PublishTarget): [queue: string, payload: string] {
  if (!target.routingKey) throw new Error(`memory broker: cannot publish to exchange ${JSON.stringify(target.exchange)} without a routing key (the queue name)`);
  return [target.routingKey, encodeEnvelope(message, { exchange: target.exchange, routing_key: target.routingKey }, randomUUID())];
}

export function createBroker(url: string, ctx: BrokerContext): Broker {
  return new MemoryBroker(url, ctx.logger);
}
