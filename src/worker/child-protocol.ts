// Messages between the worker and its thread/process children.
import type { Job, WireOutcome } from './job.js';

/**
 * Process children ignore these, so a signal sent to the worker's whole process group (Ctrl+C, systemd's
 * control-group kill) cannot stop running tasks during a warm shutdown; the worker stops children itself.
 */
export const GUARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGQUIT'];

export type ParentMessage =
  | { type: 'init'; module: string; brokerUrl?: string; backendUrl?: string | null }
  | { type: 'run'; job: Job }
  | { type: 'interrupt'; key: string; reason: { name: string; message: string } };

export type ChildMessage =
  | { type: 'ready'; pid: number; tasks: string[] }
  | { type: 'initError'; message: string }
  | { type: 'done'; key: string; outcome: WireOutcome; memoryKiB: number }
  | { type: 'updateState'; key: string; state: string; meta: unknown };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === 'string';

/** An exception as a child reports it ({exc_type, exc_message, exc_module}) with its traceback. */
function isReportedError(info: unknown, traceback: unknown): boolean {
  return isObject(info) && isString(info.exc_type) && isString(traceback);
}

function isOutcome(o: unknown): o is WireOutcome {
  if (!isObject(o)) return false;
  switch (o.kind) {
    case 'success': return 'value' in o;
    case 'retry': return isObject(o.opts) && (o.opts.exc === undefined || (isObject(o.opts.exc) && isReportedError(o.opts.exc.info, o.opts.exc.traceback)));
    case 'reject': return isString(o.reason) && typeof o.requeue === 'boolean';
    case 'ignore': return true;
    case 'error': return isReportedError(o.info, o.traceback);
    default: return false;
  }
}

/**
 * A message from a child as the worker may trust it, or null: children run user code, which can post
 * to the same channel (parentPort.postMessage, process.send), so nothing is read before it is checked.
 */
export function parseChildMessage(m: unknown): ChildMessage | null {
  if (!isObject(m)) return null;
  switch (m.type) {
    case 'ready': return typeof m.pid === 'number' && Array.isArray(m.tasks) ? (m as ChildMessage) : null;
    case 'initError': return isString(m.message) ? (m as ChildMessage) : null;
    case 'done': return isString(m.key) && typeof m.memoryKiB === 'number' && isOutcome(m.outcome) ? (m as ChildMessage) : null;
    case 'updateState': return isString(m.key) && isString(m.state) ? (m as ChildMessage) : null;
    default: return null;
  }
}
