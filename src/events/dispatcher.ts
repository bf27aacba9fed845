// Celery's EventDispatcher: builds events with the process's clock and publishes them on the event
// exchange. Task events are buffered and sent in batches (a list body, routing key task.multi), at
// most BUFFER_LIMIT per message and at least once per event-loop turn; whatever cannot be published
// (the broker is away) is kept and sent again when it is back (Celery's buffer_while_offline).
// Events are kept in quoted form (the text as it stands inside a JSON string: see quoteJson), so a
// broker that writes text (Redis: publishEventJson) puts them into the envelope's body as they are,
// without an escaping pass or base64 (Redis copies them once, into the RESP bytes of its PUBLISH);
// the three events a -E worker sends for every task (received, started, succeeded) have their own
// methods that write that form directly. See docs/events.md, "What -E costs".
import type { Logger } from '../app/log.js';
import type { Message } from '../protocol/message.js';
import type { Broker, QuotedEvents } from '../brokers/types.js';
import { clock } from './clock.js';
import { eventHead, eventJson, groupFrom, quoteJson, quotedTaskEvent, routingKeyOf, utcoffset, type EventFields, type EventMap } from './event.js';

/** Where events go: the broker's event capability (Broker.publishEvent, and publishEventJson where it has it). */
export type EventSink = Required<Pick<Broker, 'publishEvent'>> & Pick<Broker, 'publishEventJson'>;

/** Celery's buffer_limit: most task events in one task.multi message. */
export const BUFFER_LIMIT = 24;

export interface DispatcherOptions {
  /** The node name events are sent as (a worker's -n, or a client's gen<pid>@host). */
  hostname: string;
  logger: Logger;
  /** event_exchange (default celeryev). */
  exchange?: string;
  /** Groups sent ('worker', 'task'); undefined sends every group. */
  groups?: Iterable<string>;
  /** Most events kept while the broker is away; the oldest go first beyond it. */
  maxBuffered?: number;
  /** First wait before publishing what failed again (doubles up to 8 s). */
  retryMs?: number;
}

interface Outgoing {
  routingKey: string;
  /** The events in quoted form, and whether the body is their list (task.multi) or the one event. */
  body: QuotedEvents;
  events: number;
}

export class EventDispatcher {
  /** False: send() does nothing (the worker without events, or after close). */
  enabled = true;
  readonly hostname: string;
  readonly exchange: string;
  private groups: Set<string> | null;
  /** Task events of the current batch, in quoted form. */
  private taskBatch: string[] = [];
  /** eventHead() for the utcoffset it was made with, and its quoted form. */
  private head = '';
  private qhead = '';
  private headOffset = NaN;
  /** The timestamp's text for the millisecond `tsAt` (events of one millisecond share it). */
  private tsAt = NaN;
  private tsText = '';
  private outgoing: Outgoing[] = [];
  private outgoingEvents = 0;
  private flushing: Promise<void> | null = null;
  private again = false;
  private scheduled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs: number;
  private offline = false;
  private dropped = 0;
  private readonly maxBuffered: number;

  constructor(private readonly sink: EventSink, private readonly o: DispatcherOptions) {
    this.hostname = o.hostname;
    this.exchange = o.exchange ?? 'celeryev';
    this.groups = o.groups ? new Set(o.groups) : null;
    this.maxBuffered = o.maxBuffered ?? 100_000;
    this.retryMs = o.retryMs ?? 1000;
  }

  /** Whether events of `group` ('task', 'worker') are sent. */
  sends(group: string): boolean {
    return this.enabled && (this.groups === null || this.groups.has(group));
  }

  /** Start sending a group (enable_events adds 'task'); false when it was sent already. */
  addGroup(group: string): boolean {
    if (this.groups === null || this.groups.has(group)) return false;
    this.groups.add(group);
    return true;
  }

  /** Stop sending a group (disable_events); false when it was not sent. */
  removeGroup(group: string): boolean {
    if (this.groups === null) {
      // "every group" becomes the ones Celery defines, minus this one.
      this.groups = new Set(['worker', 'task'].filter((g) => g !== group));
      return true;
    }
    return this.groups.delete(group);
  }

  /** Send an event (Celery's EventDispatcher.send): task events are batched, others go out this turn. */
  send<K extends keyof EventMap>(type: K, fields: EventFields<K>): void;
  send(type: string, fields: Record<string, unknown>): void;
  send(type: string, fields: object): void {
    if (!this.enabled) return;
    const group = type.startsWith('task-') ? 'task' : groupFrom(type);
    if (this.groups !== null && !this.groups.has(group)) return;
    const now = Date.now();
    this.headAt(now);
    const event = eventJson(this.head, type, clock.forward(), fields, now);
    if (group === 'task') {
      this.bufferTaskEvent(quoteJson(event));
      return;
    }
    this.queue({ routingKey: routingKeyOf(type), body: { events: [quoteJson(event)], list: false, hostname: this.hostname }, events: 1 });
    this.schedule();
  }

  /** task-received (the fields of receivedFields()): as send('task-received', f), written directly. */
  taskReceived(f: EventFields<'task-received'>): void {
    if (!this.sendsTasks()) return;
    const now = Date.now();
    this.bufferTaskEvent(quotedTaskEvent.received(this.headAt(now), clock.forward(), f, this.timestamp(now)));
  }

  /** task-started: as send('task-started', { uuid }), written directly. */
  taskStarted(uuid: string): void {
    if (!this.sendsTasks()) return;
    const now = Date.now();
    this.bufferTaskEvent(quotedTaskEvent.started(this.headAt(now), clock.forward(), uuid, this.timestamp(now)));
  }

