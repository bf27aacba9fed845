// A worker's options (app.worker({...}), the CLI's flags) with the app's settings filled in, each value
// checked once: a bad one fails app.worker() with the option named, as the CLI checks -c, instead of
// reaching the broker as NaN.
import os from 'node:os';
import { createLogger, parseLogLevel, type Logger, type LogLevel } from '../app/log.js';
import type { WorkerHost } from './host.js';
import type { PoolKind } from './executor.js';
import type { AutoscaleLimits } from './autoscale.js';

const POOL_KINDS: readonly PoolKind[] = ['async', 'thread', 'process'];

export interface WorkerOptions {
  queues?: string[];
  concurrency?: number;
  prefetchMultiplier?: number;
  hostname?: string;
  loglevel?: LogLevel | string;
  logger?: Logger;
  /** 'async' (default, I/O-bound tasks), 'thread' (worker_threads) or 'process' (child processes). */
  pool?: PoolKind | string;
  /** The app module thread/process children import (the -A path); required for those pools. */
  module?: string;
  /** [max, min]: grow the pool up to max when work is waiting, shrink back to min when idle. */
  autoscale?: [number, number];
  /** Seconds the pool must be idle before autoscale drops a slot (Celery's AUTOSCALE_KEEPALIVE); default 5. */
  autoscaleKeepalive?: number;
  /** File that keeps revoked task ids across restarts (Celery's --statedb). */
  statedb?: string;
  /** Seconds a cold shutdown still gives running tasks (worker_soft_shutdown_timeout). */
  softShutdownTimeout?: number;
  maxTasksPerChild?: number;
  /** KiB (worker_max_memory_per_child). */
  maxMemoryPerChild?: number;
  /** Listen for revoke/ping/rate_limit on celery.pidbox (worker_enable_remote_control, default true). */
  remoteControl?: boolean;
  /** Send task events (-E, worker_send_task_events; default false): celery events and Flower see the tasks. */
  taskEvents?: boolean;
  /** Send worker-online / worker-heartbeat / worker-offline events (default true; --without-heartbeat). */
  heartbeat?: boolean;
  /** Seconds between worker-heartbeat events (--heartbeat-interval; default 2, as Celery). */
  heartbeatInterval?: number;
  /** At start, ask whether another node answers to this node name and warn if one does (default true; --without-mingle). */
  mingle?: boolean;
}

/** The options with the app's settings filled in, checked once (what the runtime is started with). */
export interface WorkerConfig {
  hostname: string;
  queues: string[];
  logger: Logger;
  concurrency: number;
  prefetchMultiplier: number;
  prefetch: number;
  poolKind: PoolKind;
  autoscale: AutoscaleLimits | undefined;
  childModule: string | undefined;
  maxTasksPerChild: number | null | undefined;
  maxMemoryPerChild: number | null | undefined;
  statedb: string | null;
  softShutdownTimeout: number;
  remoteControl: boolean;
  taskEvents: boolean;
  heartbeat: boolean;
  heartbeatInterval: number;
  mingle: boolean;
}

