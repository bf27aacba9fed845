// kombu's Redis key layout: queue lists, priority sub-lists, bindings, unacked bookkeeping.
import type { TransportOptions } from '../../app/settings.js';

export const DEFAULT_SEP = '\x06\x16';
export const DEFAULT_PRIORITY_STEPS = [0, 3, 6, 9];

export class KeyLayout {
  readonly prefix: string;
  readonly sep: string;
  readonly steps: number[];
  readonly unacked: string;
  readonly unackedIndex: string;
  readonly unackedMutex: string;

  constructor(opts: TransportOptions = {}) {
    this.prefix = opts.global_keyprefix ?? '';
    this.sep = opts.sep ?? DEFAULT_SEP;
    this.steps = [...(opts.priority_steps ?? DEFAULT_PRIORITY_STEPS)].sort((a, b) => a - b);
    this.unacked = this.prefix + String(opts.unacked_key ?? 'unacked');
    this.unackedIndex = this.prefix + String(opts.unacked_index_key ?? 'unacked_index');
    this.unackedMutex = this.prefix + String(opts.unacked_mutex_key ?? 'unacked_mutex');
  }

  /** kombu clamps priority to [0, 9] and maps it to the step at or below it. */
  stepFor(priority: unknown): number {
    let p = Math.trunc(Number(priority));
    if (!Number.isFinite(p)) p = 0;
    p = Math.min(9, Math.max(0, p));
    let step = this.steps[0] ?? 0;
    for (const s of this.steps) if (s <= p) step = s;
    return step;
  }

  /** The list key for a queue at a priority step (step 0 is the bare queue name). */
  queueKey(queue: string, step = 0): string {
    return step === 0 || step === this.steps[0] ? this.prefix + queue : this.prefix + queue + this.sep + step;
  }

  /** All list keys of a queue, highest priority (lowest step) first. */
  queueKeys(queue: string): string[] {
    return this.steps.map((s) => this.queueKey(queue, s));
  }

  private readonly queueOfKeyCache = new Map<string, string>();

  /** The queue name of a list key (strips the prefix and the priority suffix). */
  queueOfKey(key: string): string {
    let q = this.queueOfKeyCache.get(key);
    if (q === undefined) {
      q = this.parseQueueOfKey(key);
      if (this.queueOfKeyCache.size < 1000) this.queueOfKeyCache.set(key, q);
    }
    return q;
  }

  private parseQueueOfKey(key: string): string {
    const bare = key.startsWith(this.prefix) ? key.slice(this.prefix.length) : key;
    const i = bare.lastIndexOf(this.sep);
    return i >= 0 && /^\d+$/.test(bare.slice(i + this.sep.length)) ? bare.slice(0, i) : bare;
  }

  bindingKey(exchange: string): string {
    return this.prefix + '_kombu.binding.' + exchange;
  }

  bindingMember(routingKey: string, queue: string, pattern = ''): string {
    return routingKey + this.sep + pattern + this.sep + queue;
  }

  inflightKey(consumerId: string, sourceKey: string): string {
    return `${this.prefix}_celeriac.inflight/${consumerId}/${sourceKey}`;
  }

  inflightPattern(): string {
    return `${this.prefix}_celeriac.inflight/*`;
  }

  /**
   * The last batch a consumer fetched under a fetch id of this parity, so a resent fetch can be
   * answered with it (a consumer has at most two fetches in flight, with consecutive ids).
   */
  fetchLogKey(consumerId: string, fetchId: number): string {
    return `${this.prefix}_celeriac.fetchlog/${consumerId}/${fetchId % 2}`;
  }

  heartbeatKey(consumerId: string): string {
    return `${this.prefix}_celeriac.consumer/${consumerId}`;
  }

  deadLetterSuffix(): string {
    return '.dlq';
  }
}
