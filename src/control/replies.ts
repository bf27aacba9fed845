// The replies of remote-control commands, typed as Celery's workers send them (Python and TypeScript
// workers answer alike), and Celery's flatten_reply with its duplicate-nodename warning.

/** A control command's answer: `{ ok: message }` or `{ error: message }`. */
export type OkReply = { ok: string } | { error: string };

/** Celery's Request.info(): a task a worker holds. */
export interface TaskInfo {
  id: string;
  name: string;
  /** The arguments (as their repr strings when asked with safe=true). */
  args: unknown;
  kwargs: unknown;
  type: string;
  hostname: string;
  /** Unix time the task started, or null when it has not. */
  time_start: number | null;
  acknowledged: boolean;
  delivery_info: { exchange: string; routing_key: string; priority: number | null; redelivered: boolean };
  /** The process running it, or null when it has not started. */
  worker_pid: number | null;
}

/** inspect scheduled: a task held until its ETA. */
export interface ScheduledInfo {
  eta: string | null;
  priority: number;
  request: TaskInfo;
}

/** inspect query_task: per id, where the task is ('active', 'reserved', 'ready') and its info. */
export type QueryTaskReply = Record<string, [state: string, info: TaskInfo]>;

export interface PoolStats {
  'max-concurrency': number;
  implementation: string;
  processes: number[];
  'max-tasks-per-child'?: number | 'N/A';
  timeouts?: [number | null, number | null];
  [key: string]: unknown;
}

export interface BrokerStats {
  hostname: string | null;
  port: number | null;
  transport: string;
  virtual_host: string | null;
  userid: string | null;
  ssl: boolean;
  login_method: string | null;
  connect_timeout: number;
  heartbeat: number | null;
  insist: boolean;
  uri_prefix: string | null;
  transport_options: Record<string, unknown>;
  [key: string]: unknown;
}

/** inspect stats (Celery's worker stats, the fields that make sense in Node). */
export interface WorkerStats {
  total: Record<string, number>;
  pid: number;
  /** The worker's Lamport clock, as a string. */
  clock: string;
  /** Seconds since the worker started. */
  uptime: number;
  pool: PoolStats;
  broker: BrokerStats;
  prefetch_count: number;
  rusage: Record<string, number> | 'N/A';
  autoscaler?: { max: number; min: number; qty: number };
  [key: string]: unknown;
}

/** inspect active_queues: a queue as kombu describes it (RabbitMQ-oriented; other transports fill what applies). */
export interface QueueInfo {
  name: string;
  exchange: { name: string; type: string; arguments: null; durable: boolean; passive: boolean; auto_delete: boolean; delivery_mode: number | null; no_declare: boolean };
  routing_key: string;
  queue_arguments: Record<string, unknown> | null;
  binding_arguments: null;
  consumer_arguments: null;
  durable: boolean;
  exclusive: boolean;
  auto_delete: boolean;
  no_ack: boolean;
  alias: null;
  bindings: unknown[];
  no_declare: boolean | null;
  expires: number | null;
  message_ttl: number | null;
  max_length: number | null;
  max_length_bytes: number | null;
  max_priority: number | null;
}

/** What each inspect command answers, per worker. */
export interface InspectReplies {
  ping: OkReply;
  active: TaskInfo[];
  reserved: TaskInfo[];
  scheduled: ScheduledInfo[];
  registered: string[];
  stats: WorkerStats;
  revoked: string[];
  query_task: QueryTaskReply;
  active_queues: QueueInfo[];
  conf: Record<string, unknown>;
  report: OkReply;
  clock: { clock: number };
}

/** One reply per worker, as the wire carries them: `{ hostname: answer }`. */
export type ControlReply<T = unknown> = Record<string, T>;

export const DUPLICATE_NODENAME =
  'Please make sure you give each node a unique nodename using the celery worker `-n` option (celeriac worker -n).';

/** The warning Celery gives when two replies come from one node name. */
export function duplicateNodenameWarning(names: string[]): string {
  return `Received multiple replies from node ${names.length === 1 ? 'name' : 'names'}: ${names.sort().join(', ')}.\n${DUPLICATE_NODENAME}`;
}

/** Warn as Celery does when two replies carry one node name (Python's warnings.warn; Node's process warning). */
export function warnDuplicateNodenames(names: string[]): void {
  process.emitWarning(duplicateNodenameWarning(names), 'DuplicateNodenameWarning');
}

/**
 * Celery's flatten_reply: [{a: x}, {b: y}] → {a: x, b: y}. Names that replied more than once are
 * passed to `onDuplicate` (Celery warns with DuplicateNodenameWarning); the last reply wins.
 */
export function flattenReplies<T>(replies: ControlReply<T>[], onDuplicate?: (names: string[]) => void): Record<string, T> {
  const nodes: Record<string, T> = {};
  const dupes = new Set<string>();
  for (const item of replies) {
    for (const [name, value] of Object.entries(item)) {
      if (Object.hasOwn(nodes, name)) dupes.add(name);
      nodes[name] = value;
    }
  }
  if (dupes.size > 0) onDuplicate?.([...dupes]);
  return nodes;
}
