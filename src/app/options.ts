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

/** The largest time a JavaScript Date holds (±8.64e15 ms from 1970). */
const MAX_DATE_MS = 8.64e15;

function shown(v: unknown): string {
  if (v instanceof Date) return `Invalid Date`;
  if (typeof v === 'number') return String(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** A number of seconds from now that lands on a representable date. */
function checkSeconds(where: string, option: string, v: unknown): void {
  if (typeof v !== 'number') throw new TypeError(`${where}: ${option} must be a number of seconds, got ${shown(v)} (${typeof v})`);
  if (!Number.isFinite(v) || Math.abs(Date.now() + v * 1000) > MAX_DATE_MS) {
    throw new RangeError(`${where}: ${option} must be a finite number of seconds within the range of a date, got ${shown(v)}`);
  }
}

/** A Date or an ISO-8601 string that names a real instant. */
function checkDate(where: string, option: string, v: unknown, alsoSeconds: boolean): void {
  const kinds = alsoSeconds ? 'a number of seconds, a Date or an ISO-8601 string' : 'a Date or an ISO-8601 string';
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new RangeError(`${where}: ${option} must be ${kinds}, got an Invalid Date`);
    return;
  }
  if (typeof v === 'string') {
    if (v.trim() === '' || Number.isNaN(Date.parse(v))) throw new RangeError(`${where}: ${option} must be ${kinds}, got ${shown(v)}`);
    return;
  }
  throw new TypeError(`${where}: ${option} must be ${kinds}, got ${shown(v)} (${typeof v})`);
}

/**
 * countdown, eta and expires of one call, checked before any message is built: a bad value is an
 * error naming the option and the value. `where` names the call (a function is called only on error).
 */
export function checkTimingOptions(where: string | (() => string), o: { countdown?: unknown; eta?: unknown; expires?: unknown }): void {
  if (o.countdown == null && o.eta == null && o.expires == null) return;
  const at = typeof where === 'string' ? where : where();
  if (o.countdown != null) checkSeconds(at, 'countdown', o.countdown);
  if (o.eta != null) checkDate(at, 'eta', o.eta, false);
  if (o.expires != null) {
    if (typeof o.expires === 'number') checkSeconds(at, 'expires', o.expires);
    else checkDate(at, 'expires', o.expires, true);
  }
}
