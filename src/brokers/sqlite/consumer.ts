// The embedded consumer: claims in batches up to the prefetch credit, polls adaptively, renews the
// leases of every delivery it holds, and settles deliveries with fenced writes.
import { randomUUID } from 'node:crypto';
import { decodeEnvelope, markRedelivered } from '../../protocol/envelope.js';
import type { Message } from '../../protocol/message.js';
import type { Logger } from '../../app/log.js';
import type { Consumer, Delivery, DeliveryHandler } from '../types.js';
import type { SqliteDatabase } from './database.js';
import { claimMessages, deleteHeld, hasVisible, releaseHeld, renewLease, type ClaimedRow } from './messages.js';
import { QoS } from '../qos.js';
import { ConsumerRetries, type RetrySettings } from '../connection-retry.js';

export interface SqliteConsumerOptions {
  prefetch: number;
  leaseMs: number;
  minPollMs: number;
  maxPollMs: number;
  /** broker_connection_retry / broker_connection_max_retries: how many failed claims in a row are borne. */
  retry?: Partial<RetrySettings>;
  /** ConsumeOptions.onFailure. */
  onFailure?: (err: Error) => void;
}

export interface ConsumerStats {
  claimed: number;
  acked: number;
  /** Fenced acks/rejects that found the lease gone: the message may have run twice. */
  fencedFailures: number;
  leasesLost: number;
  renewals: number;
  /** Deliveries whose previous lease expired (holder died or stalled). */
  expiredRedeliveries: number;
}

/** With prefetch 0 (no limit) a single claim still takes at most this many. */
const UNLIMITED_BATCH = 256;

type Settle = 'ack' | 'drop' | 'requeue' | 'restore';

class SqliteDelivery implements Delivery {
  settled: Promise<void> | null = null;
  leaseLost = false;
  constructor(
    readonly message: Message,
    readonly queue: string,
    readonly exchange: string,
    readonly routingKey: string,
    readonly deliveryTag: string,
    readonly redelivered: boolean,
    readonly rowId: number,
    readonly token: string,
    readonly raw: Record<string, unknown>,
    private readonly consumer: SqliteConsumer,
  ) {}

  ack(): Promise<void> {
    return (this.settled ??= this.consumer.settle(this, 'ack'));
  }

  reject(requeue: boolean): Promise<void> {
    return (this.settled ??= this.consumer.settle(this, requeue ? 'requeue' : 'drop'));
  }
}

export class SqliteConsumer implements Consumer {
  readonly stats: ConsumerStats = { claimed: 0, acked: 0, fencedFailures: 0, leasesLost: 0, renewals: 0, expiredRedeliveries: 0 };
  private readonly qos: QoS<number, SqliteDelivery>;
  private stopped = false;
  private closed = false;
  private idleMs: number;
  private wakeUp: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private renewTimer: NodeJS.Timeout | null = null;
  private queueTurn = 0;
  private readonly retries: ConsumerRetries;
  private readonly onPublish = (queue: string) => {
    if (this.queues.includes(queue)) this.wake();
  };

  constructor(
    private readonly db: SqliteDatabase,
    private readonly queues: string[],
    private readonly handler: DeliveryHandler,
    private readonly opts: SqliteConsumerOptions,
    private readonly logger: Logger,
  ) {
    this.qos = new QoS(opts.prefetch);
    this.idleMs = opts.minPollMs;
    this.retries = new ConsumerRetries({
      settings: opts.retry ?? {}, where: `the embedded broker ${db.location.file}`, logger, onFailure: opts.onFailure,
      stop: () => {
        this.stopped = true;
        this.db.events.off('publish', this.onPublish);
      },
    });
  }

  start(): void {
    this.db.events.on('publish', this.onPublish);
    this.loop = this.run();
    const every = Math.max(50, Math.floor(this.opts.leaseMs / 3));
    this.renewTimer = setInterval(() => void this.renew(), every);
    this.renewTimer.unref();
  }

  setPrefetch(n: number): void {
    this.qos.setPrefetch(n);
    this.wake();
  }

  setEtaHeld(n: number): void {
    this.qos.setEtaHeld(n);
    this.wake();
  }

  /** Deliveries handed out and not yet settled. */
  get heldCount(): number {
    return this.qos.held.size;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.db.events.off('publish', this.onPublish);
    this.wake();
    await this.loop;
  }

  restoreUnacked(): Promise<number> {
    return this.qos.restoreUnacked(async (d) => {
      if (d.settled) return false;
      await (d.settled = this.settle(d, 'restore'));
      return !d.leaseLost;
    }, this.logger);
  }

  /** Stop fetching, put back what is still held, stop renewing. */
  async close(): Promise<void> {
    await this.stop();
    await this.restoreUnacked();
    this.closed = true;
    if (this.renewTimer) clearInterval(this.renewTimer);
  }

