// What every route of the dashboard reaches: the app, the cluster view kept from the events, the
// history file and the queues.
import type { Celeriac } from '../app/celeriac.js';
import type { ClusterView } from './ingest.js';
import type { HistoryStore } from './store.js';
import type { Queues } from './queues.js';
import { repr } from '../protocol/repr.js';

export interface DashboardContext {
  app: Celeriac;
  cluster: ClusterView;
  store: HistoryStore;
  queues: Queues;
}

/** A stored result made JSON for Flower's result field: a failure's exception dict as its repr. */
export function jsonResult(state: string, result: unknown): unknown {
  if ((state === 'FAILURE' || state === 'RETRY' || state === 'REVOKED') && result && typeof result === 'object' && 'exc_type' in result) {
    const e = result as { exc_type: unknown; exc_message?: unknown };
    const args = Array.isArray(e.exc_message) ? e.exc_message : e.exc_message === undefined ? [] : [e.exc_message];
    return `${String(e.exc_type)}(${args.map((a) => repr(a)).join(', ')})`;
  }
  try {
    JSON.stringify(result);
    return result;
  } catch {
    return repr(result);
  }
}

/** A query parameter as a number, undefined when absent, NaN when not a number. */
export function numberParam(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  return Number(v);
}

/** Flower's boolean query parameters: 'true', '1', 'yes' … are true. */
export function boolParam(v: string | undefined): boolean {
  return v !== undefined && /^(1|true|yes|on)$/i.test(v);
}
