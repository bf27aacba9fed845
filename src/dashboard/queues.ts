// Queues as the dashboard sees them: which there are (the default queue, the ones workers consume
// from, the ones tasks were sent to), how many messages wait in each and in its `.dlq`, the raw
// content of a dead-letter queue, and purge. Lengths are sampled every 30 s for the charts.
import type { Broker } from '../brokers/types.js';
import { decodeEnvelope } from '../protocol/envelope.js';
import type { ClusterView } from './ingest.js';
import type { HistoryStore } from './store.js';

export const DLQ_SUFFIX = '.dlq';
const SAMPLE_EVERY_MS = 30_000;

export interface QueueInfo {
  name: string;
  messages: number;
  /** Messages in `<name>.dlq`. */
  dlq: number;
  consumers?: number;
}

export interface DeadLetter {
  raw: string;
  headers?: Record<string, unknown>;
  id?: string;
  task?: string;
}

export interface QueuesHost {
  broker(): Promise<Broker>;
  readonly conf: { task_default_queue: string } & Record<string, unknown>;
}

export class Queues {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly host: QueuesHost, private readonly cluster: ClusterView, private readonly store: HistoryStore) {}

  start(): void {
    const sample = () => void this.list().then((qs) => this.store.addQueueSample(Date.now() / 1000, Object.fromEntries(qs.map((q) => [q.name, q.messages])))).catch(() => undefined);
    sample();
    this.timer = setInterval(sample, SAMPLE_EVERY_MS);
  }

  close(): void {
    clearInterval(this.timer);
  }

  async transport(): Promise<string> {
    return (await this.host.broker()).transport;
  }

  /** Every queue name known, sorted (no remote-control or event queues). */
  names(): string[] {
    const names = new Set<string>([this.host.conf.task_default_queue]);
    const configured = this.host.conf.task_queues;
    if (Array.isArray(configured)) {
      for (const q of configured) if (typeof q === 'string') names.add(q);
    } else if (configured && typeof configured === 'object') {
      for (const q of Object.keys(configured)) names.add(q);
    }
    for (const q of this.cluster.consumedQueues().keys()) names.add(q);
    for (const q of this.cluster.queuesSeen) names.add(q);
    return [...names].filter((q) => q && !q.endsWith('.pidbox') && !q.startsWith('celeryev.')).sort();
  }

  async list(): Promise<QueueInfo[]> {
    const broker = await this.host.broker();
    const consumers = this.cluster.consumedQueues();
    return Promise.all(this.names().map(async (name) => {
      const [messages, dlq] = await Promise.all([broker.queueLength(name), broker.queueLength(name + DLQ_SUFFIX)]);
      return { name, messages, dlq, consumers: consumers.get(name) ?? 0 };
    }));
  }

  /** The first `limit` messages of `<queue>.dlq`, raw, with the envelope's headers when it has one. */
  async deadLetters(queue: string, limit: number): Promise<DeadLetter[]> {
    const broker = await this.host.broker();
    if (!broker.peek) throw new Error(`The ${broker.transport} transport cannot list a queue's messages.`);
    const raws = await broker.peek(queue + DLQ_SUFFIX, limit);
    return raws.map((raw) => {
      const out: DeadLetter = { raw };
      try {
        const { message } = decodeEnvelope(raw);
        out.headers = message.headers;
        if (typeof message.headers.id === 'string') out.id = message.headers.id;
        if (typeof message.headers.task === 'string') out.task = message.headers.task;
      } catch {
        // Not an envelope (why it was dead-lettered): the raw text is all there is.
      }
      return out;
    });
  }

  async purge(queue: string): Promise<number> {
    return (await this.host.broker()).purge(queue);
  }
}