  /** task-succeeded: as send('task-succeeded', { uuid, result, runtime }), written directly (runtime to the microsecond). */
  taskSucceeded(uuid: string, result: string, runtime: number): void {
    if (!this.sendsTasks()) return;
    const now = Date.now();
    this.bufferTaskEvent(quotedTaskEvent.succeeded(this.headAt(now), clock.forward(), uuid, result, runtime, this.timestamp(now)));
  }

  private sendsTasks(): boolean {
    return this.enabled && (this.groups === null || this.groups.has('task'));
  }

  /** The quoted event head for the utcoffset at `now` (made again only when the offset changes); sets this.head too. */
  private headAt(now: number): string {
    const offset = utcoffset(now);
    if (offset !== this.headOffset) {
      this.head = eventHead(this.hostname, offset);
      this.qhead = quoteJson(this.head);
      this.headOffset = offset;
    }
    return this.qhead;
  }

  /** Unix seconds as JSON for the millisecond `now` (printing a float costs more than the rest of an event's numbers). */
  private timestamp(now: number): string {
    if (now !== this.tsAt) {
      this.tsAt = now;
      this.tsText = String(now / 1000);
    }
    return this.tsText;
  }

  private bufferTaskEvent(quoted: string): void {
    if (this.taskBatch.push(quoted) >= BUFFER_LIMIT) this.cutTaskBatch();
    this.schedule();
  }

  private schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.onTick);
    }
  }

  private readonly onTick = (): void => {
    this.scheduled = false;
    // While the broker is away only the retry timer publishes: new events wait with the others.
    if (!this.offline) void this.flush();
  };

  private cutTaskBatch(): void {
    const events = this.taskBatch;
    if (events.length === 0) return;
    this.taskBatch = [];
    this.queue({ routingKey: 'task.multi', body: { events, list: true, hostname: this.hostname }, events: events.length });
  }

  private queue(o: Outgoing): void {
    this.outgoing.push(o);
    this.outgoingEvents += o.events;
    while (this.outgoingEvents > this.maxBuffered && this.outgoing.length > 1) {
      const oldest = this.outgoing.shift()!;
      this.outgoingEvents -= oldest.events;
      if (this.dropped === 0) this.o.logger.warning(`Events: more than ${this.maxBuffered} waiting to be published; dropping the oldest until the broker takes them again.`);
      this.dropped += oldest.events;
    }
  }

  /** Publish everything buffered now; resolves when it went out or was kept for later (never rejects). */
  flush(): Promise<void> {
    if (this.flushing) {
      this.again = true;
      return this.flushing;
    }
    this.flushing = this.publishAll().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async publishAll(): Promise<void> {
    do {
      this.again = false;
      this.cutTaskBatch();
      if (this.outgoing.length === 0) return;
      const batch = this.outgoing;
      this.outgoing = [];
      this.outgoingEvents = 0;
      // Issued in one turn, in order: one connection keeps their order and can write them together.
      const results = await Promise.allSettled(batch.map((o) => this.publish(o)));
      const failed = batch.filter((_, i) => results[i]!.status === 'rejected');
      if (failed.length > 0) {
        this.keepForLater(failed, (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason);
        return;
      }
      if (this.offline) {
        this.offline = false;
        this.retryMs = this.o.retryMs ?? 1000;
        this.o.logger.info(`Events: the broker takes events again${this.dropped ? ` (${this.dropped} were dropped meanwhile)` : ''}.`);
        this.dropped = 0;
      }
    } while (this.again || this.outgoing.length > 0);
  }

  private publish(o: Outgoing): Promise<void> {
    try {
      if (this.sink.publishEventJson) return this.sink.publishEventJson(this.exchange, o.routingKey, o.body);
      const quoted = o.body.list ? `[${o.body.events.join(',')}]` : o.body.events[0]!;
      const message: Message = {
        headers: { hostname: this.hostname },
        properties: { delivery_mode: 1, priority: 0 },
        body: Buffer.from(JSON.parse(`"${quoted}"`) as string, 'utf8'),
        contentType: 'application/json',
        contentEncoding: 'utf-8',
      };
      return this.sink.publishEvent(this.exchange, o.routingKey, message);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** buffer_while_offline: failed messages go back to the front, and are tried again after a pause. */
  private keepForLater(failed: Outgoing[], reason: unknown): void {
    const later = this.outgoing;
    this.outgoing = [];
    this.outgoingEvents = 0;
    for (const o of [...failed, ...later]) this.queue(o);
    if (!this.offline) {
      this.offline = true;
      this.o.logger.warning(`Events could not be published (${(reason as Error)?.message ?? reason}); keeping them until the broker is back.`);
    }
    if (this.enabled && !this.retryTimer) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        void this.flush();
      }, this.retryMs);
      this.retryTimer.unref();
      this.retryMs = Math.min(this.retryMs * 2, 8000);
    }
  }

  /** Events sent but not yet published (buffered, or kept while the broker is away). */
  get pending(): number {
    return this.taskBatch.length + this.outgoingEvents;
  }

  /** Publish what is left (waiting at most `timeoutMs`), then send nothing more. */
  async close(timeoutMs = 2000): Promise<void> {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    this.enabled = false;
    if (this.pending > 0) this.o.logger.warning(`Events: ${this.pending} event(s) could not be published before shutdown.`);
  }
}
