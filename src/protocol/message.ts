// Celery task message protocol v2 (and v1 decode): pure functions, no I/O.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { dumps, loads, isoformat } from './json.js';
import { reprArgs, repr, truncateRepr } from './repr.js';
import { compress, decompress } from './compression.js';
import { ContentDisallowed, DecodeError, InvalidTaskError } from './errors.js';

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
}

const CELERY_HEADERS = new Set([
  'lang', 'task', 'id', 'shadow', 'eta', 'expires', 'group', 'group_index', 'retries', 'timelimit',
  'root_id', 'parent_id', 'argsrepr', 'kwargsrepr', 'origin', 'ignore_result', 'replaced_task_nesting',
  'stamped_headers', 'stamps', 'meth', 'compression', 'redelivered',
]);

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

/** Parse an ISO-8601 timestamp as Celery does: naive means UTC. */
export function parseIsoDate(s: string): Date {
  let text = s.trim().replace(' ', 'T');
  // Trim sub-millisecond digits, which Date cannot hold.
  text = text.replace(/(\.\d{3})\d+/, '$1');
  if (/T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text)) text += 'Z';
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) throw new InvalidTaskError(`Invalid ISO-8601 timestamp ${JSON.stringify(s)}`);
  return d;
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
    replaced_task_nesting: opts.replacedTaskNesting ?? 0,
    stamped_headers: opts.stamps && Object.keys(opts.stamps).length ? Object.keys(opts.stamps) : null,
    stamps: opts.stamps ?? {},
  };
  if (opts.headers) for (const [k, v] of Object.entries(opts.headers)) headers[k] = v;
  let body: Buffer = Buffer.from(dumps([args, kwargs, normalizeEmbed(opts.embed)]), "utf8");
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
  return { headers, properties, body, contentType: 'application/json', contentEncoding: 'utf-8' };
}

export interface DecodeOptions {
  /** Content types the worker accepts (Celery's accept_content); default ['json']. */
  accept?: readonly string[];
}

const CONTENT_ALIASES: Record<string, string> = {
  json: 'application/json',
  pickle: 'application/x-python-serialize',
  yaml: 'application/x-yaml',
  msgpack: 'application/x-msgpack',
};

const DEFAULT_ACCEPT: readonly string[] = ['json'];
let lastAccept: readonly string[] | undefined;
let lastAcceptTypes: readonly string[] = ['application/json'];

/** accept_content as content types; a worker passes the same list for every message, so it is mapped once. */
function acceptedTypes(accept: readonly string[] = DEFAULT_ACCEPT): readonly string[] {
  if (accept !== lastAccept) {
    lastAcceptTypes = accept.map((a) => CONTENT_ALIASES[a] ?? a);
    lastAccept = accept;
  }
  return lastAcceptTypes;
}

/** Decode and deserialize a message body (decompress, check accept_content, parse JSON). */
export function decodeBody(message: Message, opts: DecodeOptions = {}): unknown {
  const accept = acceptedTypes(opts.accept);
  const ct = message.contentType || 'application/json';
  if (!accept.includes(ct)) {
    throw new ContentDisallowed(`Refusing to deserialize untrusted content of type ${ct} (accept_content is ${JSON.stringify(opts.accept ?? ['json'])})`);
  }
  if (ct !== 'application/json') throw new ContentDisallowed(`Content type ${ct} is accepted but Celeriac can only decode application/json`);
  let raw = message.body;
  const compression = message.headers.compression;
  if (typeof compression === 'string' && compression) raw = decompress(compression, raw);
  try {
    return loads(raw.toString('utf8'));
  } catch (err) {
    throw new DecodeError(`Message body is not valid JSON: ${(err as Error).message}`);
  }
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : v == null ? null : String(v);
}

function int(v: unknown, fallback: number): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  return Number.isFinite(n) ? Math.trunc(n) : fallback;
}

