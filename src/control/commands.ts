// The remote-control command table (Celery's control.Panel): one entry per command, each returning
// its reply. A new command is one entry here and, if it needs the worker, one member of ControlledWorker.
import { taskIds } from './pidbox.js';

/** What the commands use of a worker. */
export interface ControlledWorker {
  readonly hostname: string;
  revoke(ids: string[], opts: { terminate: boolean; signal: string }): Promise<unknown>;
  setRateLimit(taskName: string, rate: string | number | null): unknown;
  setTimeLimit(taskName: string, soft: number | null, hard: number | null): unknown;
  /** Begin a warm shutdown (after the reply, if any, is sent). */
  shutdown(): void;
  stats(): unknown;
  active(): unknown;
  /** Registered task names; Celery's own celery.* built-ins only when asked for. */
  registered(builtins: boolean): unknown;
  revokedIds(): unknown;
}

export type ControlCommand = (worker: ControlledWorker, args: Record<string, unknown>) => unknown;

export const COMMANDS: Readonly<Record<string, ControlCommand>> = {
  ping: () => ({ ok: 'pong' }),
  revoke: (w, a) => w.revoke(taskIds(a.task_id), { terminate: a.terminate === true, signal: String(a.signal ?? 'SIGTERM') }),
  terminate: (w, a) => w.revoke(taskIds(a.task_id), { terminate: true, signal: String(a.signal ?? 'SIGTERM') }),
  rate_limit: (w, a) => w.setRateLimit(String(a.task_name), (a.rate_limit ?? null) as string | number | null),
  time_limit: (w, a) => w.setTimeLimit(String(a.task_name), numberOrNull(a.soft), numberOrNull(a.hard)),
  shutdown: (w) => {
    w.shutdown();
    return null;
  },
  stats: (w) => w.stats(),
  active: (w) => w.active(),
  registered: (w, a) => w.registered(a.builtins === true),
  revoked: (w) => w.revokedIds(),
};

/** Commands after which no reply is sent (the worker is going away). */
export const NO_REPLY: ReadonlySet<string> = new Set(['shutdown']);

function numberOrNull(v: unknown): number | null {
  const n = Number(v);
  return v === null || v === undefined || !Number.isFinite(n) ? null : n;
}
