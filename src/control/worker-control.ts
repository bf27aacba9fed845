// The worker's side of remote control: subscribe to celery.pidbox, keep the requests meant for this
// node, run them from the command table and send the reply through the broker's reply channel.
import { randomUUID } from 'node:crypto';
import type { Broker, BroadcastSubscription } from '../brokers/types.js';
import type { Logger } from '../app/log.js';
import { dumps } from '../protocol/json.js';
import type { Message } from '../protocol/message.js';
import { decodeControlRequest, isExpired, PIDBOX_EXCHANGE, type ControlRequest } from './pidbox.js';
import { matchHostname } from './matcher.js';
import { commandFor, NO_REPLY, revokedOnWire, type ControlledWorker } from './commands.js';
import { clock } from '../events/clock.js';
import { Control } from './control.js';
import { duplicateNodenameWarning, type ControlReply } from './replies.js';

/**
 * kombu's Node.handle_message filter: destination list, else pattern with matcher (glob or pcre, see
 * matcher.ts), else everyone. Throws PatternRefused for a pattern this worker will not run.
 */
export function isForNode(req: ControlRequest, hostname: string): boolean {
  if (req.destination) return req.destination.includes(hostname);
  if (req.pattern && req.matcher) return matchHostname(hostname, req.pattern, req.matcher);
  return true;
}

export class WorkerControl {
  private sub: BroadcastSubscription | undefined;

  constructor(private readonly broker: Broker, private readonly target: ControlledWorker, private readonly logger: Logger) {}

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

  private readonly stopping: (() => Promise<void>)[] = [];

  /** Run `fn` when remote control stops (and wait for it). */
  onStop(fn: () => Promise<void>): void {
    this.stopping.push(fn);
  }

  async stop(): Promise<void> {
    for (const fn of this.stopping.splice(0)) await fn().catch(() => undefined);
    await this.sub?.close().catch(() => undefined);
    this.sub = undefined;
  }

  /**
   * Every remote-control message enters here, and nothing it carries may crash the worker: a request
   * that fails to parse or to filter is logged once and dropped (as Celery's Pidbox.on_message does),
   * a command that throws is answered with {error}.
   */
  async onMessage(message: Message): Promise<void> {
    let req: ControlRequest | null = null;
    try {
      req = decodeControlRequest(message);
      if (!req || isExpired(message) || !isForNode(req, this.target.hostname)) return;
      clock.adjust(message.headers.clock);
    } catch (err) {
      const what = req ? `${req.method} with pattern '${req.pattern}' (matcher ${req.matcher})` : 'a control message';
      this.logger.error(`Remote control: ${what} refused: ${(err as Error).message}`);
      return;
    }
    const reply = await this.dispatch(req);
    if (NO_REPLY.has(req.method) || !req.reply_to || !req.ticket) return;
    await this.reply(req, reply).catch((err) => this.logger.warning(`Could not reply to ${req.method}: ${(err as Error).message}`));
  }

  /** Run a command; an unknown one or one that throws is answered with {error}, as kombu's Node.dispatch. */
  async dispatch(req: ControlRequest): Promise<unknown> {
    const command = commandFor(req.method);
    if (!command) return { error: `No such control command: ${req.method}` };
    try {
      return await command(this.target, req.arguments);
    } catch (err) {
      return { error: `${(err as Error)?.name ?? 'Error'}(${JSON.stringify((err as Error)?.message ?? String(err))})` };
    }
  }

  /** The reply goes to the client's reply queue through the transport's reply channel. */
  private async reply(req: ControlRequest, value: unknown): Promise<void> {
    const to = req.reply_to!;
    if (!this.broker.sendReply || typeof to.exchange !== 'string' || typeof to.routing_key !== 'string') return;
    const message: Message = {
      headers: { ticket: req.ticket, clock: clock.forward() },
      properties: { delivery_mode: 1, priority: 0 },
      body: Buffer.from(dumps({ [this.target.hostname]: value }), 'utf8'),
      contentType: 'application/json',
      contentEncoding: 'utf-8',
    };
    await this.broker.sendReply({ exchange: to.exchange, routingKey: to.routing_key }, message);
  }
}

/**
 * Start a worker's remote control. With `checkNodename` (mingle), first say `hello` to every node, as
 * Celery's start-up sync does: the request goes out before this worker listens, so a reply under this
 * worker's own name is another node's (logged as Celery's DuplicateNodenameWarning), and every other
 * node's revoked ids are taken in. The replies are awaited in the background (about a second); the
 * worker does not wait for them.
 */
export async function startWorkerControl(broker: Broker, target: ControlledWorker, logger: Logger, o: { checkNodename: boolean }): Promise<WorkerControl> {
  const control = new WorkerControl(broker, target, logger);
  if (!o.checkNodename || !broker.subscribeReplies) {
    await control.start();
    return control;
  }
  const stopWaiting = new AbortController();
  let sent!: () => void;
  const published = new Promise<void>((r) => (sent = r));
  const probe = new Control({ broker: async () => broker, oid: randomUUID() })
    .call('hello', { from_node: target.hostname, revoked: revokedOnWire(target.revokedEntries()) }, { timeout: 1, abort: stopWaiting.signal, onSent: () => sent() })
    .then((replies) => syncWith(replies, target, logger), (err: unknown) => logger.debug(`mingle: could not sync with other nodes: ${(err as Error).message}`));
  await Promise.race([published, probe]);
  await control.start();
  control.onStop(() => {
    stopWaiting.abort();
    return probe;
  });
  return control;
}

/** mingle's replies: a node of our own name is a duplicate; every other node's revoked ids and clock are taken in. */
function syncWith(replies: readonly ControlReply[], target: ControlledWorker, logger: Logger): void {
  const others: string[] = [];
  for (const reply of replies) {
    for (const [node, value] of Object.entries(reply)) {
      if (node === target.hostname) {
        logger.warning(`DuplicateNodenameWarning: ${duplicateNodenameWarning([target.hostname])}`);
        continue;
      }
      others.push(node);
      if (value && typeof value === 'object') {
        target.mergeRevoked((value as { revoked?: unknown }).revoked);
        clock.adjust((value as { clock?: unknown }).clock);
      }
    }
  }
  logger.info(others.length ? `mingle: sync with ${others.length} node(s): ${others.join(', ')}` : 'mingle: all alone');
}
