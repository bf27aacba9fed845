// task-sent events from a client (task_send_sent_event): one per published task, sent as a node
// named gen<pid>@<host> (Celery's anon_nodename), batched with the other task events of the turn.
import os from 'node:os';
import type { Broker, PublishItem } from '../brokers/types.js';
import type { Logger } from '../app/log.js';
import { EventDispatcher, type EventSink } from './dispatcher.js';
import { sentFields } from './task-fields.js';

/** Celery's anon_nodename(): the node name a client sends its events as. */
export function anonNodename(): string {
  return `gen${process.pid}@${os.hostname()}`;
}

export class TaskSentEvents {
  private dispatcher: EventDispatcher | undefined;
  private sink: Broker | undefined;

  constructor(private readonly exchange: string, private readonly logger: Logger) {}

  /** After a publish: a task-sent event for each message (nothing on a transport without events). */
  sent(broker: Broker, items: readonly PublishItem[]): void {
    if (!broker.publishEvent) return;
    if (this.sink !== broker) {
      // A reconnected app has a new broker: what the old dispatcher holds goes out with it.
      void this.dispatcher?.close();
      this.sink = broker;
      this.dispatcher = new EventDispatcher(broker as EventSink, { hostname: anonNodename(), logger: this.logger, exchange: this.exchange });
    }
    for (const { message, target } of items) this.dispatcher!.send('task-sent', sentFields(message, target));
  }

  /** Publish what is buffered (the app closes). */
  async close(): Promise<void> {
    const d = this.dispatcher;
    this.dispatcher = undefined;
    this.sink = undefined;
    await d?.close();
  }
}
