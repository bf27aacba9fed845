// Encoding a result meta for a backend: a result that cannot be encoded fails its own task with
// Celery's EncodeError (as Celery's tracer does) and never touches another task's result.
import { EncodeError, toEncodeError } from '../protocol/errors.js';
import { isoformat } from '../protocol/json.js';
import type { Logger } from '../app/log.js';
import { READY_STATES, type ResultMeta } from './types.js';

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
  return failure as ResultMeta;
}

export interface EncodedMeta<T> {
  /** What the backend stores: the encoding of `meta`. */
  encoded: T;
  /** The meta that was encoded: the one given, or the FAILURE that replaced it. */
  meta: ResultMeta;
}

/**
 * Encode a meta with the backend's serializer. A ready state (SUCCESS, FAILURE, REVOKED) that cannot
 * be encoded becomes FAILURE/EncodeError for that task, logged once; any other state (STARTED, RETRY,
 * a custom progress state) is refused with EncodeError, so the task's update_state raises as in Celery.
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