  private credit(): number {
    return Math.min(UNLIMITED_BATCH, this.qos.free());
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.wakeUp = null; resolve(); }, ms);
      this.wakeUp = () => { clearTimeout(t); resolve(); };
    });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const credit = this.credit();
      if (credit <= 0) {
        await this.sleep(this.opts.maxPollMs); // woken by a settle or setPrefetch
        continue;
      }
      let got = 0;
      try {
        got = await this.claim(credit);
        this.retries.succeeded();
      } catch (err) {
        if (this.retries.failed(`claiming messages failed: ${(err as Error).message}`, `retrying in ${(this.idleMs / 1000).toFixed(2)}s, then with backoff up to ${(this.opts.maxPollMs / 1000).toFixed(2)}s`)) break;
      }
      if (got > 0) {
        this.idleMs = this.opts.minPollMs;
        continue;
      }
      await this.sleep(this.idleMs);
      this.idleMs = Math.min(this.opts.maxPollMs, this.idleMs * 2);
    }
  }

  private async claim(credit: number): Promise<number> {
    const now = Date.now();
    let anything: boolean;
    try {
      anything = this.queues.some((q) => this.db.read((db) => hasVisible(db, q, now)));
    } catch {
      anything = true; // a read can meet SQLITE_BUSY during WAL recovery; let the write path retry it
    }
    if (!anything) return 0;
    const token = randomUUID();
    const start = this.queueTurn++ % this.queues.length;
    const order = [...this.queues.slice(start), ...this.queues.slice(0, start)];
    const rows = await this.db.write((db) => {
      const at = Date.now(); // the lease starts at commit time, not when the claim was queued
      const out: ClaimedRow[] = [];
      for (const q of order) {
        if (out.length >= credit) break;
        out.push(...claimMessages(db, q, credit - out.length, token, at, this.opts.leaseMs));
      }
      return out;
    });
    if (this.stopped) {
      // stop() raced the claim: hand nothing out, put the rows straight back.
      await this.db.write((db) => { for (const r of rows) releaseHeld(db, r.id, token, r.payload); });
      return 0;
    }
    this.stats.claimed += rows.length;
    for (const row of rows) this.deliver(row, token);
    return rows.length;
  }

  private deliver(row: ClaimedRow, token: string): void {
    let env;
    try {
      env = decodeEnvelope(row.payload);
    } catch (err) {
      this.logger.error(`Embedded broker: dropping undecodable message ${row.id} from queue ${row.queue}: ${(err as Error).message}`);
      this.db.write((db) => deleteHeld(db, row.id, token)).catch((e: Error) =>
        this.logger.error(`Embedded broker: could not drop message ${row.id}: ${e.message}; it comes back when its lease expires.`));
      return;
    }
    const d = new SqliteDelivery(
      env.message, row.queue, env.deliveryInfo.exchange, env.deliveryInfo.routing_key || row.queue, env.deliveryTag,
      row.deliveries > 1 || env.deliveryInfo.redelivered === true, row.id, token, env.raw, this,
    );
    if (row.deliveries > 1 && env.deliveryInfo.redelivered !== true) {
      // Not put back by a restore or requeue: its lease ran out, so its previous holder may have run it.
      this.stats.expiredRedeliveries++;
      this.logger.warning(
        `possible_duplicate: ${String(env.message.headers.task ?? 'message')}[${String(env.message.headers.id ?? d.deliveryTag)}] ` +
          `came back after its lease expired (delivery ${row.deliveries}); its previous holder may have run it`,
      );
    }
    this.qos.held.set(row.id, d);
    try {
      this.handler(d);
    } catch (err) {
      this.logger.error(`Embedded broker: delivery handler threw for message ${d.deliveryTag}: ${(err as Error).message}`);
    }
  }

  /** Called once per delivery (Delivery caches the promise, which makes ack/reject idempotent). */
  async settle(d: SqliteDelivery, how: Settle): Promise<void> {
    try {
      const ok = await this.db.write((db) =>
        how === 'ack' || how === 'drop' ? deleteHeld(db, d.rowId, d.token) : releaseHeld(db, d.rowId, d.token, markRedelivered(d.raw)),
      );
      if (how === 'ack' && ok) this.stats.acked++;
      if (!ok) {
        d.leaseLost = true;
        this.stats.fencedFailures++;
        this.logger.warning(
          `possible_duplicate: ${how} of ${String(d.message.headers.task ?? 'message')}[${String(d.message.headers.id ?? '')}] ` +
            `(delivery_tag ${d.deliveryTag}, queue ${d.queue}) found its lease gone; ` +
            'the lease expired and another consumer may have run it too (raise broker_transport_options.visibility_timeout if tasks block the event loop)',
        );
      }
    } finally {
      if (this.qos.held.get(d.rowId) === d) this.qos.held.delete(d.rowId);
      this.wake();
    }
  }

  private async renew(): Promise<void> {
    if (this.closed) return;
    const live = [...this.qos.held.values()].filter((d) => !d.settled && !d.leaseLost);
    if (live.length === 0) return;
    try {
      const results = await this.db.write((db) => {
        const expires = Date.now() + this.opts.leaseMs;
        return live.map((d) => renewLease(db, d.rowId, d.token, expires));
      });
      this.stats.renewals++;
      results.forEach((ok, i) => {
        const d = live[i]!;
        if (ok || d.settled) return;
        d.leaseLost = true;
        this.stats.leasesLost++;
        this.logger.warning(`Embedded broker: lost the lease on message ${d.deliveryTag} (queue ${d.queue}); another consumer may run it`);
      });
    } catch (err) {
      this.logger.error(`Embedded broker: renewing ${live.length} lease(s) failed, will retry: ${(err as Error).message}`);
    }
  }
}
