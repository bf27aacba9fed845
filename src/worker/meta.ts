// Building celery-task-meta documents in Celery's field order.
import type { ResultMeta, TaskState } from '../backends/types.js';
import type { DecodeOptions, TaskRequest } from '../protocol/message.js';
import { isoformat } from '../protocol/json.js';
import { jsonTagsFor } from '../protocol/serializers.js';
import { PEER_TAGS, READY_STATES } from '../backends/types.js';
import type { WorkerHost } from './host.js';

/** How the worker decodes task messages: accept_content, the peers' JSON, the tasks that keep floats exact. */
export function decodeOptionsFor(app: WorkerHost): DecodeOptions {
  const conf = app.conf;
  return {
    accept: conf.accept_content as DecodeOptions['accept'],
    tags: jsonTagsFor(conf.celery_peer_version),
    exactFloats: (name) => app.tasks.get(name)?.options.exact_floats === true,
  };
}

export interface MetaExtras {
  extended: boolean;
  hostname: string;
  queue: string;
  children?: unknown[] | null;
}

export function buildMeta(req: TaskRequest, status: TaskState, result: unknown, traceback: string | null, extras: MetaExtras): ResultMeta {
  const meta: ResultMeta = {
    status,
    result,
    traceback,
    children: extras.children === undefined ? [] : extras.children,
    date_done: READY_STATES.has(status) ? isoformat(new Date()) : null,
  } as ResultMeta;
  if (req.group) meta.group_id = req.group;
  if (req.parentId) meta.parent_id = req.parentId;
  if (extras.extended) {
    meta.name = req.task;
    meta.args = req.args;
    meta.kwargs = req.kwargs;
    meta.worker = extras.hostname;
    meta.retries = req.retries;
    meta.queue = extras.queue;
  }
  meta.task_id = req.id;
  meta[PEER_TAGS] = req.kombuTags;
  return meta;
}
