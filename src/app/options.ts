// Task options and call options: camelCase or Celery's snake_case, normalized once at the edge.
import { toSettingName } from './settings.js';

export interface TaskOptions {
  /** Give the handler the running task (request, retry) as its first argument. */
  bind?: boolean;
  /** Parameter names for mapping Python kwargs, when they can't be read from the handler. */
  params?: string[];
  queue?: string;
  priority?: number;
  acksLate?: boolean;
  rejectOnWorkerLost?: boolean;
  ignoreResult?: boolean;
  storeErrorsEvenIfIgnored?: boolean;
  trackStarted?: boolean;
  maxRetries?: number | null;
  defaultRetryDelay?: number;
  timeLimit?: number | null;
  softTimeLimit?: number | null;
  rateLimit?: string | number | null;
  /** One limit for all workers sharing the broker (Celery has only the per-worker rateLimit). */
  globalRateLimit?: string | number | null;
  expires?: number | Date | null;
  autoretryFor?: (new (...a: never[]) => Error)[] | string[];
  retryBackoff?: boolean | number;
  retryJitter?: boolean;
  retryKwargs?: { maxRetries?: number; countdown?: number; max_retries?: number };
  retryBackoffMax?: number;
  dontAutoretryFor?: (new (...a: never[]) => Error)[] | string[];
  acksOnFailureOrTimeout?: boolean;
  /** How often a message may be requeued after its executor died (reject_on_worker_lost); default 3. */
  maxRedeliveries?: number;
  /** Celery's Task.serializer: 'json' or 'msgpack' for this task's messages (default task_serializer). */
  serializer?: string;
  /** Python floats with a whole value (2.0) arrive as Float, so they go back as floats (JSON only). */
  exactFloats?: boolean;
  [celeryName: string]: unknown;
}

export interface ApplyOptions {
  taskId?: string;
  countdown?: number;
  eta?: Date | string;
  expires?: number | Date | string;
  queue?: string;
  exchange?: string;
  routingKey?: string;
  priority?: number;
  headers?: Record<string, unknown>;
  timeLimit?: number;
  softTimeLimit?: number;
  ignoreResult?: boolean;
  shadow?: string;
  retries?: number;
  parentId?: string;
  rootId?: string;
  groupId?: string;
  groupIndex?: number;
  compression?: string;
  serializer?: string;
  replyTo?: string;
  /** Python spellings are accepted too: task_id, routing_key, time_limit, soft_time_limit, … */
  [celeryName: string]: unknown;
}

/** Normalize to Celery's snake_case names (acksLate → acks_late, taskId → task_id). */
export function normalizeOptions<T extends object>(o: T | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!o) return out;
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[toSettingName(k)] = v;
  return out;
}
