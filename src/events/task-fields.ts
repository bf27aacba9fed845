// The fields of task events that a worker builds from what it holds (Celery's strategy and Request).
import type { Message, TaskRequest } from '../protocol/message.js';
import type { PublishTarget } from '../brokers/types.js';
import { isoformat, loads } from '../protocol/json.js';
import { repr, truncateRepr } from '../protocol/repr.js';
import type { EventFields } from './event.js';

/** task-received: the call as the message carries it (argsrepr, kwargsrepr, ISO eta/expires). */
export function receivedFields(f: TaskRequest): EventFields<'task-received'> {
  return {
    uuid: f.id, name: f.task, args: f.argsrepr, kwargs: f.kwargsrepr, root_id: f.rootId, parent_id: f.parentId, retries: f.retries,
    eta: f.eta ? isoformat(f.eta) : null, expires: f.expires ? isoformat(f.expires) : null,
  };
}

/** task-succeeded's result: repr of the value, cut at 1,024 characters (Celery's resultrepr_maxsize). */
export function resultRepr(value: unknown): string {
  return truncateRepr(repr(value));
}

/** task-sent, from a published task message (protocol 2 headers, or a protocol 1 body) and where it went. */
export function sentFields(message: Message, target: PublishTarget): EventFields<'task-sent'> {
  let h = message.headers;
  if (typeof h.task !== 'string') {
    try {
      h = (loads(message.body.toString('utf8')) ?? {}) as Record<string, unknown>; // protocol 1: all in the body
    } catch {
      h = {};
    }
  }
  const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  return {
    uuid: String(h.id ?? ''), root_id: text(h.root_id), parent_id: text(h.parent_id), name: String(h.task ?? ''),
    args: text(h.argsrepr) ?? (Array.isArray(h.args) ? repr(h.args) : '()'), kwargs: text(h.kwargsrepr) ?? (h.kwargs ? repr(h.kwargs) : '{}'),
    retries: Number(h.retries ?? 0) || 0, eta: text(h.eta), expires: text(h.expires),
    queue: target.routingKey, exchange: target.exchange, routing_key: target.routingKey,
  };
}
