// One AMQP connection that can be reopened: kombu's ensure_connection, without the hidden state.
// `open()` makes one attempt; `openWithRetry()` retries what retrying can fix (refused, timed out) and fails
// at once on what it cannot (wrong password, missing vhost, no permission). A connection that drops emits
// 'lost'; whoever holds channels on it decides whether and when to reopen.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { ChannelModel } from 'amqplib';
import amqplib from './amqplib.js';
import type { Logger } from '../../app/log.js';
import { connectOptions, type AmqpEndpoint } from './url.js';
import { BrokerConnectionError, explainConnectError } from './errors.js';
import { reconnectDelay, sleep } from '../connection-retry.js';
import { unrefSocket } from '../../app/keep-alive.js';

export { sleep, reconnectDelay, maxConnectionRetries } from '../connection-retry.js';

/** An app's idle connection does not hold the process open (app/keep-alive.ts): unref its socket and heartbeat timers. */
function letIdleExit(model: ChannelModel): void {
  type Timers = { sendTimer?: NodeJS.Timeout; recvTimer?: NodeJS.Timeout };
  const c = (model as unknown as { connection?: { stream?: Socket; heartbeater?: Timers } }).connection;
  unrefSocket(c?.stream);
  c?.heartbeater?.sendTimer?.unref();
  c?.heartbeater?.recvTimer?.unref();
}

export class AmqpConnection extends EventEmitter {
  private model: ChannelModel | null = null;
  private opening: Promise<ChannelModel> | null = null;
  private closing = false;
  /** Increases on every successful (re)connect; channels remember the generation they were opened in. */
  generation = 0;

  /** idleExit: unref the socket and heartbeat timers after each connect (app/keep-alive.ts). */
  constructor(readonly endpoint: AmqpEndpoint, private readonly logger: Logger, private readonly label: string, private readonly idleExit = false) {
    super();
  }

  get isOpen(): boolean {
    return this.model !== null;
  }

  get isClosed(): boolean {
    return this.closing;
  }

  /** The open connection, or one attempt to open it. Rejects with a BrokerConnectionError. */
  open(): Promise<ChannelModel> {
    if (this.closing) return Promise.reject(new BrokerConnectionError(`The connection to ${this.endpoint.displayUrl} was closed`, true, 'CLOSED'));
    if (this.model) return Promise.resolve(this.model);
    this.opening ??= this.dial().finally(() => { this.opening = null; });
    return this.opening;
  }

  /** open(), retried up to `max` times (Infinity: forever) for errors a retry can fix. */
  async openWithRetry(max: number): Promise<ChannelModel> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.open();
      } catch (err) {
        const e = err as BrokerConnectionError;
        if (e.permanent || attempt >= max || this.closing) throw err;
        const delay = reconnectDelay(attempt);
        this.logger.warning(`${e.message}. Trying again in ${(delay / 1000).toFixed(2)} seconds... (${attempt + 1}/${max === Infinity ? '∞' : max})`);
        await sleep(delay);
      }
    }
  }

  private async dial(): Promise<ChannelModel> {
    const ep = this.endpoint;
    let model: ChannelModel;
    try {
      model = await amqplib.connect(connectOptions(ep), {
        ...ep.tlsOptions,
        timeout: Math.max(1, ep.connectTimeout) * 1000,
        noDelay: true,
        clientProperties: { connection_name: `celeriac ${this.label} pid ${process.pid}` },
      });
    } catch (err) {
      throw explainConnectError(err, ep);
    }
    if (this.closing) {
      await model.close().catch(() => undefined);
      throw new BrokerConnectionError(`The connection to ${ep.displayUrl} was closed`, true, 'CLOSED');
    }
    model.on('error', (err: Error) => this.logger.warning(`AMQP connection (${this.label}) to ${ep.displayUrl}: ${err.message}`));
    model.on('blocked', (reason: string) => this.logger.warning(`RabbitMQ is blocking publishes on ${ep.displayUrl}: ${reason}`));
    model.on('unblocked', () => this.logger.info(`RabbitMQ unblocked publishes on ${ep.displayUrl}`));
    model.on('close', (err?: Error) => {
      if (this.model !== model) return;
      this.model = null;
      if (!this.closing) {
        this.logger.warning(`Lost the AMQP connection (${this.label}) to ${ep.displayUrl}${err ? `: ${err.message}` : ''}`);
        this.emit('lost', err);
      }
    });
    if (this.idleExit) letIdleExit(model);
    this.model = model;
    this.generation++;
    return model;
  }

  async close(): Promise<void> {
    this.closing = true;
    const pending = this.opening;
    if (pending) await pending.catch(() => undefined);
    const model = this.model;
    this.model = null;
    if (model) await model.close().catch(() => undefined);
  }
}
