// Celery's event messages (celery.events.event): their types, their fields in Celery's order, and the
// time zone arithmetic monitors use to compare timestamps from different nodes.

/** Fields every event carries, in Celery's order: hostname, utcoffset, pid, clock, then its own, then timestamp and type. */
export interface EventBase {
  hostname: string;
  /** Hours west of UTC, floored (Python's time.timezone // 3600): UTC+2 is -2. */
  utcoffset: number;
  pid: number;
  /** The sender's Lamport clock. */
  clock: number;
  /** Unix time in seconds (a float). A receiver that localizes events rewrites it into its own time zone. */
  timestamp: number;
  type: string;
  /** Set by a receiver: when the event arrived (unix seconds). */
  local_received?: number;
}

/** worker-online, worker-heartbeat and worker-offline. */
export interface WorkerEvent extends EventBase {
  type: 'worker-online' | 'worker-heartbeat' | 'worker-offline';
  /** Seconds between heartbeats (2.0 by default); a monitor counts a node offline after 2 × freq without one. */
  freq: number;
  active: number;
  processed: number;
  loadavg: number[];
  sw_ident: string;
  sw_ver: string;
  sw_sys: string;
}

interface TaskEventBase extends EventBase {
  uuid: string;
}

export interface TaskSentEvent extends TaskEventBase {
  type: 'task-sent';
  root_id: string | null;
  parent_id: string | null;
  name: string;
  /** Python repr of the arguments (argsrepr). */
  args: string;
  kwargs: string;
  retries: number;
  eta: string | null;
  expires: string | null;
  queue: string;
  exchange: string;
  routing_key: string;
}

export interface TaskReceivedEvent extends TaskEventBase {
  type: 'task-received';
  name: string;
  args: string;
  kwargs: string;
  root_id: string | null;
  parent_id: string | null;
  retries: number;
  eta: string | null;
  expires: string | null;
}

export interface TaskStartedEvent extends TaskEventBase {
  type: 'task-started';
}

export interface TaskSucceededEvent extends TaskEventBase {
  type: 'task-succeeded';
  /** Python repr of the return value, at most 1,024 characters. */
  result: string;
  /** Seconds the handler ran. */
  runtime: number;
}

export interface TaskFailedEvent extends TaskEventBase {
  type: 'task-failed';
  /** repr of the exception, e.g. "ValueError('bad thing')". */
  exception: string;
  /** Absent for a task no worker knows (NotRegistered). */
  traceback?: string | null;
}

export interface TaskRetriedEvent extends TaskEventBase {
  type: 'task-retried';
  exception: string;
  traceback: string | null;
}

export interface TaskRevokedEvent extends TaskEventBase {
  type: 'task-revoked';
  terminated: boolean;
  signum: string | number | null;
  expired: boolean;
}

export interface TaskRejectedEvent extends TaskEventBase {
  type: 'task-rejected';
  requeue: boolean;
}

/** Every event type Celery defines, by type name. */
export interface EventMap {
  'worker-online': WorkerEvent;
  'worker-heartbeat': WorkerEvent;
  'worker-offline': WorkerEvent;
  'task-sent': TaskSentEvent;
  'task-received': TaskReceivedEvent;
  'task-started': TaskStartedEvent;
  'task-succeeded': TaskSucceededEvent;
  'task-failed': TaskFailedEvent;
  'task-retried': TaskRetriedEvent;
  'task-revoked': TaskRevokedEvent;
  'task-rejected': TaskRejectedEvent;
}

export type KnownEvent = EventMap[keyof EventMap];
export type TaskEvent = Exclude<KnownEvent, WorkerEvent>;

/** Any event off the wire: a known one, or another sender's own type (fields as sent). */
export type CeleryEvent = KnownEvent | (EventBase & Record<string, unknown>);

/** The fields a sender gives for an event type (everything but the standard ones). */
export type EventFields<K extends keyof EventMap> = Omit<EventMap[K], keyof EventBase>;

/** 'task' of 'task-succeeded' (celery.events.event.group_from). */
export function groupFrom(type: string): string {
  const i = type.indexOf('-');
  return i < 0 ? type : type.slice(0, i);
}

/** 'task.succeeded' for 'task-succeeded': the routing key an event is published with. */
export function routingKeyOf(type: string): string {
  return type.replaceAll('-', '.');
}

let offsetHours = 0;
let offsetReadAt = -Infinity;

/** Hours west of UTC, floored, as Celery's utcoffset(): re-read once a minute (DST changes it). */
export function utcoffset(now = Date.now()): number {
  if (now - offsetReadAt > 60_000) {
    offsetHours = Math.floor(new Date(now).getTimezoneOffset() / 60);
    offsetReadAt = now;
  }
  return offsetHours;
}

/** A sender's timestamp in this process's time zone (celery.utils.time.adjust_timestamp). */
export function adjustTimestamp(timestamp: number, offset: number, here = utcoffset()): number {
  return timestamp - (offset - here) * 3600;
}

/**
 * The JSON text of an event (celery.events.event.Event), fields in Celery's order: hostname, utcoffset,
 * pid, clock, its own, timestamp, type; `head` is the cached start for this sender, from eventHead().
 * Worker events and the rarer task events go this way; the three a -E worker sends for every task are
 * written by quotedTaskEvent below.
 */
export function eventJson(head: string, type: string, clockValue: number, fields: object, now: number): string {
  const own = JSON.stringify(fields);
  return `${head}${clockValue}${own.length > 2 ? `,${own.slice(1, -1)}` : ''},"timestamp":${now / 1000},"type":${JSON.stringify(type)}}`;
}

