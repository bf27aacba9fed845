// The worker's answers to remote control (revoke, rate_limit, time_limit, stats, active, …): what
// control/commands.ts runs on this worker.
import type { ResultMeta } from '../backends/types.js';
import type { ControlledWorker } from '../control/commands.js';
import { TaskRevokedError } from '../app/exceptions.js';
import type { Executor, PoolKind } from './executor.js';
import type { AsyncPool } from './pool.js';
import type { EtaSchedule } from './eta.js';
import type { RateLimiter } from './rate-limit.js';
import { parseRate } from './rate-limit.js';
import { terminateSignal } from './revoked.js';
import type { AutoscaleLimits } from './autoscale.js';
import type { RequestOwner } from './request.js';

/** The worker as remote control sees it. */
export interface ControlSubject extends RequestOwner {
  readonly poolKind: PoolKind;
  readonly concurrency: number;
  readonly prefetch: number;
  readonly pool: AsyncPool;
  readonly eta: EtaSchedule;
  readonly rateLimiter: RateLimiter;
  readonly totals: Map<string, number>;
  readonly startedAt: number;
  readonly autoscaleLimits: AutoscaleLimits | undefined;
  readonly executor: Executor;
  requestShutdown(): void;
}

export class WorkerControlTarget implements ControlledWorker {
  constructor(private readonly w: ControlSubject) {}

  get hostname(): string {
    return this.w.hostname;
  }

  /** Revoke: remember, drop held ETA messages (REVOKED), stop running ones with terminate, else store REVOKED. */
  async revoke(ids: string[], opts: { terminate: boolean; signal: string }): Promise<{ ok: string }> {
    const w = this.w;
    for (const id of ids) w.revoked.add(id);
    const { signal, known } = terminateSignal(opts.signal);
    if (opts.terminate && !known) w.logger.warning(`revoke: unknown signal ${JSON.stringify(opts.signal)}; using SIGTERM`);
    for (const held of w.eta.take(new Set(ids))) await held.onRevoked('revoked');
    const terminated: string[] = [];
    for (const id of ids) {
      if (opts.terminate) {
        for (const r of w.running) {
          if (r.id !== id) continue;
          w.logger.info(`Terminating ${r.taskName}[${id}] (${w.poolKind === 'process' ? signal : `${signal} ignored by the ${w.poolKind} pool`})`);
          if (w.executor.kill(r.key, new TaskRevokedError('terminated'), signal)) terminated.push(id);
        }
      } else if (w.backend && ![...w.running].some((r) => r.id === id)) {
        await this.markRevoked(id);
      }
    }
    w.logger.info(`Tasks flagged as revoked: ${ids.join(', ')}`);
    if (opts.terminate) return { ok: terminated.length ? `terminate: ${terminated.join(', ')}` : 'terminate: tasks unknown' };
    return { ok: `tasks {${ids.map((i) => `'${i}'`).join(', ')}} flagged as revoked` };
  }

  /** Celery >= 5.6.2 marks the task REVOKED at once; a task that already finished keeps its result. */
  private async markRevoked(id: string): Promise<void> {
    const backend = this.w.backend!;
    let cur: ResultMeta | null = null;
    const still = 'The worker still discards the task if it arrives, but its result stays as it was: check that the result backend answers (result_backend) and revoke again to mark it.';
    try {
      cur = await backend.get(id);
    } catch (err) {
      this.w.logger.error(`revoke: could not read the state of task ${id} to mark it REVOKED: ${(err as Error).message}. ${still}`);
      return;
    }
    if (!cur || !['PENDING', 'RETRY', 'STARTED', 'RECEIVED'].includes(cur.status)) return;
    const exc = { exc_type: 'TaskRevokedError', exc_message: ['revoked'], exc_module: 'celery.exceptions' };
    const meta = { status: 'REVOKED', result: exc, traceback: null, children: null, date_done: new Date().toISOString().replace('Z', '+00:00'), task_id: id } as ResultMeta;
    try {
      await backend.store(meta, {});
    } catch (err) {
      this.w.logger.error(`revoke: could not store REVOKED for task ${id}: ${(err as Error).message}. ${still}`);
    }
  }

  setRateLimit(name: string, rate: string | number | null): unknown {
    if (!this.w.host.tasks.has(name)) return { error: `unknown task ${name}` };
    this.w.rateLimiter.set(name, parseRate(rate));
    return { ok: 'new rate limit set successfully' };
  }

  setTimeLimit(name: string, soft: number | null, hard: number | null): unknown {
    if (!this.w.host.tasks.has(name)) return { error: `unknown task ${name}` };
    this.w.timeLimits.set(name, { soft, hard });
    return { ok: 'time limits set successfully' };
  }

  shutdown(): void {
    this.w.logger.warning('Got shutdown from remote');
    this.w.requestShutdown();
  }

  stats(): unknown {
    const w = this.w;
    const a = w.autoscaleLimits;
    return {
      total: Object.fromEntries(w.totals), pid: process.pid, uptime: Math.round((Date.now() - w.startedAt) / 1000),
      pool: { 'max-concurrency': w.concurrency, implementation: w.poolKind, processes: w.executor.pids ?? [] },
      ...(a ? { autoscaler: { max: a.max, min: a.min, qty: w.pool.concurrency } } : {}),
      prefetch_count: w.prefetch,
    };
  }

  active(): unknown {
    const w = this.w;
    return [...w.running].map((r) => ({
      id: r.id, name: r.taskName, args: r.args, kwargs: r.kwargs, type: r.taskName,
      hostname: w.hostname, time_start: r.timeStart / 1000, acknowledged: true, worker_pid: process.pid,
      delivery_info: { exchange: r.delivery.exchange, routing_key: r.delivery.routingKey, priority: r.fields.priority, redelivered: r.delivery.redelivered },
    }));
  }

  registered(builtins: boolean): unknown {
    return [...this.w.host.tasks.keys()].filter((n) => builtins || !n.startsWith('celery.')).sort();
  }

  revokedIds(): unknown {
    return this.w.revoked.list();
  }
}
