// Celery's EventReceiver: a queue of our own bound to the event exchange, every event (a single dict,
// or a task.multi list) handed to typed handlers or read as an async stream. Timestamps are moved into
// this process's time zone, the Lamport clock follows the senders', and each event gets local_received.
import { randomUUID } from 'node:crypto';
import type { Broker, BroadcastSubscription } from '../brokers/types.js';
import type { Message } from '../protocol/message.js';
import type { Logger } from '../app/log.js';
import type { Settings } from '../app/settings.js';
import { loads } from '../protocol/json.js';
import { Control, type ControlHost } from '../control/control.js';
import { holdProcess } from '../app/keep-alive.js';
import { clock } from './clock.js';
import { adjustTimestamp, type CeleryEvent, type EventMap } from './event.js';

/** What a receiver needs of the app (a Celeriac app is one). */
export interface EventsHost extends ControlHost {
  readonly conf: Settings;
}

export interface ReceiverOptions {
  /** Which events, by routing key in topic syntax: '#' (default) every event, 'task.#' task events, 'worker.#' worker events. */
  routingKey?: string;
  /** Rewrite each timestamp into this process's time zone, as Celery does (default true). */
  localize?: boolean;
  /** Ask every worker for a heartbeat at once, so a view fills in without waiting for the next one (default true). */
  wakeup?: boolean;
  /** Events the async iterator holds before the oldest are dropped (default 10,000). */
  maxQueued?: number;
  logger?: Logger;
}

type Handler = (event: CeleryEvent) => void;

export class EventReceiver implements AsyncIterable<CeleryEvent> {
  /** The receiver's own queue (event_queue_prefix + a unique id), where the transport needs one. */
  readonly queueName: string;
  private readonly handlers = new Map<string, Handler[]>();
  private sub: BroadcastSubscription | undefined;
  private readonly queued: CeleryEvent[] = [];
  private waiting: ((r: IteratorResult<CeleryEvent>) => void) | undefined;
  private closed = false;
  private warned = false;
  /** A started receiver keeps the process alive until it is closed (idle app connections do not). */
  private release: (() => void) | undefined;

  constructor(private readonly host: EventsHost, private readonly o: ReceiverOptions = {}) {
    this.queueName = `${String(host.conf.event_queue_prefix ?? 'celeryev')}.${randomUUID()}`;
  }

  /** Call `fn` for each event of this type ('task-succeeded', …); '*' for every event. */
  on<K extends keyof EventMap>(type: K, fn: (event: EventMap[K]) => void): this;
  on(type: '*' | (string & {}), fn: (event: CeleryEvent) => void): this;
  on(type: string, fn: Handler): this {
    const list = this.handlers.get(type);
    if (list) list.push(fn);
    else this.handlers.set(type, [fn]);
    return this;
  }

  /** Bind the queue and start receiving; then wake the workers up (a heartbeat from each at once). */
  async start(): Promise<void> {
    this.release ??= holdProcess();
    const broker = await this.host.broker();
    if (!broker.subscribeEvents) throw new Error(`Events need a transport with an event exchange; the ${broker.transport} transport has none.`);
    const exchange = String(this.host.conf.event_exchange ?? 'celeryev');
    this.sub = await broker.subscribeEvents(exchange, this.queueName, this.o.routingKey ?? '#', (m) => this.receive(m));
    if (this.o.wakeup !== false) await this.wakeupWorkers(broker);
  }

  private async wakeupWorkers(broker: Broker): Promise<void> {
    if (!broker.broadcast) return;
    await new Control(this.host).broadcast('heartbeat').catch((err: unknown) => this.o.logger?.debug(`Events: could not wake the workers up: ${(err as Error).message}`));
  }

  /** One message off the wire: a dict or a list of them. Nothing in it can throw out of here. */
  receive(message: Message): void {
    let body: unknown;
    try {
      if (message.contentType !== 'application/json') throw new Error(`content type ${message.contentType} (events are read as JSON)`);
      body = loads(message.body.toString('utf8'));
    } catch (err) {
      if (!this.warned) this.o.logger?.warning(`Events: a message could not be read and was dropped: ${(err as Error).message}`);
      this.warned = true;
      return;
    }
    for (const item of Array.isArray(body) ? body : [body]) {
      if (!item || typeof item !== 'object' || Array.isArray(item) || typeof (item as { type?: unknown }).type !== 'string') continue;
      this.process(this.fromMessage(item as Record<string, unknown>));
    }
  }

  /** Celery's event_from_message: clock, time zone, local_received. */
  private fromMessage(e: Record<string, unknown>): CeleryEvent {
    if (e.type === 'task-sent') {
      // Clients never sync their clocks, so theirs is not used (Celery's CLIENT_CLOCK_SKEW).
      e.clock = (clock.value || 1) - 1;
      clock.adjust(e.clock);
    } else if ('clock' in e) clock.adjust(e.clock);
    else e.clock = clock.forward();
    if (typeof e.timestamp === 'number' && typeof e.utcoffset === 'number' && this.o.localize !== false) {
      e.timestamp = adjustTimestamp(e.timestamp, e.utcoffset);
    }
    e.local_received = Date.now() / 1000;
    return e as unknown as CeleryEvent;
  }

  private process(e: CeleryEvent): void {
    for (const list of [this.handlers.get(e.type), this.handlers.get('*')]) {
      if (!list) continue;
      for (const fn of list) {
        try {
          fn(e);
        } catch (err) {
          this.o.logger?.error(`Events: a handler for ${e.type} threw: ${(err as Error)?.stack ?? err}`);
        }
      }
    }
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w({ value: e, done: false });
    } else if (this.iterating) {
      this.queued.push(e);
      if (this.queued.length > (this.o.maxQueued ?? 10_000)) this.queued.shift();
    }
  }

  private iterating = false;

  /** Read events as a stream: `for await (const e of receiver)`; ends when the receiver is closed. */
  [Symbol.asyncIterator](): AsyncIterator<CeleryEvent> {
    this.iterating = true;
    return {
      next: () => {
        const e = this.queued.shift();
        if (e) return Promise.resolve({ value: e, done: false });
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => (this.waiting = r));
      },
      return: async () => {
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.release?.();
    await this.sub?.close().catch(() => undefined);
    this.waiting?.({ value: undefined, done: true });
    this.waiting = undefined;
  }
}
