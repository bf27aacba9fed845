// app.control: broadcast remote-control commands to every worker (Python or TypeScript) on the broker,
// and collect their replies through the transport's reply channel.
import type { Broker } from '../brokers/types.js';
import { loads } from '../protocol/json.js';
import { encodeControlRequest, PIDBOX_EXCHANGE, REPLY_EXCHANGE } from './pidbox.js';

/** What remote control uses of the app. */
export interface ControlHost {
  broker(): Promise<Broker>;
  /** This client's id: the routing key replies come back with (Celery's app.thread_oid). */
  readonly oid: string;
}

export interface RevokeOptions {
  /** Also stop the task if it is running (the thread/process is killed; the async pool aborts and stops waiting). */
  terminate?: boolean;
  /** Signal name or number sent by Python workers when terminating (default SIGTERM). */
  signal?: string | number;
  /** Only these node names (default: every worker). */
  destination?: string[];
}

export interface BroadcastOptions {
  /** Only these node names (default: every worker). */
  destination?: string[];
  /** Seconds: how long workers may still act on the request, and how long replies are awaited (default 1, as Celery). */
  timeout?: number;
  /** Stop waiting after this many replies (default: the number of destinations, if given). */
  limit?: number;
}

/** One reply per worker: { hostname: answer }. */
export type ControlReply = Record<string, unknown>;

export class Control {
  constructor(private readonly host: ControlHost) {}

  /** Send a command to workers without waiting for replies (Celery's broadcast(..., reply=False)). */
  async broadcast(method: string, args: Record<string, unknown> = {}, opts: BroadcastOptions = {}): Promise<void> {
    const broker = await this.fanoutBroker(method);
    const { message } = encodeControlRequest(method, args, { destination: opts.destination ?? null, timeout: opts.timeout });
    await broker.broadcast!(PIDBOX_EXCHANGE, message);
  }

  /** Send a command and collect the replies that arrive within `timeout` seconds (Celery's broadcast(..., reply=True)). */
  async call(method: string, args: Record<string, unknown> = {}, opts: BroadcastOptions = {}): Promise<ControlReply[]> {
    const broker = await this.fanoutBroker(method);
    if (!broker.subscribeReplies) throw new Error(`Remote control replies need a transport with a reply channel; the ${broker.transport} transport has none.`);
    const timeoutS = opts.timeout ?? 1;
    const limit = opts.limit ?? opts.destination?.length ?? Infinity;
    const replies: ControlReply[] = [];
    const { message, ticket } = encodeControlRequest(method, args, { destination: opts.destination ?? null, timeout: timeoutS, replyTo: this.host.oid });
    let done!: () => void;
    const enough = new Promise<void>((r) => (done = r));
    const sub = await broker.subscribeReplies(REPLY_EXCHANGE, this.host.oid, (m) => {
      if (m.headers.ticket !== ticket) return; // a late reply to an earlier request
      try {
        const body = loads(m.body.toString('utf8'));
        if (body && typeof body === 'object' && !Array.isArray(body)) replies.push(body as ControlReply);
      } catch {
        return; // not a reply we can read
      }
      if (replies.length >= limit) done();
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      await broker.broadcast!(PIDBOX_EXCHANGE, message);
      await Promise.race([enough, new Promise<void>((r) => (timer = setTimeout(r, timeoutS * 1000)))]);
    } finally {
      clearTimeout(timer);
      await sub.close().catch(() => undefined);
    }
    return replies;
  }

  /** Ping workers: one { hostname: { ok: 'pong' } } per worker that answered within `timeout` seconds. */
  ping(opts: BroadcastOptions = {}): Promise<ControlReply[]> {
    return this.call('ping', {}, opts);
  }

  /**
   * Revoke tasks: every worker remembers the ids and discards their messages; with terminate, a running
   * task is stopped. Workers store REVOKED in the result backend (as Celery >= 5.6.2 does).
   */
  revoke(taskId: string | string[], opts: RevokeOptions = {}): Promise<void> {
    return this.broadcast('revoke', { task_id: taskId, terminate: opts.terminate ?? false, signal: opts.signal ?? 'SIGTERM' }, { destination: opts.destination });
  }

  /** Revoke and stop a running task (Celery's terminate). */
  terminate(taskId: string | string[], signal: string | number = 'SIGTERM'): Promise<void> {
    return this.revoke(taskId, { terminate: true, signal });
  }

  /** Change a task's rate limit on the workers ('10/s', '100/m', '1000/h', a number, or null for none). */
  rateLimit(taskName: string, rateLimit: string | number | null, opts: { destination?: string[] } = {}): Promise<void> {
    return this.broadcast('rate_limit', { task_name: taskName, rate_limit: rateLimit }, opts);
  }

  /** Change a task's time limits (seconds) on the workers. */
  timeLimit(taskName: string, limits: { soft?: number | null; hard?: number | null }, opts: { destination?: string[] } = {}): Promise<void> {
    return this.broadcast('time_limit', { task_name: taskName, soft: limits.soft ?? null, hard: limits.hard ?? null }, opts);
  }

  /** Ask workers to shut down (warm). */
  shutdown(opts: { destination?: string[] } = {}): Promise<void> {
    return this.broadcast('shutdown', {}, opts);
  }

  private async fanoutBroker(method: string): Promise<Broker> {
    const broker = await this.host.broker();
    if (!broker.broadcast) {
      throw new Error(`Remote control (${method}) needs a broker with fanout support; the ${broker.transport} transport has none.`);
    }
    return broker;
  }
}
