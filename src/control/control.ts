// app.control: broadcast remote-control commands to every worker (Python or TypeScript) on the broker.
import type { Celeriac } from '../app/celeriac.js';
import { encodeControlRequest, PIDBOX_EXCHANGE } from './pidbox.js';

export interface RevokeOptions {
  /** Also stop the task if it is running (the thread/process is killed; the async pool aborts and stops waiting). */
  terminate?: boolean;
  /** Signal name or number sent by Python workers when terminating (default SIGTERM). */
  signal?: string | number;
  /** Only these node names (default: every worker). */
  destination?: string[];
}

export class Control {
  constructor(private readonly app: Celeriac) {}

  /** Send a command to workers without waiting for replies (Celery's broadcast(..., reply=False)). */
  async broadcast(method: string, args: Record<string, unknown> = {}, opts: { destination?: string[]; timeout?: number } = {}): Promise<void> {
    const broker = await this.app.broker();
    if (!broker.broadcast) {
      throw new Error(`Remote control (${method}) needs a broker with fanout support; the ${broker.transport} transport has none. Use a redis:// or amqp:// broker.`);
    }
    const { message } = encodeControlRequest(method, args, { destination: opts.destination ?? null, timeout: opts.timeout });
    await broker.broadcast(PIDBOX_EXCHANGE, message);
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
}
