// app.control: broadcast remote-control commands to every worker (Python or TypeScript) on the broker,
// and collect their replies through the transport's reply channel (Celery's Control and kombu's Mailbox).
import type { BroadcastSubscription, Broker } from '../brokers/types.js';
import type { Message } from '../protocol/message.js';
import { loads } from '../protocol/json.js';
import { encodeControlRequest, PIDBOX_EXCHANGE, REPLY_EXCHANGE } from './pidbox.js';
import { Inspect, type InspectOptions } from './inspect.js';
import type { ControlReply, OkReply } from './replies.js';

export type { ControlReply } from './replies.js';

/** What remote control uses of the app. */
export interface ControlHost {
  broker(): Promise<Broker>;
  /** This client's id: the routing key replies come back with (Celery's app.thread_oid). */
  readonly oid: string;
}

export interface RevokeOptions extends BroadcastOptions {
  /** Also stop the task if it is running (the thread/process is killed; the async pool aborts and stops waiting). */
  terminate?: boolean;
  /** Signal name or number sent by Python workers when terminating (default SIGTERM). */
  signal?: string | number;
}

export interface BroadcastOptions {
  /** Only these node names (default: every worker). */
  destination?: string[];
  /** Only the nodes whose name matches (kombu's pattern, with `matcher`), when no destination is given. */
  pattern?: string;
  /** 'glob' (fnmatch on the whole name) or 'pcre' (re.match); both needed for a pattern to apply. */
  matcher?: 'glob' | 'pcre';
  /** Seconds: how long workers may still act on the request, and how long replies are awaited (default 1, as Celery). */
  timeout?: number;
  /** Stop waiting after this many replies (default: the number of destinations, if given). */
  limit?: number;
  /** Called with each reply as it arrives. */
  callback?: (reply: ControlReply) => void;
  /** Stop waiting for replies (those received so far are returned). */
  abort?: AbortSignal;
  /** Called once the request is on the broker, before replies are awaited. */
  onSent?: () => void;
}

/** A broadcast that waits for replies (Celery's reply=True) returns them; without, nothing. */
export type ReplyOptions = BroadcastOptions & { reply: true };

export class Control {
  /** The reply subscription shared by the requests in flight, and each one's handler by ticket. */
  private replyRoute: { opened: Promise<BroadcastSubscription>; tickets: Map<string, (m: Message) => void> } | undefined;
  /** The last reply subscription's close: a new one waits for it (the same queue or channel). */
  private replyClosing: Promise<void> = Promise.resolve();

  constructor(private readonly host: ControlHost) {}

  /** A client for the inspect commands (Celery's app.control.inspect()). */
  inspect(opts: InspectOptions = {}): Inspect {
    return new Inspect(this, opts);
  }

  /**
   * Send a command to workers (Celery's broadcast): with `reply: true` collect the replies that arrive
   * within `timeout` seconds, one `{ hostname: answer }` per worker; without, resolve once it is sent.
   */
  broadcast(method: string, args: Record<string, unknown>, opts: ReplyOptions): Promise<ControlReply[]>;
  broadcast(method: string, args?: Record<string, unknown>, opts?: BroadcastOptions & { reply?: false }): Promise<void>;
  broadcast(method: string, args?: Record<string, unknown>, opts?: BroadcastOptions & { reply?: boolean }): Promise<ControlReply[] | void>;
  async broadcast(method: string, args: Record<string, unknown> = {}, opts: BroadcastOptions & { reply?: boolean } = {}): Promise<ControlReply[] | void> {
    if (opts.reply) return this.call(method, args, opts);
    const broker = await this.fanoutBroker(method);
    const { message } = encodeControlRequest(method, args, { destination: opts.destination ?? null, timeout: opts.timeout, pattern: opts.pattern, matcher: opts.matcher });
    await broker.broadcast!(PIDBOX_EXCHANGE, message);
    opts.onSent?.();
  }