// Characters that JSON.stringify does not copy as they are: quotes, backslashes, controls, surrogates.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * The "quoted" form of a JSON text: JSON.stringify(text) without its outer quotes, i.e. the text as it
 * stands inside a JSON string. Task events are built in this form directly, so that a batch becomes
 * the body of kombu's envelope (a JSON string) without another escaping pass over it.
 */
export function quoteJson(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}

/** A string value in quoted form without its quotes: `s` itself unless something in it needs escaping. */
function inner(s: string): string {
  return NEEDS_ESCAPE.test(s) ? quoteJson(JSON.stringify(s)).slice(2, -2) : s;
}

/** An integer count (retries); anything else as JSON.stringify writes a number. */
function qNumber(n: number): string | number {
  return Number.isInteger(n) ? n : Number.isFinite(n) ? String(n) : 'null';
}

/**
 * Seconds with six decimals (a task's runtime, to the microsecond): integer arithmetic, about a third of
 * the cost of printing the float's shortest form.
 */
export function jsonSeconds(seconds: number): string {
  if (!(seconds >= 0 && seconds < 1e9)) return String(qNumber(seconds));
  const us = Math.round(seconds * 1e6);
  const whole = Math.floor(us / 1e6);
  return whole + '.' + String(us - whole * 1e6 + 1e6).slice(1);
}

const Q = '\\"';
// The pieces of each per-task event, filled in place and joined: one flat string per event, without
// the dozens of intermediate strings a template or `+` chain makes (they were most of a -E worker's
// garbage). Slots that hold values are set before each join; nullable strings take their quotes
// from the slots beside them ('' when the value is null).
const RECEIVED: (string | number)[] = [
  '', 0, `,${Q}uuid${Q}:${Q}`, '', `${Q},${Q}name${Q}:${Q}`, '', `${Q},${Q}args${Q}:${Q}`, '', `${Q},${Q}kwargs${Q}:${Q}`, '',
  `${Q},${Q}root_id${Q}:`, '', '', '', `,${Q}parent_id${Q}:`, '', '', '', `,${Q}retries${Q}:`, 0,
  `,${Q}eta${Q}:`, '', '', '', `,${Q}expires${Q}:`, '', '', '', `,${Q}timestamp${Q}:`, '', `,${Q}type${Q}:${Q}task-received${Q}}`,
];
const STARTED: (string | number)[] = ['', 0, `,${Q}uuid${Q}:${Q}`, '', `${Q},${Q}timestamp${Q}:`, '', `,${Q}type${Q}:${Q}task-started${Q}}`];
const SUCCEEDED: (string | number)[] = [
  '', 0, `,${Q}uuid${Q}:${Q}`, '', `${Q},${Q}result${Q}:${Q}`, '', `${Q},${Q}runtime${Q}:`, '', `,${Q}timestamp${Q}:`, '', `,${Q}type${Q}:${Q}task-succeeded${Q}}`,
];

/** A nullable string into slots i (opening quote), i + 1 (value) and i + 2 (closing quote). */
function setNullable(parts: (string | number)[], i: number, s: string | null | undefined): void {
  if (s == null) {
    parts[i] = '';
    parts[i + 1] = 'null';
    parts[i + 2] = '';
  } else {
    parts[i] = Q;
    parts[i + 1] = inner(s);
    parts[i + 2] = Q;
  }
}

/**
 * The three events a -E worker sends for every task, in quoted form (see quoteJson): JSON.parse of
 * '"' + the result + '"' is the text eventJson() makes from the same fields (runtime to the microsecond),
 * fields in the order of EventMap. `qhead` is quoteJson(eventHead(...)), `ts` the timestamp's text.
 */
export const quotedTaskEvent = {
  received(qhead: string, clockValue: number, f: EventFields<'task-received'>, ts: string): string {
    const p = RECEIVED;
    const uuid = inner(f.uuid);
    p[0] = qhead;
    p[1] = clockValue;
    p[3] = uuid;
    p[5] = inner(f.name);
    p[7] = inner(f.args);
    p[9] = inner(f.kwargs);
    if (f.root_id === f.uuid) {
      p[11] = Q;
      p[12] = uuid;
      p[13] = Q;
    } else {
      setNullable(p, 11, f.root_id);
    }
    setNullable(p, 15, f.parent_id);
    p[19] = qNumber(f.retries);
    setNullable(p, 21, f.eta);
    setNullable(p, 25, f.expires);
    p[29] = ts;
    return p.join('');
  },
  started(qhead: string, clockValue: number, uuid: string, ts: string): string {
    const p = STARTED;
    p[0] = qhead;
    p[1] = clockValue;
    p[3] = inner(uuid);
    p[5] = ts;
    return p.join('');
  },
  succeeded(qhead: string, clockValue: number, uuid: string, result: string, runtime: number, ts: string): string {
    const p = SUCCEEDED;
    p[0] = qhead;
    p[1] = clockValue;
    p[3] = inner(uuid);
    p[5] = inner(result);
    p[7] = jsonSeconds(runtime);
    p[9] = ts;
    return p.join('');
  },
};

/** The fixed start of a sender's events: hostname, utcoffset and pid, up to the clock's value. */
export function eventHead(hostname: string, offset: number): string {
  return `{"hostname":${JSON.stringify(hostname)},"utcoffset":${offset},"pid":${process.pid},"clock":`;
}
