// The running task's request, reachable from anywhere inside it (Celery's current_task).
import { AsyncLocalStorage } from 'node:async_hooks';

export interface DeliveryInfo {
  exchange: string;
  routingKey: string;
  priority: number;
  redelivered: boolean;
}

/** What a running task knows about its call (Celery's task.request). */
export interface Request {
  id: string;
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  retries: number;
  eta: Date | null;
  expires: Date | null;
  headers: Record<string, unknown>;
  rootId: string | null;
  parentId: string | null;
  group: string | null;
  groupIndex: number | null;
  origin: string | null;
  hostname: string;
  replyTo: string | null;
  correlationId: string;
  timelimit: [number | null, number | null];
  deliveryInfo: DeliveryInfo;
  isEager: boolean;
}

export interface RetryOptions {
  countdown?: number;
  eta?: Date;
  exc?: unknown;
  maxRetries?: number | null;
  max_retries?: number | null;
  queue?: string;
  priority?: number;
}

/** The task as its handler sees it with bind: true. */
export interface TaskContext {
  readonly name: string;
  readonly request: Request;
  /** Aborted when the soft time limit passes (or the task is revoked with terminate). */
  readonly signal: AbortSignal;
  /** Republish this task to run again later; always throws (use `throw task.retry(...)` for clarity). */
  retry(opts?: RetryOptions): never;
  /** Store a custom state (e.g. PROGRESS) with metadata, as Celery's update_state. */
  updateState(state: string, meta?: unknown): Promise<void>;
  /** Record a result among this task's children (Celery's add_trail): tasks it sends are added for it. */
  addTrail?(result: { asTuple(): unknown }): void;
}

export const taskStorage = new AsyncLocalStorage<TaskContext>();

/** The task whose handler is running synchronously right now (see runInTaskContext). */
let syncCurrent: TaskContext | undefined;

/** The task running in this async context, or undefined outside a task. */
export function currentTask(): TaskContext | undefined {
  return syncCurrent ?? taskStorage.getStore();
}

const asyncHandlers = new WeakSet<object>();

/** A promise or promise-like value (what `await` would wait for). */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && typeof v === 'object' && typeof (v as PromiseLike<unknown>).then === 'function';
}

/**
 * Call a task handler with `ctx` as the current task. An `async function` handler runs inside
 * AsyncLocalStorage, so currentTask() works after every await. Any other handler sees `ctx` while it
 * runs synchronously, without AsyncLocalStorage: using it turns on promise hooks for the whole
 * process, a cost on every promise. A plain function seen returning a promise is treated as async
 * from its next call on (declare such handlers `async` to have currentTask() after an await at once).
 */
export function runInTaskContext(handler: object, ctx: TaskContext, call: () => unknown): unknown {
  if (asyncHandlers.has(handler) || handler.constructor?.name === 'AsyncFunction') return taskStorage.run(ctx, call);
  const previous = syncCurrent;
  syncCurrent = ctx;
  let result: unknown;
  try {
    result = call();
  } finally {
    syncCurrent = previous;
  }
  if (isThenable(result)) asyncHandlers.add(handler);
  return result;
}
