// Celery task message protocol v2 and v1: the types and the encoding (decode.ts reads them). Pure functions, no I/O.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { isoformat } from './json.js';
import { serializerByName, type Serializer } from './serializers.js';
import { reprArgs, repr, truncateRepr } from './repr.js';
import { compress } from './compression.js';
import { parseIsoDate } from './iso-date.js';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A broker-neutral message: what kombu calls the payload of one delivery. */
export interface Message {
  headers: Record<string, unknown>;
  properties: MessageProperties;
  body: Buffer;
  contentType: string;
  contentEncoding: string;
}

export interface MessageProperties {
  correlation_id?: string;
  reply_to?: string;
  delivery_mode?: number;
  priority?: number;
  expiration?: string;
  [key: string]: unknown;
}

/** A signature dict as Celery encodes it in callbacks / errbacks / chain / chord. */
export interface SignatureDict {
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: Record<string, unknown>;
  subtask_type: string | null;
  immutable: boolean;
  [key: string]: unknown;
}

export interface Embed {
  callbacks: SignatureDict[] | null;
  errbacks: SignatureDict[] | null;
  chain: SignatureDict[] | null;
  chord: SignatureDict | null;
}

export type TimeLimit = [hard: number | null, soft: number | null];

/** Everything a task call carries, decoded and typed (protocol-independent). */
export interface TaskRequest {
  id: string;
  task: string;
  shadow: string | null;
  args: unknown[];
  kwargs: Record<string, unknown>;
  eta: Date | null;
  expires: Date | null;
  retries: number;
  timelimit: TimeLimit;
  rootId: string | null;
  parentId: string | null;
  group: string | null;
  groupIndex: number | null;
  origin: string | null;
  lang: string | null;
  ignoreResult: boolean | null;
  argsrepr: string;
  kwargsrepr: string;
  replacedTaskNesting: number;
  stampedHeaders: string[] | null;
  stamps: Record<string, unknown>;
  replyTo: string | null;
  correlationId: string;
  priority: number;
  embed: Embed;
  /** Headers that are not Celery's own (apply_async(headers=...)). */
  headers: Record<string, unknown>;
  protocol: 1 | 2;
  /** Whether the sender's JSON has kombu ≥ 5.3 tags (its result is written the same way); false for Celery 5.2. */
  kombuTags: boolean;
}

export interface EncodeTaskOptions {
  id?: string;
  shadow?: string | null;
  eta?: Date | string | null;
  countdown?: number | null;
  expires?: Date | string | number | null;
  retries?: number;
  timeLimit?: number | null;
  softTimeLimit?: number | null;
  rootId?: string | null;
  parentId?: string | null;
  group?: string | null;
  groupIndex?: number | null;
  origin?: string;
  ignoreResult?: boolean;
  replyTo?: string;
  priority?: number;
  headers?: Record<string, unknown>;
  embed?: Partial<Embed>;
  compression?: string | null;
  stamps?: Record<string, unknown>;
  replacedTaskNesting?: number;
  argsrepr?: string;
  kwargsrepr?: string;
  now?: Date;
  /** task_serializer: 'json' (default) or 'msgpack'. */
  serializer?: string;
  /** false for Celery 5.2 peers: JSON without kombu's tags, and the headers Celery 5.2 sends. */
  tags?: boolean;
}

/** Serialize a message body with the task serializer; throws EncodeError for what it cannot carry. */
function encodeBody(value: unknown, opts: EncodeTaskOptions): { body: Buffer; serializer: Serializer } {
  const serializer = serializerByName(opts.serializer ?? 'json');
  const data = serializer.encode(value, { tags: opts.tags !== false });
  return { body: typeof data === 'string' ? Buffer.from(data, 'utf8') : data, serializer };
}


let anonNodename: string | undefined;
/** Celery's name for a client that is not a worker: gen<pid>@<hostname>. */
export function defaultOrigin(): string {
  return (anonNodename ??= `gen${process.pid}@${hostname()}`);
}

function toDate(v: Date | string | number | null | undefined, now: Date): Date | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v;
  if (typeof v === 'number') return new Date(now.getTime() + v * 1000);
  return parseIsoDate(v);
}

function normalizeEmbed(e: Partial<Embed> | undefined): Embed {
  return {
    callbacks: e?.callbacks ?? null,
    errbacks: e?.errbacks ?? null,
    chain: e?.chain ?? null,
    chord: e?.chord ?? null,
  };
}

