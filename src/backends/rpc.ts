// rpc:// result backend, compatible with Python Celery's: results travel back as AMQP messages.
// The client owns one reply queue named after its oid (declared like Celery 5.2–5.6: durable false,
// auto_delete true, x-expires = result_expires). A task message carries reply_to = that queue and
// correlation_id = the task id; the worker publishes each state to exchange '' with routing key = reply_to,
// delivery_mode 1, body {"task_id", "status", "result", "traceback", "children"}. The client consumes its
// queue (no ack), keeps the latest state per task id, and wakes whoever waits for it.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Channel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { PEER_TAGS, pendingMeta, type BackendContext, type ResultBackend, type ResultMeta, type StoreContext, type WaitOptions } from './types.js';
import { resultExpiresMs, waitForReady } from './memory.js';
import { effectiveBrokerUrl, retriesOnStartup } from '../app/settings.js';
import { schemeOf } from '../brokers/registry.js';
import { parseAmqpUrl } from '../brokers/amqp/url.js';
import { AmqpConnection, maxConnectionRetries, reconnectDelay, sleep } from '../brokers/amqp/connection.js';
import { toFieldTable } from '../brokers/amqp/field-table.js';
import { BrokerConnectionError, explainChannelError } from '../brokers/amqp/errors.js';
import { encodeWith, readMeta, resultCodec, type ResultCodec } from './encode.js';
import { NotImplementedError } from '../app/exceptions.js';

/** Replies nobody has asked for yet are kept, up to this many tasks (oldest dropped first). */
const MAX_BUFFERED = 10_000;
const STORE_ATTEMPTS = 5;

export class RpcBackend implements ResultBackend {
  readonly displayUrl = 'rpc://';
  /** The reply queue's name: this client's oid, sent as reply_to with every task (and by every frozen signature). */
  readonly replyTo: string;
  private readonly conn: AmqpConnection;
  private publisher: { ch: ConfirmChannel; generation: number } | null = null;
  private publisherOpening: Promise<ConfirmChannel> | null = null;
  private consumer: Channel | null = null;
  private consumerStarting: Promise<void> | null = null;
  private wantReplies = false;
  private closed = false;
  private readonly results = new Map<string, ResultMeta>();
  private readonly events = new EventEmitter();
  private readonly codec: ResultCodec;

  constructor(private readonly ctx: BackendContext) {
    this.replyTo = ctx.oid ?? randomUUID();
    this.codec = resultCodec(ctx.settings);
    const { url } = effectiveBrokerUrl(ctx.settings);
    const scheme = schemeOf(url);
    if (!['amqp', 'amqps', 'pyamqp'].includes(scheme)) {
      throw new Error(`The rpc:// result backend sends results over RabbitMQ, but the broker is ${scheme}:// — use an amqp:// broker_url, or another result_backend (e.g. redis://)`);
    }
    this.conn = new AmqpConnection(parseAmqpUrl(url, ctx.settings), ctx.logger, 'rpc backend', ctx.idleExit);
    this.conn.on('lost', () => this.onConsumerLost());
    this.events.setMaxListeners(0);
  }

  async connect(): Promise<void> {
    const s = this.ctx.settings;
    await this.conn.openWithRetry(retriesOnStartup(s) ? maxConnectionRetries(s.broker_connection_max_retries) : 0);
  }

  /** Before a task is published: make sure the reply queue exists and is being consumed. */
  async onTaskCall(_taskId: string): Promise<void> {
    await this.ensureConsuming();
  }

  private ensureConsuming(): Promise<void> {
    this.wantReplies = true;
    if (this.consumer) return Promise.resolve();
    this.consumerStarting ??= this.startConsumer().finally(() => { this.consumerStarting = null; });
    return this.consumerStarting;
  }

  private async startConsumer(): Promise<void> {
    const model = await this.conn.open();
    const ch = await model.createChannel();
    ch.on('error', (err: Error) => this.ctx.logger.warning(`rpc:// reply channel error: ${err.message}`));
    const expires = resultExpiresMs(this.ctx.settings.result_expires);
    const args: Record<string, unknown> = {};
    if (expires != null) args['x-expires'] = Math.round(expires);
    try {
      await ch.assertQueue(this.replyTo, { durable: false, autoDelete: true, exclusive: false, arguments: toFieldTable(args) });
      await ch.consume(this.replyTo, (m) => this.onReply(m), { noAck: true });
    } catch (err) {
      await ch.close().catch(() => undefined);
      throw explainChannelError(err, this.conn.endpoint, `declaring the rpc:// reply queue "${this.replyTo}"`);
    }
    ch.on('close', () => {
      if (this.consumer === ch) this.consumer = null;
      this.onConsumerLost();
    });
    this.consumer = ch;
  }

  /** The reply channel or connection died: replies sent meanwhile may be lost (as in Celery); resume consuming. */
  private onConsumerLost(): void {
    if (this.closed || !this.wantReplies || this.consumer || this.consumerStarting) return;
    this.consumerStarting = (async () => {
      for (let attempt = 0; !this.closed && !this.consumer; attempt++) {
        await sleep(reconnectDelay(attempt));
        if (this.closed) return;
        try {
          await this.startConsumer();
          this.ctx.logger.info(`rpc:// resumed consuming replies on queue ${this.replyTo}`);
        } catch (err) {
          this.ctx.logger.warning(`rpc:// could not resume consuming replies: ${(err as Error).message}`);
        }
      }
    })().finally(() => { this.consumerStarting = null; });
  }

