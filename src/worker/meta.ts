// Building celery-task-meta documents in Celery's field order.
import type { ResultMeta, TaskState } from '../backends/types.js';
import type { TaskRequest } from '../protocol/message.js';
import { isoformat } from '../protocol/json.js';
import { READY_STATES } from '../backends/types.js';

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
  return meta;
}
