// What the dashboard shows of a task and of a worker: the JSON its UI reads, its SSE stream sends and
// its SQLite history keeps (one row per task, keyed by uuid).

export interface TaskView {
  uuid: string;
  name: string | null;
  state: string;
  /** Python repr of the arguments, as the events carry them. */
  args: string | null;
  kwargs: string | null;
  result: string | null;
  exception: string | null;
  traceback: string | null;
  /** Seconds the handler ran. */
  runtime: number | null;
  /** The worker's hostname (the client's for a task only sent so far is in `client`). */
  worker: string | null;
  client: string | null;
  retries: number;
  /** Unix seconds of each event seen. */
  sent: number | null;
  received: number | null;
  started: number | null;
  succeeded: number | null;
  failed: number | null;
  revoked: number | null;
  retried: number | null;
  rejected: number | null;
  eta: string | null;
  expires: string | null;
  parent_id: string | null;
  root_id: string | null;
  group_id: string | null;
  exchange: string | null;
  routing_key: string | null;
  clock: number;
  /** Unix seconds of the event that set the current state. */
  timestamp: number;
}

export interface WorkerView {
  hostname: string;
  online: boolean;
  pid?: number;
  pool?: string;
  concurrency?: number;
  active: number;
  processed: number;
  failed: number;
  retried: number;
  loadavg?: number[];
  /** Seconds since the last heartbeat. */
  heartbeatAge?: number;
  freq?: number;
  sw_ident?: string;
  sw_ver?: string;
  registered?: string[];
  queues?: string[];
}

/** The columns of the tasks table, in TaskView's order. */
export const TASK_COLUMNS = [
  'uuid', 'name', 'state', 'args', 'kwargs', 'result', 'exception', 'traceback', 'runtime', 'worker', 'client', 'retries',
  'sent', 'received', 'started', 'succeeded', 'failed', 'revoked', 'retried', 'rejected', 'eta', 'expires', 'parent_id',
  'root_id', 'group_id', 'exchange', 'routing_key', 'clock', 'timestamp',
] as const satisfies readonly (keyof TaskView)[];

export function emptyTask(uuid: string): TaskView {
  return {
    uuid, name: null, state: 'PENDING', args: null, kwargs: null, result: null, exception: null, traceback: null, runtime: null,
    worker: null, client: null, retries: 0, sent: null, received: null, started: null, succeeded: null, failed: null,
    revoked: null, retried: null, rejected: null, eta: null, expires: null, parent_id: null, root_id: null, group_id: null,
    exchange: null, routing_key: null, clock: 0, timestamp: 0,
  };
}
