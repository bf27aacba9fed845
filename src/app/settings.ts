// Celery's setting names, verbatim, with their Celery defaults. camelCase aliases map onto them.
import { CELERY_OLD_NAMES } from './celery-settings.js';

export interface RetryPolicy {
  max_retries?: number | null;
  interval_start?: number;
  interval_step?: number;
  interval_max?: number;
  timeout?: number;
}

export interface TransportOptions {
  visibility_timeout?: number;
  global_keyprefix?: string;
  master_name?: string;
  sentinel_kwargs?: Record<string, unknown>;
  retry_policy?: RetryPolicy;
  priority_steps?: number[];
  sep?: string;
  fanout_prefix?: boolean | string;
  fanout_patterns?: boolean;
  socket_timeout?: number;
  socket_connect_timeout?: number;
  health_check_interval?: number;
  max_connections?: number;
  polling_interval?: number;
  [key: string]: unknown;
}

export interface SslOptions {
  ssl_cert_reqs?: 'required' | 'optional' | 'none' | 'CERT_REQUIRED' | 'CERT_OPTIONAL' | 'CERT_NONE';
  ssl_ca_certs?: string;
  ssl_certfile?: string;
  ssl_keyfile?: string;
  ssl_check_hostname?: boolean;
  [key: string]: unknown;
}

export interface CelerySettings {
  broker_url: string | null;
  result_backend: string | null;
  broker_transport_options: TransportOptions;
  result_backend_transport_options: TransportOptions;
  broker_use_ssl: SslOptions | boolean | null;
  redis_backend_use_ssl: SslOptions | null;
  broker_heartbeat: number | null;
  broker_connection_timeout: number;
  broker_connection_retry: boolean;
  /** null: follow broker_connection_retry, as Celery 5.6 does. */
  broker_connection_retry_on_startup: boolean | null;
  broker_connection_max_retries: number | null;
  broker_pool_limit: number;
  task_default_queue: string;
  task_default_exchange: string | null;
  task_default_routing_key: string | null;
  task_default_priority: number | null;
  task_default_delivery_mode: 'persistent' | 'transient' | number;
  task_queue_max_priority: number | null;
  task_default_queue_type: 'classic' | 'quorum';
  task_create_missing_queues: boolean;
  task_routes: Record<string, { queue?: string; priority?: number }> | null;
  task_acks_late: boolean;
  task_reject_on_worker_lost: boolean;
  task_acks_on_failure_or_timeout: boolean;
  task_serializer: string;
  result_serializer: string;
  accept_content: string[];
  result_accept_content: string[] | null;
  task_compression: string | null;
  result_compression: string | null;
  task_protocol: 1 | 2;
  task_ignore_result: boolean;
  task_store_errors_even_if_ignored: boolean;
  task_track_started: boolean;
  task_time_limit: number | null;
  task_soft_time_limit: number | null;
  task_default_rate_limit: string | number | null;
  task_default_retry_delay: number;
  task_max_retries: number | null;
  task_publish_retry: boolean;
  task_publish_retry_policy: RetryPolicy;
  task_send_sent_event: boolean;
  task_always_eager: boolean;
  task_eager_propagates: boolean;
  result_expires: number | null;
  result_extended: boolean;
  result_persistent: boolean;
  result_backend_always_retry: boolean;
  result_backend_max_retries: number;
  worker_concurrency: number | null;
  worker_prefetch_multiplier: number;
  worker_pool: string;
  worker_max_tasks_per_child: number | null;
  worker_max_memory_per_child: number | null;
  worker_soft_shutdown_timeout: number;
  worker_disable_rate_limits: boolean;
  worker_send_task_events: boolean;
  /** Celery events: the exchange, and the queues receivers make (prefix, message TTL and expiry in seconds). */
  event_exchange: string;
  event_queue_prefix: string;
  event_queue_ttl: number;
  event_queue_expires: number;
  event_serializer: string;
  worker_state_db: string | null;
  worker_enable_remote_control: boolean;
  worker_log_format: string | null;
  /** An IANA zone; null (Celery's default) means UTC with enable_utc, else the system's zone. */
  timezone: string | null;
  enable_utc: boolean;
  /** Periodic tasks: { name: { task, schedule, args, kwargs, options, relative } } (see docs/beat.md). */
  beat_schedule: Record<string, unknown>;
  beat_max_loop_interval: number;
  /** Seconds a beat leader's lease lasts unrenewed: another beat takes over within 1.2 × this. */
  beat_lease_timeout: number;
  redis_socket_timeout: number | null;
  redis_socket_connect_timeout: number | null;
  redis_max_connections: number | null;
  redis_backend_health_check_interval: number;
  redis_retry_on_timeout: boolean;
  /** Celeriac only: unknown setting names fail the start instead of a warning (also CELERIAC_STRICT_SETTINGS=1). */
  strict_settings: boolean;
  /** Celeriac only: the dashboard's task history (an SQLite file; see docs/dashboard.md). */
  dashboard_db: string;
}

export type Settings = CelerySettings & Record<string, unknown>;