/** Build a protocol v2 task message exactly as Celery 5.x's AMQP.as_task_v2 does. */
export function encodeTaskV2(name: string, args: readonly unknown[], kwargs: Record<string, unknown>, opts: EncodeTaskOptions = {}): Message {
  const now = opts.now ?? new Date();
  const id = opts.id ?? randomUUID();
  const eta = opts.countdown != null ? new Date(now.getTime() + opts.countdown * 1000) : toDate(opts.eta, now);
  const expires = toDate(opts.expires, now);
  // The body first: a value it cannot carry fails the call with EncodeError before anything else.
  const encoded = encodeBody([args, kwargs, normalizeEmbed(opts.embed)], opts);
  const headers: Record<string, unknown> = {
    lang: 'py',
    task: name,
    id,
    shadow: opts.shadow ?? null,
    eta: eta ? isoformat(eta) : null,
    expires: expires ? isoformat(expires) : null,
    group: opts.group ?? null,
    group_index: opts.groupIndex ?? null,
    retries: opts.retries ?? 0,
    timelimit: [opts.timeLimit ?? null, opts.softTimeLimit ?? null],
    root_id: opts.rootId ?? id,
    parent_id: opts.parentId ?? null,
    argsrepr: opts.argsrepr ?? truncateRepr(reprArgs(args)),
    kwargsrepr: opts.kwargsrepr ?? truncateRepr(repr(kwargs)),
    origin: opts.origin ?? defaultOrigin(),
    ignore_result: opts.ignoreResult ?? false,
  };
  if (opts.tags !== false) {
    // Celery ≥ 5.3 headers; a Celery 5.2 peer gets the headers Celery 5.2 sends.
    headers.replaced_task_nesting = opts.replacedTaskNesting ?? 0;
    headers.stamped_headers = opts.stamps && Object.keys(opts.stamps).length ? Object.keys(opts.stamps) : null;
    headers.stamps = opts.stamps ?? {};
  }
  if (opts.headers) for (const [k, v] of Object.entries(opts.headers)) headers[k] = v;
  let body = encoded.body;
  if (opts.compression) {
    const c = compress(opts.compression, body);
    headers.compression = c.type;
    body = c.data;
  }
  const properties: MessageProperties = {
    correlation_id: id,
    reply_to: opts.replyTo ?? '',
    delivery_mode: 2,
    priority: opts.priority ?? 0,
  };
  if (expires) properties.expiration = String(Math.max(0, Math.trunc(expires.getTime() - now.getTime())));
  return { headers, properties, body, contentType: encoded.serializer.contentType, contentEncoding: encoded.serializer.contentEncoding };
}

export { decodeBody, decodeTask, type DecodeOptions } from './decode.js';
export { parseIsoDate } from './iso-date.js';

/** Protocol v1 encoding (task_protocol=1), for old peers. */
export function encodeTaskV1(name: string, args: readonly unknown[], kwargs: Record<string, unknown>, opts: EncodeTaskOptions = {}): Message {
  const now = opts.now ?? new Date();
  const id = opts.id ?? randomUUID();
  const eta = opts.countdown != null ? new Date(now.getTime() + opts.countdown * 1000) : toDate(opts.eta, now);
  const expires = toDate(opts.expires, now);
  const body = {
    task: name, id, args, kwargs,
    group: opts.group ?? null, group_index: opts.groupIndex ?? null,
    retries: opts.retries ?? 0,
    eta: eta ? isoformat(eta) : null,
    expires: expires ? isoformat(expires) : null,
    utc: true,
    callbacks: opts.embed?.callbacks ?? null,
    errbacks: opts.embed?.errbacks ?? null,
    timelimit: [opts.timeLimit ?? null, opts.softTimeLimit ?? null],
    taskset: opts.group ?? null,
    chord: opts.embed?.chord ?? null,
  };
  const encoded = encodeBody(body, opts);
  return {
    headers: {},
    properties: { correlation_id: id, reply_to: opts.replyTo ?? '', delivery_mode: 2, priority: opts.priority ?? 0 },
    body: encoded.body,
    contentType: encoded.serializer.contentType,
    contentEncoding: encoded.serializer.contentEncoding,
  };
}