function limit(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function dateOrNull(v: unknown): Date | null {
  if (v == null || v === '') return null;
  if (v instanceof Date) return v;
  if (typeof v === 'string') return parseIsoDate(v);
  throw new InvalidTaskError(`Expected an ISO-8601 timestamp, got ${JSON.stringify(v)}`);
}

function asRecord(v: unknown, what: string): Record<string, unknown> {
  if (v == null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new InvalidTaskError(`Task keyword arguments must be a mapping, got ${what}`);
  return v as Record<string, unknown>;
}

function asSigList(v: unknown): SignatureDict[] | null {
  return Array.isArray(v) ? (v as SignatureDict[]) : null;
}

/** Decode a task message of protocol v2, v1 or the hybrid form into a TaskRequest. */
export function decodeTask(message: Message, opts: DecodeOptions = {}): TaskRequest {
  const h = message.headers ?? {};
  const p = message.properties ?? {};
  const body = decodeBody(message, opts);
  if (typeof h.task === 'string' && h.task) {
    if (Array.isArray(body)) return fromV2(h, p, body);
    if (body && typeof body === 'object') return fromV1({ ...(body as Record<string, unknown>), task: h.task, id: h.id ?? (body as Record<string, unknown>).id }, p, h);
    throw new InvalidTaskError('Task message body must be [args, kwargs, embed]');
  }
  if (body && typeof body === 'object' && !Array.isArray(body) && typeof (body as Record<string, unknown>).task === 'string') {
    return fromV1(body as Record<string, unknown>, p, h);
  }
  throw new InvalidTaskError('Not a Celery task message: no "task" header (protocol 2) and no "task" field in the body (protocol 1)');
}

function customHeaders(h: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in h) if (!CELERY_HEADERS.has(k) && Object.prototype.hasOwnProperty.call(h, k)) out[k] = h[k];
  return out;
}

function fromV2(h: Record<string, unknown>, p: MessageProperties, body: unknown[]): TaskRequest {
  const [args, kwargs, embedRaw] = body;
  if (args != null && !Array.isArray(args)) throw new InvalidTaskError('Task positional arguments must be a list');
  const id = str(h.id) ?? str(p.correlation_id);
  if (!id) throw new InvalidTaskError('Task message has no id');
  const e = (embedRaw && typeof embedRaw === 'object' ? embedRaw : {}) as Record<string, unknown>;
  const tl = Array.isArray(h.timelimit) ? h.timelimit : [null, null];
  return {
    id,
    task: String(h.task),
    shadow: str(h.shadow),
    args: (args as unknown[]) ?? [],
    kwargs: asRecord(kwargs, JSON.stringify(kwargs)),
    eta: dateOrNull(h.eta),
    expires: dateOrNull(h.expires),
    retries: int(h.retries, 0),
    timelimit: [limit(tl[0]), limit(tl[1])],
    rootId: str(h.root_id),
    parentId: str(h.parent_id),
    group: str(h.group),
    groupIndex: h.group_index == null ? null : int(h.group_index, 0),
    origin: str(h.origin),
    lang: str(h.lang),
    ignoreResult: typeof h.ignore_result === 'boolean' ? h.ignore_result : null,
    argsrepr: typeof h.argsrepr === 'string' ? h.argsrepr : truncateRepr(reprArgs((args as unknown[]) ?? [])),
    kwargsrepr: typeof h.kwargsrepr === 'string' ? h.kwargsrepr : truncateRepr(repr(kwargs ?? {})),
    replacedTaskNesting: int(h.replaced_task_nesting, 0),
    stampedHeaders: Array.isArray(h.stamped_headers) ? (h.stamped_headers as string[]) : null,
    stamps: (h.stamps && typeof h.stamps === 'object' ? h.stamps : {}) as Record<string, unknown>,
    replyTo: str(p.reply_to) || null,
    correlationId: str(p.correlation_id) ?? id,
    priority: int(p.priority, 0),
    embed: {
      callbacks: asSigList(e.callbacks),
      errbacks: asSigList(e.errbacks),
      chain: asSigList(e.chain),
      chord: (e.chord as SignatureDict | null) ?? null,
    },
    headers: customHeaders(h),
    protocol: 2,
  };
}

function fromV1(b: Record<string, unknown>, p: MessageProperties, h: Record<string, unknown>): TaskRequest {
  const id = str(b.id) ?? str(p.correlation_id);
  if (!id) throw new InvalidTaskError('Task message has no id');
  const args = b.args ?? [];
  if (!Array.isArray(args)) throw new InvalidTaskError('Task positional arguments must be a list');
  const kwargs = asRecord(b.kwargs, JSON.stringify(b.kwargs));
  const tl = Array.isArray(b.timelimit) ? b.timelimit : [null, null];
  return {
    id,
    task: String(b.task),
    shadow: null,
    args,
    kwargs,
    eta: dateOrNull(b.eta),
    expires: dateOrNull(b.expires),
    retries: int(b.retries, 0),
    timelimit: [limit(tl[0]), limit(tl[1])],
    rootId: id,
    parentId: str(b.parent_id),
    group: str(b.taskset ?? b.group),
    groupIndex: b.group_index == null ? null : int(b.group_index, 0),
    origin: null,
    lang: 'py',
    ignoreResult: null,
    argsrepr: truncateRepr(reprArgs(args)),
    kwargsrepr: truncateRepr(repr(kwargs)),
    replacedTaskNesting: 0,
    stampedHeaders: null,
    stamps: {},
    replyTo: str(p.reply_to) || null,
    correlationId: str(p.correlation_id) ?? id,
    priority: int(p.priority, 0),
    embed: {
      callbacks: asSigList(b.callbacks),
      errbacks: asSigList(b.errbacks),
      chain: null,
      chord: (b.chord as SignatureDict | null) ?? null,
    },
    headers: customHeaders(h),
    protocol: 1,
  };
}

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
  return {
    headers: {},
    properties: { correlation_id: id, reply_to: opts.replyTo ?? '', delivery_mode: 2, priority: opts.priority ?? 0 },
    body: Buffer.from(dumps(body), 'utf8'),
    contentType: 'application/json',
    contentEncoding: 'utf-8',
  };
}
