// The remote-control command table (Celery's control.Panel): one entry per command, each reading its
// arguments off the wire (any JSON: nothing is trusted) and returning its reply. A new command is one
// entry here and, if it needs the worker, one member of ControlledWorker.
import { clock } from '../events/clock.js';
import { taskIds } from './pidbox.js';
import { Float } from '../protocol/values.js';

/** add_consumer's queue declaration (kombu's exchange, exchange_type, routing_key). */
export interface ConsumerSpec {
  exchange: string | null;
  exchangeType: string;
  routingKey: string | null;
}

/** What the commands use of a worker. */
export interface ControlledWorker {
  readonly hostname: string;
  revoke(ids: string[], opts: { terminate: boolean; signal: string }): Promise<unknown>;
  setRateLimit(taskName: string, rate: string | number | null): unknown;
  setTimeLimit(taskName: string, soft: number | null, hard: number | null): unknown;
  /** Begin a warm shutdown (after the reply, if any, is sent). */
  shutdown(): void;
  stats(): unknown;
  /** `safe`: arguments as their repr strings. */
  active(safe: boolean): unknown;
  reserved(safe: boolean): unknown;
  scheduled(safe: boolean): unknown;
  queryTask(ids: string[]): unknown;
  registered(infoItems: string[], builtins: boolean): unknown;
  revokedIds(): unknown;
  /** The unexpired revoked ids with their revoke times (Celery's LimitedSet `_data`). */
  revokedEntries(): Record<string, number>;
  /** Take in another node's revoked ids (id → revoke time); malformed or expired entries are skipped. */
  mergeRevoked(entries: unknown): void;
  activeQueues(): unknown;
  conf(withDefaults: boolean): unknown;
  report(): unknown;
  addConsumer(queue: string, spec: ConsumerSpec): unknown;
  cancelConsumer(queue: string): unknown;
  poolGrow(n: number): unknown;
  poolShrink(n: number): unknown;
  autoscale(max: number | null, min: number | null): unknown;
  enableEvents(): unknown;
  disableEvents(): unknown;
  heartbeat(): unknown;
}

export type ControlCommand = (worker: ControlledWorker, args: Record<string, unknown>) => unknown;

/** A command's refusal of its arguments, answered as {error} (Celery's nok). */
export class BadArguments extends Error {
  override name = 'BadArguments';
}

/** Revoke times as Python floats: Celery's LimitedSet.update refuses an int (a whole second) with ValueError. */
export function revokedOnWire(entries: Record<string, number>): Record<string, Float> {
  const out: Record<string, Float> = {};
  for (const [id, ts] of Object.entries(entries)) out[id] = new Float(ts);
  return out;
}

export const COMMANDS: Readonly<Record<string, ControlCommand>> = {
  ping: () => ({ ok: 'pong' }),
  // Celery's mingle: a starting node sends its revoked ids and takes every other node's.
  hello: (w, a) => {
    if (name(a.from_node, 'from_node') === w.hostname) return null;
    w.mergeRevoked(a.revoked);
    return { revoked: revokedOnWire(w.revokedEntries()), clock: clock.forward() };
  },
  clock: () => ({ clock: clock.value }),
  revoke: (w, a) => w.revoke(taskIds(a.task_id), { terminate: bool(a.terminate), signal: signalArg(a.signal) }),
  terminate: (w, a) => w.revoke(taskIds(a.task_id), { terminate: true, signal: signalArg(a.signal) }),
  rate_limit: (w, a) => w.setRateLimit(name(a.task_name, 'task_name'), rateArg(a.rate_limit)),
  time_limit: (w, a) => w.setTimeLimit(name(a.task_name, 'task_name'), numberOrNull(a.soft), numberOrNull(a.hard)),
  shutdown: (w) => {
    w.shutdown();
    return null;
  },
  stats: (w) => w.stats(),
  active: (w, a) => w.active(bool(a.safe)),
  reserved: (w, a) => w.reserved(bool(a.safe)),
  scheduled: (w, a) => w.scheduled(bool(a.safe)),
  query_task: (w, a) => w.queryTask(taskIds(a.ids)),
  registered: (w, a) => w.registered(Array.isArray(a.taskinfoitems) ? a.taskinfoitems.filter((x): x is string => typeof x === 'string') : [], bool(a.builtins)),
  revoked: (w) => w.revokedIds(),
  active_queues: (w) => w.activeQueues(),
  conf: (w, a) => w.conf(bool(a.with_defaults)),
  report: (w) => w.report(),
  add_consumer: (w, a) => w.addConsumer(name(a.queue, 'queue'), {
    exchange: optionalName(a.exchange), exchangeType: optionalName(a.exchange_type) ?? 'direct', routingKey: optionalName(a.routing_key),
  }),
  cancel_consumer: (w, a) => w.cancelConsumer(name(a.queue, 'queue')),
  pool_grow: (w, a) => w.poolGrow(count(a.n)),
  pool_shrink: (w, a) => w.poolShrink(count(a.n)),
  autoscale: (w, a) => w.autoscale(a.max == null ? null : count(a.max, 'max'), a.min == null ? null : count(a.min, 'min')),
  enable_events: (w) => w.enableEvents(),
  disable_events: (w) => w.disableEvents(),
  heartbeat: (w) => w.heartbeat(),
};

/** Aliases Celery keeps for old clients. */
const ALIASES: Record<string, string> = { dump_active: 'active', dump_reserved: 'reserved', dump_schedule: 'scheduled', dump_revoked: 'revoked', dump_tasks: 'registered', dump_conf: 'conf' };

/** The command for a method name (aliases included), or undefined. */
export function commandFor(method: string): ControlCommand | undefined {
  const m = Object.hasOwn(ALIASES, method) ? ALIASES[method]! : method;
  return Object.hasOwn(COMMANDS, m) ? COMMANDS[m] : undefined;
}

/** Commands after which no reply is sent (the worker is going away). */
export const NO_REPLY: ReadonlySet<string> = new Set(['shutdown']);

/** Celery's strtobool for flags that may arrive as strings from the command line. */
function bool(v: unknown): boolean {
  if (typeof v === 'string') return /^(1|true|yes|on|y|t)$/i.test(v.trim());
  return v === true || v === 1;
}

function numberOrNull(v: unknown): number | null {
  const n = Number(v);
  return v === null || v === undefined || typeof v === 'boolean' || !Number.isFinite(n) ? null : n;
}

function name(v: unknown, what: string): string {
  if (typeof v !== 'string' || v === '') throw new BadArguments(`${what} must be a non-empty string`);
  return v;
}

function optionalName(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/** A pool size step: a whole number (default 1); bounds are the worker's to enforce. */
function count(v: unknown, what = 'n'): number {
  if (v === undefined || v === null) return 1;
  const n = typeof v === 'string' ? Number(v.trim()) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new BadArguments(`${what} must be a whole number, got ${String(JSON.stringify(v)).slice(0, 40)}`);
  return n;
}

function signalArg(v: unknown): string {
  return typeof v === 'string' || typeof v === 'number' ? String(v) : 'SIGTERM';
}

function rateArg(v: unknown): string | number | null {
  if (v === null || v === undefined || typeof v === 'string' || typeof v === 'number') return v ?? null;
  throw new BadArguments(`rate_limit must be a string such as '10/s', a number or null`);
}