  private onReply(m: ConsumeMessage | null): void {
    if (!m) {
      this.consumer?.close().catch(() => undefined);
      return;
    }
    let body: Record<string, unknown>;
    const correlationId = m.properties.correlationId == null ? '' : String(m.properties.correlationId);
    try {
      body = readMeta(m.content, this.codec, correlationId, m.properties.contentType ? String(m.properties.contentType) : undefined);
    } catch (err) {
      this.ctx.logger.error(`rpc:// ignoring a reply that cannot be read: ${(err as Error).message}`);
      return;
    }
    const taskId = String(correlationId || body.task_id || '');
    if (!taskId) return;
    const meta: ResultMeta = {
      status: String(body.status ?? 'PENDING'),
      result: body.result ?? null,
      traceback: (body.traceback as string | null) ?? null,
      children: (body.children as unknown[] | null) ?? [],
      date_done: (body.date_done as string | null) ?? null,
      task_id: taskId,
    };
    this.results.delete(taskId);
    this.results.set(taskId, meta);
    if (this.results.size > MAX_BUFFERED) this.results.delete(this.results.keys().next().value!);
    this.events.emit(taskId);
  }

  private async publishChannel(): Promise<ConfirmChannel> {
    const p = this.publisher;
    if (p && p.generation === this.conn.generation && this.conn.isOpen) return p.ch;
    this.publisherOpening ??= (async () => {
      const model = await this.conn.open();
      const ch = await model.createConfirmChannel();
      const entry = { ch, generation: this.conn.generation };
      ch.on('error', (err: Error) => this.ctx.logger.warning(`rpc:// publish channel error: ${err.message}`));
      ch.on('close', () => { if (this.publisher === entry) this.publisher = null; });
      this.publisher = entry;
      return ch;
    })().finally(() => { this.publisherOpening = null; });
    return this.publisherOpening;
  }

  async store(meta: ResultMeta, ctx?: StoreContext): Promise<void> {
    const replyTo = ctx?.replyTo;
    if (!replyTo) return; // Celery does the same: no reply_to, nobody to tell
    // The reply carries what Celery's rpc backend sends: no date_done, no extended fields.
    const reply: ResultMeta = { task_id: meta.task_id, status: meta.status, result: meta.result ?? null, traceback: meta.traceback ?? null, children: meta.children ?? [] } as ResultMeta;
    reply[PEER_TAGS] = meta[PEER_TAGS];
    const data = encodeWith(this.codec, this.ctx.logger, reply).encoded;
    const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const opts = {
      contentType: this.codec.serializer.contentType,
      contentEncoding: this.codec.serializer.contentEncoding,
      headers: {},
      deliveryMode: this.ctx.settings.result_persistent ? 2 : 1,
      priority: 0,
      correlationId: ctx?.correlationId || meta.task_id,
    };
    for (let attempt = 0; ; attempt++) {
      try {
        const ch = await this.publishChannel();
        await new Promise<void>((resolve, reject) => {
          ch.publish('', replyTo, body, opts, (err: unknown) => (err ? reject(err instanceof Error ? err : new Error('nack')) : resolve()));
        });
        return;
      } catch (err) {
        const permanent = err instanceof BrokerConnectionError && err.permanent;
        if (permanent || this.closed || attempt + 1 >= STORE_ATTEMPTS) {
          throw new Error(`rpc:// could not send the ${meta.status} reply for task ${meta.task_id} to ${replyTo}: ${(err as Error).message}`);
        }
        await sleep(Math.min(1000, 200 * (attempt + 1)));
      }
    }
  }

  /** Celery's rpc backend refuses chords: replies go to one client, so no worker can see the others' results. */
  ensureChordsAllowed(): void {
    throw new NotImplementedError(
      'The "rpc" result backend does not support chords!\n\nNote that a group chained with a task is also upgraded to be a chord,\n'
      + 'as this pattern requires synchronization.\n\nResult backends that supports chords: Redis, Database, Memcached, and more.',
    );
  }

  async get(taskId: string): Promise<ResultMeta> {
    await this.ensureConsuming();
    return this.results.get(taskId) ?? pendingMeta(taskId);
  }

  async wait(taskId: string, opts: WaitOptions = {}): Promise<ResultMeta> {
    await this.ensureConsuming();
    return waitForReady({
      taskId,
      opts,
      get: async () => this.results.get(taskId) ?? pendingMeta(taskId),
      subscribe: (wake) => {
        this.events.on(taskId, wake);
        return () => { this.events.off(taskId, wake); };
      },
    });
  }

  async forget(taskId: string): Promise<void> {
    this.results.delete(taskId);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.consumer = null;
    this.publisher = null;
    await this.conn.close();
  }
}

export function createBackend(_url: string, ctx: BackendContext): ResultBackend {
  return new RpcBackend(ctx);
}