export function defaultSettings(): CelerySettings {
  return {
    broker_url: null,
    result_backend: null,
    broker_transport_options: {},
    result_backend_transport_options: {},
    broker_use_ssl: null,
    redis_backend_use_ssl: null,
    broker_heartbeat: 120,
    broker_connection_timeout: 4,
    broker_connection_retry: true,
    broker_connection_retry_on_startup: null,
    broker_connection_max_retries: 100,
    broker_pool_limit: 10,
    task_default_queue: 'celery',
    task_default_exchange: null,
    task_default_routing_key: null,
    task_default_priority: null,
    task_default_delivery_mode: 'persistent',
    task_queue_max_priority: null,
    task_default_queue_type: 'classic',
    task_create_missing_queues: true,
    task_routes: null,
    task_acks_late: false,
    task_reject_on_worker_lost: false,
    task_acks_on_failure_or_timeout: true,
    task_serializer: 'json',
    result_serializer: 'json',
    accept_content: ['json'],
    result_accept_content: null,
    task_compression: null,
    result_compression: null,
    task_protocol: 2,
    task_ignore_result: false,
    task_store_errors_even_if_ignored: false,
    task_track_started: false,
    task_time_limit: null,
    task_soft_time_limit: null,
    task_default_rate_limit: null,
    task_default_retry_delay: 180,
    task_max_retries: 3,
    task_publish_retry: true,
    task_publish_retry_policy: { max_retries: 3, interval_start: 0, interval_max: 1, interval_step: 0.2 },
    task_send_sent_event: false,
    task_always_eager: false,
    task_eager_propagates: false,
    result_expires: 86400,
    result_extended: false,
    result_persistent: false,
    result_backend_always_retry: false,
    result_backend_max_retries: Infinity,
    worker_concurrency: null,
    worker_prefetch_multiplier: 4,
    worker_pool: 'async',
    worker_max_tasks_per_child: null,
    worker_max_memory_per_child: null,
    worker_soft_shutdown_timeout: 0,
    worker_disable_rate_limits: false,
    worker_send_task_events: false,
    event_exchange: 'celeryev',
    event_queue_prefix: 'celeryev',
    event_queue_ttl: 5.0,
    event_queue_expires: 60.0,
    event_serializer: 'json',
    worker_state_db: null,
    worker_enable_remote_control: true,
    worker_log_format: null,
    timezone: null,
    enable_utc: true,
    beat_schedule: {},
    beat_max_loop_interval: 0,
    beat_lease_timeout: 5,
    redis_socket_timeout: 120,
    redis_socket_connect_timeout: null,
    redis_max_connections: null,
    redis_backend_health_check_interval: 0,
    redis_retry_on_timeout: false,
    strict_settings: false,
    dashboard_db: '.celeriac/dashboard.sqlite',
  };
}

/** brokerTransportOptions → broker_transport_options; Celery names pass through unchanged. */
export function toSettingName(key: string): string {
  if (!/[A-Z]/.test(key)) return key;
  return key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

// Settings are read on every task (the worker's per-task options fall back to them): remember names.
const normalized = new Map<string, string>();

function normalizeKey(key: string): string {
  let n = normalized.get(key);
  if (n === undefined) {
    n = CELERY_OLD_NAMES.get(key) ?? toSettingName(key);
    if (normalized.size < 10_000) normalized.set(key, n);
  }
  return n;
}

/**
 * A settings object that answers to Celery's names and to camelCase aliases:
 * `conf.broker_transport_options` and `conf.brokerTransportOptions` are the same value.
 */
export function createSettings(initial: Record<string, unknown> = {}): Settings {
  const target = defaultSettings() as Settings;
  const written = new Map<string, string>();
  const assign = (key: string, value: unknown) => {
    const n = normalizeKey(key);
    target[n] = value;
    if (!written.has(n)) written.set(n, key);
  };
  for (const [k, v] of Object.entries(initial)) if (v !== undefined) assign(k, v);
  const proxy = new Proxy(target, {
    get: (t, key) => (typeof key === 'string' ? t[normalizeKey(key)] : undefined),
    set: (_t, key, value) => {
      if (typeof key !== 'string') return false;
      assign(key, value);
      return true;
    },
    has: (t, key) => typeof key === 'string' && normalizeKey(key) in t,
  });
  spellings.set(proxy, written);
  return proxy;
}

const spellings = new WeakMap<Settings, Map<string, string>>();

/** The names the user set, each as first written (task_acks_late, taskAcksLate or CELERY_ACKS_LATE), by Celery name. */
export function writtenNames(settings: Settings): ReadonlyMap<string, string> {
  return spellings.get(settings) ?? new Map();
}

/** Whether the worker retries its first broker connection: broker_connection_retry_on_startup, else broker_connection_retry. */
export function retriesOnStartup(settings: Settings): boolean {
  return (settings.broker_connection_retry_on_startup ?? settings.broker_connection_retry) !== false;
}

/** Apply many settings at once (app.conf.update in Celery). */
export function updateSettings(settings: Settings, values: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(values)) settings[k] = v;
}

export const DEFAULT_BROKER_URL = 'sqlite:///celeriac.db';

/** Celery reads CELERY_BROKER_URL / CELERY_RESULT_BACKEND before the configuration. */
export function effectiveBrokerUrl(settings: Settings, env: NodeJS.ProcessEnv = process.env): { url: string; embeddedDefault: boolean } {
  const url = env.CELERY_BROKER_URL || settings.broker_url;
  if (url) return { url, embeddedDefault: false };
  return { url: DEFAULT_BROKER_URL, embeddedDefault: true };
}

export function effectiveBackendUrl(settings: Settings, env: NodeJS.ProcessEnv = process.env): string | null {
  const url = env.CELERY_RESULT_BACKEND || settings.result_backend;
  if (url) return url;
  // With no server configured at all, results go to the same embedded database as the broker.
  const broker = effectiveBrokerUrl(settings, env);
  return broker.embeddedDefault ? broker.url : null;
}
