// Decoding task messages of protocol v2, v1 and the hybrid form: accept_content, the body's serializer
// (json or msgpack, with the sender's JSON dialect), then the typed TaskRequest.
import type { JsonOptions } from './json.js';
import { reprArgs, repr, truncateRepr } from './repr.js';
import { decompress } from './compression.js';
import { ContentDisallowed, DecodeError, InvalidTaskError } from './errors.js';
import { acceptedContentTypes, disallowed, serializerForType } from './serializers.js';
import { parseIsoDate } from './iso-date.js';
import type { Message, MessageProperties, SignatureDict, TaskRequest } from './message.js';

const CELERY_HEADERS = new Set([
  'lang', 'task', 'id', 'shadow', 'eta', 'expires', 'group', 'group_index', 'retries', 'timelimit',
  'root_id', 'parent_id', 'argsrepr', 'kwargsrepr', 'origin', 'ignore_result', 'replaced_task_nesting',
  'stamped_headers', 'stamps', 'meth', 'compression', 'redelivered',
]);

export interface DecodeOptions {
  /** Content types the worker accepts (Celery's accept_content); default ['json']. */
  accept?: readonly string[];
  /** JSON tags for messages that do not show their sender's Celery version (protocol 1); default true. */
  tags?: boolean;
  /** Tasks whose floats with a whole value arrive as Float (their `exact_floats` option), or all of them. */
  exactFloats?: boolean | ((task: string) => boolean);
}

const DEFAULT_ACCEPT: readonly string[] = ['json'];
let lastAccept: readonly string[] | undefined;
let lastAcceptTypes: readonly string[] = ['application/json'];

/** accept_content as content types; a worker passes the same list for every message, so it is mapped once. */
function acceptedTypes(accept: readonly string[] = DEFAULT_ACCEPT): readonly string[] {
  if (accept !== lastAccept) {
    lastAcceptTypes = acceptedContentTypes(accept);
    lastAccept = accept;
  }
  return lastAcceptTypes;
}

/**
 * Decode and deserialize a message body (decompress, check accept_content, parse JSON or msgpack).
 * `json` says which JSON dialect the sender writes (tags, exact floats).
 */
export function decodeBody(message: Message, opts: DecodeOptions = {}, json?: JsonOptions): unknown {
  const accept = acceptedTypes(opts.accept);
  const ct = message.contentType || 'application/json';
  if (!accept.includes(ct)) throw disallowed(ct);
  const serializer = serializerForType(ct);
  if (!serializer) throw new ContentDisallowed(`Content type ${ct} is accepted but Celeriac can only decode json and msgpack`);
  let raw = message.body;
  const compression = message.headers.compression;
  if (typeof compression === 'string' && compression) {
    try {
      raw = decompress(compression, raw);
    } catch (err) {
      throw new DecodeError(`Message body could not be decompressed (${compression}): ${(err as Error).message}`);
    }
  }
  try {
    return serializer.decode(raw, json ?? { tags: opts.tags });
  } catch (err) {
    throw new DecodeError(`Message body is not valid ${serializer.name}: ${(err as Error).message}`);
  }
}

function str(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v == null) return null;
  try {
    return String(v);
  } catch {
    throw new InvalidTaskError(`A task message field that should be text is ${typeof v === 'object' ? 'an object with no text form' : typeof v}`);
  }
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
  throw new InvalidTaskError(`Expected an ISO-8601 timestamp, got ${truncateRepr(repr(v))}`);
}

function asRecord(v: unknown): Record<string, unknown> {
  if (v == null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new InvalidTaskError(`Task keyword arguments must be a mapping, got ${truncateRepr(repr(v))}`);
  return v as Record<string, unknown>;
}

function asSigList(v: unknown): SignatureDict[] | null {
  return Array.isArray(v) ? (v as SignatureDict[]) : null;
}

/** Decode a task message of protocol v2, v1 or the hybrid form into a TaskRequest. */
export function decodeTask(message: Message, opts: DecodeOptions = {}): TaskRequest {
  const h = message.headers ?? {};
  const p = message.properties ?? {};
  const v2 = typeof h.task === 'string' && h.task !== '';
  // Celery ≥ 5.3 (kombu ≥ 5.3, the JSON tags) always sends the stamping headers; 5.2 never does.
  const tags = v2 ? 'stamps' in h || 'stamped_headers' in h : opts.tags !== false;
  const exact = typeof opts.exactFloats === 'function' ? v2 && opts.exactFloats(h.task as string) : opts.exactFloats === true;
  const body = decodeBody(message, opts, { tags, exactFloats: exact });
  if (v2) {
    if (Array.isArray(body)) return fromV2(h, p, body, tags);
    if (body && typeof body === 'object') return fromV1({ ...(body as Record<string, unknown>), task: h.task, id: h.id ?? (body as Record<string, unknown>).id }, p, h, tags);
    throw new InvalidTaskError('Task message body must be [args, kwargs, embed]');
  }
  if (body && typeof body === 'object' && !Array.isArray(body) && typeof (body as Record<string, unknown>).task === 'string') {
    return fromV1(body as Record<string, unknown>, p, h, tags);
  }
  throw new InvalidTaskError('Not a Celery task message: no "task" header (protocol 2) and no "task" field in the body (protocol 1)');
}

function customHeaders(h: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in h) if (!CELERY_HEADERS.has(k) && Object.prototype.hasOwnProperty.call(h, k)) out[k] = h[k];
  return out;
}

function fromV2(h: Record<string, unknown>, p: MessageProperties, body: unknown[], kombuTags: boolean): TaskRequest {
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
    kwargs: asRecord(kwargs),
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
    kombuTags,
  };
}

function fromV1(b: Record<string, unknown>, p: MessageProperties, h: Record<string, unknown>, kombuTags: boolean): TaskRequest {
  const id = str(b.id) ?? str(p.correlation_id);
  if (!id) throw new InvalidTaskError('Task message has no id');
  const args = b.args ?? [];
  if (!Array.isArray(args)) throw new InvalidTaskError('Task positional arguments must be a list');
  const kwargs = asRecord(b.kwargs);
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
    kombuTags,
  };
}

