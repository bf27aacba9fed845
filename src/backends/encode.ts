// Result metas to and from a backend's bytes: result_serializer (json or msgpack) on the way in,
// result_accept_content on the way out. A result that cannot be encoded fails its own task with
// Celery's EncodeError (as Celery's tracer does) and never touches another task's result.
import { DecodeError, EncodeError, toEncodeError } from '../protocol/errors.js';
import { isoformat } from '../protocol/json.js';
import { acceptedContentTypes, disallowed, JSON_SERIALIZER, jsonTagsFor, MSGPACK_SERIALIZER, serializerByName, type Serializer } from '../protocol/serializers.js';
import type { Logger } from '../app/log.js';
import type { Settings } from '../app/settings.js';
import { PEER_TAGS, READY_STATES, type ResultMeta } from './types.js';

/** A backend's serializer settings, read once. */
export interface ResultCodec {
  serializer: Serializer;
  /** JSON tags for metas that do not say (a client's own stores, revokes): celery_peer_version. */
  tags: boolean;
  /** result_accept_content (default accept_content) as content types. */
  accept: readonly string[];
}

export function resultCodec(settings: Settings): ResultCodec {
  const accept = (settings.result_accept_content ?? settings.accept_content ?? ['json']) as string[];
  return {
    serializer: serializerByName(settings.result_serializer ?? 'json', 'result_serializer'),
    tags: jsonTagsFor(settings.celery_peer_version),
    accept: acceptedContentTypes(accept, settings.result_accept_content ? 'result_accept_content' : 'accept_content'),
  };
}

/** The fields of a meta that describe the task rather than its outcome (kept on the FAILURE). */
const DESCRIPTIVE = ['group_id', 'parent_id', 'name', 'args', 'kwargs', 'worker', 'retries', 'queue'] as const;

/** The FAILURE meta Celery stores when a task's result cannot be encoded. */
export function encodeErrorMeta(meta: ResultMeta, err: EncodeError): ResultMeta {
  const failure: Record<string, unknown> = {
    status: 'FAILURE',
    result: { exc_type: 'EncodeError', exc_message: [err.causeRepr], exc_module: 'kombu.exceptions' },
    traceback: `Traceback (most recent call last):\n  encoding the ${String(meta.status)} result of task ${meta.task_id}\nkombu.exceptions.EncodeError: ${err.message}\n`,
    children: [],
    date_done: isoformat(new Date()),
  };
  for (const k of DESCRIPTIVE) if (meta[k] !== undefined) failure[k] = meta[k];
  failure.task_id = meta.task_id; // last, in Celery's field order
  const out = failure as ResultMeta;
  out[PEER_TAGS] = meta[PEER_TAGS];
  return out;
}

export interface EncodedMeta<T> {
  /** What the backend stores: the encoding of `meta`. */
  encoded: T;
  /** The meta that was encoded: the one given, or the FAILURE that replaced it. */
  meta: ResultMeta;
}

/**
 * Encode a meta. A ready state (SUCCESS, FAILURE, REVOKED) that cannot be encoded becomes
 * FAILURE/EncodeError for that task, logged once; any other state (STARTED, RETRY, a custom progress
 * state) is refused with EncodeError, so the task's update_state raises as in Celery.
 */
export function encodeMeta<T>(meta: ResultMeta, encode: (m: ResultMeta) => T, logger: Logger | undefined): EncodedMeta<T> {
  try {
    return { encoded: encode(meta), meta };
  } catch (err) {
    const e = toEncodeError(err);
    if (!READY_STATES.has(String(meta.status))) throw e;
    logger?.error(`Task ${meta.name ? `${String(meta.name)}[${meta.task_id}]` : meta.task_id}: its ${String(meta.status)} result cannot be encoded (${e.causeRepr}); storing FAILURE with EncodeError, as Celery does.`);
    let failure = encodeErrorMeta(meta, e);
    try {
      return { encoded: encode(failure), meta: failure };
    } catch {
      // The descriptive fields came from the request and encode, unless a caller set odd ones: drop them.
      failure = encodeErrorMeta({ status: meta.status, task_id: meta.task_id } as ResultMeta, e);
      return { encoded: encode(failure), meta: failure };
    }
  }
}

/** Encode with the codec's serializer, in the JSON the task's sender reads. */
export function encodeWith(codec: ResultCodec, logger: Logger | undefined, meta: ResultMeta): EncodedMeta<string | Buffer> {
  return encodeMeta(meta, (m) => codec.serializer.encode(m, { tags: m[PEER_TAGS] ?? codec.tags }), logger);
}

/** A msgpack map starts with one of these bytes; JSON text with '{'. */
function looksLikeMsgpack(first: number | undefined): boolean {
  return first !== undefined && ((first >= 0x80 && first <= 0x8f) || first === 0xde || first === 0xdf);
}

/**
 * Read a stored meta, whichever serializer wrote it (Python may use another result_serializer), if
 * result_accept_content allows it. Throws DecodeError for anything that is not a meta, ContentDisallowed
 * for a serializer not accepted; nothing else.
 */
export function readMeta(data: string | Uint8Array, codec: ResultCodec, taskId: string, contentType?: string): ResultMeta {
  const first = typeof data === 'string' ? data.charCodeAt(0) : data[0];
  const serializer = contentType ? (contentType === MSGPACK_SERIALIZER.contentType ? MSGPACK_SERIALIZER : JSON_SERIALIZER) : looksLikeMsgpack(first) ? MSGPACK_SERIALIZER : JSON_SERIALIZER;
  if (!codec.accept.includes(serializer.contentType)) throw disallowed(serializer.contentType);
  let value: unknown;
  try {
    value = serializer.decode(data, { tags: codec.tags });
  } catch (err) {
    throw new DecodeError(`The stored result of task ${taskId} is not valid ${serializer.name}: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || typeof (value as { status?: unknown }).status !== 'string') {
    throw new DecodeError(`The stored result of task ${taskId} is not a result meta (a mapping with a status)`);
  }
  const meta = value as ResultMeta;
  if (meta.task_id === undefined) meta.task_id = taskId;
  return meta;
}
