// Task events folded into a TaskView, with Celery's state precedence (celery.events.state.Task.event):
// events may arrive out of order, and an earlier state's event only fills in fields (its merge rules).
import { precedence } from '../events/state.js';
import type { TaskView } from './views.js';

/** The state a task event puts a task in (TASK_EVENT_TO_STATE). */
const EVENT_STATE: Record<string, string> = {
  sent: 'PENDING', received: 'RECEIVED', started: 'STARTED', failed: 'FAILURE',
  retried: 'RETRY', succeeded: 'SUCCESS', revoked: 'REVOKED', rejected: 'REJECTED',
};

const TIME_FIELDS = new Set(['sent', 'received', 'started', 'succeeded', 'failed', 'revoked', 'retried', 'rejected']);

const FIELDS = [
  'name', 'args', 'kwargs', 'eta', 'expires', 'retries', 'result', 'exception', 'traceback', 'runtime',
  'exchange', 'routing_key', 'root_id', 'parent_id', 'group_id', 'clock',
] as const;

/** Fields of an earlier state still taken when its event arrives late (Task.merge_rules). */
const MERGE_RULES: Record<string, readonly string[]> = {
  RECEIVED: ['name', 'args', 'kwargs', 'parent_id', 'root_id', 'retries', 'eta', 'expires'],
};

/** Apply one task event ('task-<subject>') to the view; returns whether its state moved. */
export function foldTaskEvent(t: TaskView, subject: string, e: Record<string, unknown>): boolean {
  const timestamp = typeof e.timestamp === 'number' ? e.timestamp : Date.now() / 1000;
  let state = EVENT_STATE[subject];
  if (state === undefined) state = subject.toUpperCase();
  if (TIME_FIELDS.has(subject)) (t as unknown as Record<string, unknown>)[subject] = timestamp;
  const hostname = typeof e.hostname === 'string' ? e.hostname : null;
  if (subject === 'sent') t.client = hostname;
  else if (hostname) t.worker = hostname;
  const fresh = t.timestamp === 0;
  let keep: readonly string[] = FIELDS;
  let moves = true;
  if (!fresh && state !== 'RETRY' && t.state !== 'RETRY' && precedence(state) > precedence(t.state)) {
    keep = MERGE_RULES[state] ?? FIELDS;
    moves = false;
  }
  const view = t as unknown as Record<string, unknown>;
  for (const k of keep) {
    const v = k === 'group_id' ? (e.group_id ?? e.group) : e[k];
    if (v === undefined) continue;
    if (k === 'retries') view[k] = typeof v === 'number' ? v : 0;
    else if (k === 'clock' || k === 'runtime') view[k] = typeof v === 'number' ? v : view[k];
    else view[k] = v === null ? null : typeof v === 'string' ? v : JSON.stringify(v);
  }
  if (moves) {
    t.state = state;
    t.timestamp = timestamp;
  }
  return moves;
}