/** Check every option (and the setting it falls back to); throws naming the first bad one. */
export function workerConfig(host: WorkerHost, opts: WorkerOptions): WorkerConfig {
  const conf = host.conf;
  const option = <T>(name: keyof WorkerOptions, setting: string): { value: T | undefined; name: string } => {
    const given = opts[name];
    if (given !== undefined) return { value: given as T, name: `app.worker({ ${name} })` };
    return { value: (conf as unknown as Record<string, unknown>)[setting] as T | undefined, name: setting };
  };
  const hostname = opts.hostname ?? `celery@${os.hostname()}`;
  if (typeof hostname !== 'string' || hostname.trim() === '') throw new TypeError(`app.worker({ hostname }) must be a node name such as 'w1@host', got ${show(hostname)}`);
  const queues = opts.queues?.length ? opts.queues : [conf.task_default_queue];
  for (const q of queues) if (typeof q !== 'string' || q === '') throw new TypeError(`app.worker({ queues }) must list queue names, got ${show(q)} among ${show(queues)}`);
  const c = option<number | null>('concurrency', 'worker_concurrency');
  let concurrency = c.value == null ? 10 : wholeNumber(c.value, c.name, 1, '-c/--concurrency');
  const m = option<number>('prefetchMultiplier', 'worker_prefetch_multiplier');
  const prefetchMultiplier = m.value == null ? 4 : wholeNumber(m.value, m.name, 0, '--prefetch-multiplier; 0 takes as many messages as the broker gives');
  const logger = opts.logger ?? (opts.loglevel ? createLogger(parseLogLevel(String(opts.loglevel)), undefined, undefined, conf.worker_log_format) : host.logger);
  const kind = String(opts.pool ?? conf.worker_pool ?? 'async');
  if (!POOL_KINDS.includes(kind as PoolKind)) throw new Error(`Unknown pool '${kind}': use one of ${POOL_KINDS.join(', ')} (-P/--pool, worker_pool)`);
  const poolKind = kind as PoolKind;
  let autoscale: AutoscaleLimits | undefined;
  if (opts.autoscale) {
    const [max, min] = opts.autoscale;
    if (!Number.isInteger(max) || !Number.isInteger(min) || !(min! >= 1) || min! > max!) throw new RangeError(`app.worker({ autoscale }) must be [max, min], whole numbers with 1 <= min <= max (--autoscale), got ${show(opts.autoscale)}`);
    concurrency = max!;
    const keepalive = opts.autoscaleKeepalive ?? Number(process.env.AUTOSCALE_KEEPALIVE ?? 5);
    autoscale = { max: max!, min: min!, keepaliveMs: seconds(keepalive, opts.autoscaleKeepalive !== undefined ? 'app.worker({ autoscaleKeepalive })' : 'AUTOSCALE_KEEPALIVE') * 1000 };
  }
  const childModule = opts.module ?? (conf.worker_app_module as string | undefined);
  if (poolKind !== 'async' && !childModule) {
    throw new Error(`The ${poolKind} pool runs tasks in ${poolKind === 'thread' ? 'worker threads' : 'child processes'} that import your app module: pass { module: '/path/to/app.ts' } to app.worker() (the CLI passes -A).`);
  }
  const perChild = (name: 'maxTasksPerChild' | 'maxMemoryPerChild', setting: string, flag: string) => {
    const o = option<number | null>(name, setting);
    // 0 and null mean no limit, as in Celery.
    return o.value == null || o.value === 0 ? o.value : wholeNumber(o.value, o.name, 1, flag);
  };
  const soft = option<number>('softShutdownTimeout', 'worker_soft_shutdown_timeout');
  return {
    hostname, queues, logger, concurrency, prefetchMultiplier, prefetch: prefetchMultiplier > 0 ? concurrency * prefetchMultiplier : 0, poolKind, autoscale, childModule,
    maxTasksPerChild: perChild('maxTasksPerChild', 'worker_max_tasks_per_child', '--max-tasks-per-child'),
    maxMemoryPerChild: perChild('maxMemoryPerChild', 'worker_max_memory_per_child', '--max-memory-per-child, in KiB'),
    statedb: opts.statedb ?? conf.worker_state_db ?? null,
    softShutdownTimeout: soft.value == null ? 0 : seconds(soft.value, soft.name),
    remoteControl: opts.remoteControl ?? conf.worker_enable_remote_control !== false,
    taskEvents: opts.taskEvents ?? conf.worker_send_task_events === true,
    heartbeat: opts.heartbeat ?? true,
    heartbeatInterval: opts.heartbeatInterval === undefined ? 2 : positiveSeconds(opts.heartbeatInterval, 'app.worker({ heartbeatInterval })'),
    mingle: opts.mingle ?? true,
  };
}

function positiveSeconds(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new RangeError(`${name} must be a number of seconds above 0 (--heartbeat-interval), got ${show(v)}`);
  return v;
}

function wholeNumber(v: unknown, name: string, min: number, cli: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new RangeError(`${name} must be a whole number of at least ${min} (${cli}), got ${show(v)}`);
  return v;
}

function seconds(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`${name} must be a number of seconds, 0 or more, got ${show(v)}`);
  return v;
}

/** A value as the user wrote it (NaN and Infinity stay visible, unlike in JSON). */
function show(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'bigint' || v === undefined) return String(v);
  if (Array.isArray(v)) return `[${v.map(show).join(', ')}]`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
