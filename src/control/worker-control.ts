// The worker's side of remote control: subscribe to celery.pidbox and run the commands meant for this node.
import type { Broker, BroadcastSubscription } from '../brokers/types.js';
import type { Logger } from '../app/log.js';
import { dumps } from '../protocol/json.js';
import type { Message } from '../protocol/message.js';
import { decodeControlRequest, isExpired, isForNode, PIDBOX_EXCHANGE, taskIds, type ControlRequest } from './pidbox.js';

/** What a worker offers to remote control. */
export interface ControlTarget {
  readonly hostname: string;
  revoke(ids: string[], terminate: boolean, signal: string): Promise<unknown>;
  setRateLimit(taskName: string, rate: string | number | null): unknown;
  setTimeLimit(taskName: string, soft: number | null, hard: number | null): unknown;
  shutdown(): void;
  ping(): unknown;
  stats(): unknown;
  active(): unknown;
  registered(): unknown;
  revokedIds(): unknown;
}

let replyClock = 0;

export class WorkerControl {
  private sub: BroadcastSubscription | undefined;

  constructor(private readonly broker: Broker, private readonly target: ControlTarget, private readonly logger: Logger) {}

  /** False when the transport has no fanout (remote control is then unavailable on this worker). */
  async start(): Promise<boolean> {
    if (!this.broker.subscribeBroadcast) {
      this.logger.info(`Remote control (revoke, ping) is not available on the ${this.broker.transport} transport.`);
      return false;
    }
    this.sub = await this.broker.subscribeBroadcast(PIDBOX_EXCHANGE, `${this.target.hostname}.celery.pidbox`, (m) => {
      this.onMessage(m).catch((err: unknown) => this.logger.error(`Remote control: ${(err as Error)?.message ?? err}`));
    });
    return true;
  }

  async stop(): Promise<void> {
    await this.sub?.close().catch(() => undefined);
    this.sub = undefined;
  }

  /**
   * Every remote-control message enters here, and nothing it carries may crash the worker: a request
   * that fails to parse or to filter is logged once and dropped (as Celery's Pidbox.on_message does),
   * a command that throws is answered with {error}.
   */
  private async onMessage(message: Message): Promise<void> {
    let req: ControlRequest | null = null;
    try {
      req = decodeControlRequest(message);
      if (!req || isExpired(message) || !isForNode(req, this.target.hostname)) return;
    } catch (err) {
      const what = req ? `${req.method} with pattern '${req.pattern}' (matcher ${req.matcher})` : 'a control message';
      this.logger.error(`Remote control: ${what} refused: ${(err as Error).message}`);
      return;
    }
    let reply: unknown;
    try {
      reply = await this.dispatch(req);
    } catch (err) {
      reply = { error: `${(err as Error)?.name ?? 'Error'}(${JSON.stringify((err as Error)?.message ?? String(err))})` };
    }
    if (req.method === 'shutdown' || !req.reply_to || !req.ticket) return;
    await this.reply(req, reply).catch((err) => this.logger.warning(`Could not reply to ${req.method}: ${(err as Error).message}`));
  }

  private async dispatch(req: ControlRequest): Promise<unknown> {
    const a = req.arguments;
    const t = this.target;
    switch (req.method) {
      case 'revoke':
      case 'terminate':
        return t.revoke(taskIds(a.task_id), req.method === 'terminate' || a.terminate === true, String(a.signal ?? 'SIGTERM'));
      case 'rate_limit':
        return t.setRateLimit(String(a.task_name), (a.rate_limit ?? null) as string | number | null);
      case 'time_limit':
        return t.setTimeLimit(String(a.task_name), (a.soft ?? null) as number | null, (a.hard ?? null) as number | null);
      case 'shutdown':
        this.logger.warning(`Got shutdown from remote`);
        t.shutdown();
        return null;
      case 'ping':
        return t.ping();
      case 'stats':
        return t.stats();
      case 'active':
        return t.active();
      case 'registered':
        return t.registered();
      case 'revoked':
        return t.revokedIds();
      default:
        return { error: `No such control command: ${req.method}` };
    }
  }

  /** Replies go to the direct exchange reply.celery.pidbox; only transports that route it safely (Redis). */
  private async reply(req: ControlRequest, value: unknown): Promise<void> {
    if (this.broker.transport !== 'redis') return;
    const message: Message = {
      headers: { ticket: req.ticket, clock: ++replyClock },
      properties: { delivery_mode: 1, priority: 0 },
      body: Buffer.from(dumps({ [this.target.hostname]: value }), 'utf8'),
      contentType: 'application/json',
      contentEncoding: 'utf-8',
    };
    await this.broker.publish(message, { exchange: req.reply_to!.exchange, routingKey: req.reply_to!.routing_key });
  }
}