  /** Send a command and collect the replies that arrive within `timeout` seconds (Celery's broadcast(..., reply=True)). */
  async call(method: string, args: Record<string, unknown> = {}, opts: BroadcastOptions = {}): Promise<ControlReply[]> {
    const broker = await this.fanoutBroker(method);
    if (!broker.subscribeReplies) throw new Error(`Remote control replies need a transport with a reply channel; the ${broker.transport} transport has none.`);
    const timeoutS = opts.timeout ?? 1;
    const limit = opts.limit ?? opts.destination?.length ?? Infinity;
    const replies: ControlReply[] = [];
    const { message, ticket } = encodeControlRequest(method, args, {
      destination: opts.destination ?? null, timeout: timeoutS, replyTo: this.host.oid, pattern: opts.pattern, matcher: opts.matcher,
    });
    let done!: () => void;
    const enough = new Promise<void>((r) => (done = r));
    const stopListening = await this.listen(broker, ticket!, (m) => {
      if (replies.length >= limit) return;
      let body: unknown;
      try {
        body = loads(m.body.toString('utf8'));
      } catch {
        return; // not a reply we can read
      }
      if (!body || typeof body !== 'object' || Array.isArray(body)) return;
      replies.push(body as ControlReply);
      try {
        opts.callback?.(body as ControlReply);
      } finally {
        if (replies.length >= limit) done();
      }
    });
    let timer: NodeJS.Timeout | undefined;
    const aborted = () => done();
    opts.abort?.addEventListener('abort', aborted, { once: true });
    try {
      await broker.broadcast!(PIDBOX_EXCHANGE, message);
      opts.onSent?.();
      if (limit > 0 && !opts.abort?.aborted) await Promise.race([enough, new Promise<void>((r) => (timer = setTimeout(r, timeoutS * 1000)))]);
    } finally {
      clearTimeout(timer);
      opts.abort?.removeEventListener('abort', aborted);
      await stopListening();
    }
    return replies;
  }

  /**
   * Route the replies of one request (by its ticket) off this client's one reply subscription, made
   * when a request starts with none open and closed when the last one ends. Calls in flight together
   * share it: on RabbitMQ two consumers of one reply queue would split its messages between them, and
   * the auto-delete queue would vanish under the other when the first closed.
   */
  private async listen(broker: Broker, ticket: string, handler: (m: Message) => void): Promise<() => Promise<void>> {
    let route = this.replyRoute;
    if (!route) {
      const tickets = new Map<string, (m: Message) => void>();
      const opened = this.replyClosing.then(() =>
        broker.subscribeReplies!(REPLY_EXCHANGE, this.host.oid, (m) => tickets.get(String(m.headers.ticket))?.(m)), // a late reply to an ended request finds none
      );
      const made = { opened, tickets };
      route = this.replyRoute = made;
      opened.catch(() => {
        if (this.replyRoute === made) this.replyRoute = undefined;
      });
    }
    const r = route;
    r.tickets.set(ticket, handler);
    try {
      await r.opened;
    } catch (err) {
      r.tickets.delete(ticket);
      throw err;
    }
    return async () => {
      r.tickets.delete(ticket);
      if (r.tickets.size > 0 || this.replyRoute !== r) return;
      this.replyRoute = undefined;
      await (this.replyClosing = r.opened.then((sub) => sub.close()).catch(() => undefined));
    };
  }

  /** Ping workers: one { hostname: { ok: 'pong' } } per worker that answered within `timeout` seconds. */
  ping(opts: BroadcastOptions = {}): Promise<ControlReply<OkReply>[]> {
    return this.call('ping', {}, opts) as Promise<ControlReply<OkReply>[]>;
  }

  /**
   * Revoke tasks: every worker remembers the ids and discards their messages; with terminate, a running
   * task is stopped. Workers store REVOKED in the result backend (as Celery >= 5.6.2 does).
   */
  revoke(taskId: string | string[], opts: RevokeOptions & { reply: true }): Promise<ControlReply<OkReply>[]>;
  revoke(taskId: string | string[], opts?: RevokeOptions & { reply?: false }): Promise<void>;
  revoke(taskId: string | string[], opts: RevokeOptions & { reply?: boolean } = {}): Promise<ControlReply<OkReply>[] | void> {
    const { terminate = false, signal = 'SIGTERM', ...rest } = opts;
    return this.send('revoke', { task_id: taskId, terminate, signal }, rest);
  }

