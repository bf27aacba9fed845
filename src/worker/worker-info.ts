// What a worker says about itself to `inspect stats`, `conf`, `report` and `active_queues`, in the
// shapes Celery's workers answer with (fields that have no meaning in Node are left out or null).
import os from 'node:os';
import { maskUrl } from '../app/log.js';
import { defaultSettings, type Settings } from '../app/settings.js';
import { repr } from '../protocol/repr.js';
import { clock } from '../events/clock.js';
import type { BrokerStats, QueueInfo, WorkerStats } from '../control/replies.js';
import type { ConsumerSpec } from '../control/commands.js';
import type { PoolKind } from './executor.js';
import { VERSION } from './banner.js';

/** What stats reads of a running worker. */
export interface StatsSource {
  readonly totals: ReadonlyMap<string, number>;
  readonly startedAt: number;
  readonly poolKind: PoolKind;
  /** Pool slots now. */
  readonly poolSize: number;
  readonly pids: readonly string[] | undefined;
  readonly maxTasksPerChild: number | null | undefined;
  readonly prefetch: number;
  readonly autoscale: { max: number; min: number } | undefined;
  readonly brokerUrl: string;
  readonly conf: Settings;
}

export function workerStats(s: StatsSource): WorkerStats {
  const conf = s.conf;
  return {
    total: Object.fromEntries(s.totals),
    pid: process.pid,
    clock: String(clock.value),
    uptime: Math.round((Date.now() - s.startedAt) / 1000),
    pool: {
      'max-concurrency': s.poolSize,
      implementation: s.poolKind,
      processes: s.pids ? s.pids.map(Number) : [process.pid],
      'max-tasks-per-child': s.maxTasksPerChild ?? 'N/A',
      'put-guarded-by-semaphore': false,
      timeouts: [conf.task_soft_time_limit ?? null, conf.task_time_limit ?? null],
    },
    ...(s.autoscale ? { autoscaler: { max: s.autoscale.max, min: s.autoscale.min, qty: s.poolSize } } : {}),
    broker: brokerStats(s.brokerUrl, conf),
    prefetch_count: s.prefetch,
    rusage: rusage(),
  };
}

/** Celery's connection.info() for the broker URL (the password never leaves). */
export function brokerStats(url: string, conf: Settings): BrokerStats {
  let u: URL | null = null;
  try {
    u = new URL(url);
  } catch {
    u = null;
  }
  const scheme = (u?.protocol ?? 'unknown:').slice(0, -1);
  const transport = scheme.startsWith('redis') || scheme.startsWith('rediss') || scheme === 'sentinel' ? 'redis' : scheme.startsWith('amqp') ? 'amqp' : scheme;
  const path = u ? decodeURIComponent(u.pathname.replace(/^\//, '')) : '';
  return {
    hostname: u?.hostname || null,
    port: u?.port ? Number(u.port) : null,
    transport,
    virtual_host: transport === 'amqp' ? path || '/' : path || (transport === 'redis' ? '0' : null),
    userid: u?.username ? decodeURIComponent(u.username) : null,
    ssl: scheme === 'rediss' || scheme === 'amqps' || !!conf.broker_use_ssl,
    login_method: transport === 'amqp' ? 'PLAIN' : null,
    connect_timeout: Number(conf.broker_connection_timeout ?? 4),
    heartbeat: transport === 'amqp' ? (conf.broker_heartbeat ?? null) : null,
    insist: false,
    uri_prefix: scheme.includes('+') ? scheme.split('+')[0]! : null,
    transport_options: censor(conf.broker_transport_options ?? {}) as Record<string, unknown>,
  };
}

/** getrusage(2), with Python's field names (utime/stime in seconds, maxrss in KiB). */
export function rusage(): Record<string, number> {
  const r = process.resourceUsage();
  return {
    utime: r.userCPUTime / 1e6, stime: r.systemCPUTime / 1e6, maxrss: r.maxRSS, ixrss: r.sharedMemorySize, idrss: r.unsharedDataSize,
    isrss: r.unsharedStackSize, minflt: r.minorPageFault, majflt: r.majorPageFault, nswap: r.swappedOut, inblock: r.fsRead,
    oublock: r.fsWrite, msgsnd: r.ipcSent, msgrcv: r.ipcReceived, nsignals: r.signalsCount, nvcsw: r.voluntaryContextSwitches,
    nivcsw: r.involuntaryContextSwitches,
  };
}

/** Celery's HIDDEN_SETTINGS: values of these names are shown as ********. */
const HIDDEN = /API|TOKEN|KEY|SECRET|PASS|PROFANITIES_LIST|SIGNATURE|DATABASE/i;

/** Celery's filter_hidden_settings: secrets masked by name, passwords masked in URLs. */
function censor(v: unknown, key = '', depth = 0): unknown {
  if (key && HIDDEN.test(key)) return '********';
  if (typeof v === 'string') return /^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? maskUrl(v) : v;
  if (v === null || typeof v === 'number' || typeof v === 'boolean') return v;
  if (depth > 8) return repr(v);
  if (Array.isArray(v)) return v.map((x) => censor(x, '', depth + 1));
  if (typeof v === 'object' && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)) {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, censor(x, k, depth + 1)]));
  }
  if (typeof v === 'function') return `<function ${v.name || 'anonymous'}>`;
  return String(v);
}

/** inspect conf: the settings changed from Celery's defaults (all with `withDefaults`), secrets masked. */
export function workerConf(conf: Settings, withDefaults: boolean): Record<string, unknown> {
  const defaults = defaultSettings() as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(conf).sort()) {
    if (key.startsWith('_')) continue;
    const value = conf[key];
    if (value === undefined || typeof value === 'function') continue;
    if (!withDefaults && Object.hasOwn(defaults, key) && sameValue(value, defaults[key])) continue;
    out[key] = censor(value, key);
  }
  return out;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  try {
    return JSON.stringify(a) === JSON.stringify(b);
  } catch {
    return false;
  }
}

/** inspect report: Celery's bugreport (software, platform, settings), for bug reports. */
export function workerReport(conf: Settings, brokerUrl: string, backendUrl: string | null): string {
  const settings = Object.entries(workerConf(conf, false)).map(([k, v]) => `${k}: ${repr(v)}`);
  return [
    `software -> celeriac:${VERSION} node:${process.version}`,
    `platform -> system:${os.type()} arch:${os.arch()} kernel version:${os.release()}`,
    `settings -> transport:${brokerStats(brokerUrl, conf).transport} results:${backendUrl ? maskUrl(backendUrl) : 'disabled'}`,
    '',
    ...settings,
    '',
  ].join('\n');
}

/** inspect active_queues: each queue as kombu's Queue.as_dict(recurse=True) describes it. */
export function queueInfo(name: string, spec: ConsumerSpec | undefined, conf: Settings): QueueInfo {
  const exchange = spec?.exchange ?? name;
  const maxPriority = conf.task_queue_max_priority ?? null;
  return {
    name,
    exchange: { name: exchange, type: spec?.exchangeType ?? 'direct', arguments: null, durable: true, passive: false, auto_delete: false, delivery_mode: null, no_declare: false },
    routing_key: spec?.routingKey ?? name,
    queue_arguments: maxPriority ? { 'x-max-priority': maxPriority } : null,
    binding_arguments: null,
    consumer_arguments: null,
    durable: true,
    exclusive: false,
    auto_delete: false,
    no_ack: false,
    alias: null,
    bindings: [],
    no_declare: null,
    expires: null,
    message_ttl: null,
    max_length: null,
    max_length_bytes: null,
    max_priority: maxPriority,
  };
}