  /** Revoke and stop a running task (Celery's terminate). */
  terminate(taskId: string | string[], signal: string | number = 'SIGTERM', opts: BroadcastOptions = {}): Promise<void> {
    return this.revoke(taskId, { ...opts, terminate: true, signal });
  }

  /** Change a task's rate limit on the workers ('10/s', '100/m', '1000/h', a number, or null for none). */
  rateLimit(taskName: string, rateLimit: string | number | null, opts: BroadcastOptions & { reply?: boolean } = {}): Promise<ControlReply<OkReply>[] | void> {
    return this.send('rate_limit', { task_name: taskName, rate_limit: rateLimit }, opts);
  }

  /** Change a task's time limits (seconds) on the workers. */
  timeLimit(taskName: string, limits: { soft?: number | null; hard?: number | null }, opts: BroadcastOptions & { reply?: boolean } = {}): Promise<ControlReply<OkReply>[] | void> {
    return this.send('time_limit', { task_name: taskName, soft: limits.soft ?? null, hard: limits.hard ?? null }, opts);
  }

  /** Start consuming from a queue (Celery's add_consumer; the exchange and routing key default to the queue's name). */
  addConsumer(queue: string, o: { exchange?: string; exchangeType?: string; routingKey?: string } & BroadcastOptions & { reply?: boolean } = {}): Promise<ControlReply<OkReply>[] | void> {
    const { exchange, exchangeType, routingKey, ...opts } = o;
    return this.send('add_consumer', { queue, exchange: exchange ?? null, exchange_type: exchangeType ?? 'direct', routing_key: routingKey ?? null }, opts);
  }

  /** Stop consuming from a queue (Celery's cancel_consumer). */
  cancelConsumer(queue: string, opts: BroadcastOptions & { reply?: boolean } = {}): Promise<ControlReply<OkReply>[] | void> {
    return this.send('cancel_consumer', { queue }, opts);
  }

  /** Grow the pool by n slots (not with autoscale). */
  poolGrow(n = 1, opts: BroadcastOptions & { reply?: boolean } = {}): Promise<ControlReply<OkReply>[] | void> {
    return this.send('pool_grow', { n }, opts);
  }

  /** Shrink the pool by n slots (not with autoscale). */
  poolShrink(n = 1, opts: BroadcastOptions & { reply?: boolean } = {}): Promise<ControlReply<OkReply>[] | void> {
    return this.send('pool_shrink', { n }, opts);
  }

  /** Change the autoscale range of the workers started with --autoscale. */
  autoscale(max: number, min: number, opts: BroadcastOptions & { reply?: boolean } = {}): Promise<ControlReply<OkReply>[] | void> {
    return this.send('autoscale', { max, min }, opts);
  }

  /** Turn task events on (what -E does at start). */
  enableEvents(opts: BroadcastOptions & { reply?: boolean } = {}): Promise<ControlReply<OkReply>[] | void> {
    return this.send('enable_events', {}, opts);
  }

  /** Turn task events off. */
  disableEvents(opts: BroadcastOptions & { reply?: boolean } = {}): Promise<ControlReply<OkReply>[] | void> {
    return this.send('disable_events', {}, opts);
  }

  /** Ask the workers for a worker-heartbeat event now. */
  heartbeat(opts: BroadcastOptions & { reply?: boolean } = {}): Promise<ControlReply[] | void> {
    return this.send('heartbeat', {}, opts);
  }

  /** Ask workers to shut down (warm). Never answered: a worker going away sends no reply. */
  shutdown(opts: BroadcastOptions = {}): Promise<void> {
    return this.broadcast('shutdown', {}, opts);
  }

  private send<T>(method: string, args: Record<string, unknown>, opts: BroadcastOptions & { reply?: boolean }): Promise<ControlReply<T>[] | void> {
    return this.broadcast(method, args, opts) as Promise<ControlReply<T>[] | void>;
  }

  private async fanoutBroker(method: string): Promise<Broker> {
    const broker = await this.host.broker();
    if (!broker.broadcast) {
      throw new Error(`Remote control (${method}) needs a broker with fanout support; the ${broker.transport} transport has none.`);
    }
    return broker;
  }
}
