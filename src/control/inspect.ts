// app.control.inspect(): the read-only commands, with each worker's reply typed (Celery's Inspect).
// Replies come back as one object keyed by node name; an empty object when no worker answered.
import { matchHostname } from './matcher.js';
import type { Control, BroadcastOptions } from './control.js';
import { flattenReplies, warnDuplicateNodenames, type ControlReply, type InspectReplies } from './replies.js';

export interface InspectOptions {
  /** Only these nodes (a name or a list); default every worker. */
  destination?: string | string[];
  /** Seconds to wait for replies (default 1, as Celery). */
  timeout?: number;
  /** Stop waiting after this many replies (default: the number of destinations). */
  limit?: number;
  /** Only the nodes whose name matches, under `matcher` ('glob' or 'pcre'). */
  pattern?: string;
  matcher?: 'glob' | 'pcre';
  /** Called with each reply as it arrives. */
  callback?: (reply: ControlReply) => void;
  /** Called with the names that answered more than once (default: Node's process warning, as Celery's DuplicateNodenameWarning). */
  onDuplicate?: (names: string[]) => void;
}

/** Replies by node name. */
export type ByNode<T> = Record<string, T>;

export class Inspect {
  constructor(private readonly control: Control, readonly options: InspectOptions = {}) {}

  /** Any inspect command by name, e.g. one a Python worker defines; `args` are its keyword arguments. */
  async request<T = unknown>(method: string, args: Record<string, unknown> = {}): Promise<ByNode<T>> {
    const o = this.options;
    const destination = o.destination === undefined ? undefined : Array.isArray(o.destination) ? o.destination : [o.destination];
    const opts: BroadcastOptions = { destination, timeout: o.timeout, limit: o.limit, callback: o.callback, pattern: o.pattern, matcher: o.matcher };
    const replies = await this.control.call(method, args, opts);
    const byNode = flattenReplies(replies as ControlReply<T>[], o.onDuplicate ?? warnDuplicateNodenames);
    if (!o.pattern || !o.matcher) return byNode;
    // As Celery's _prepare: keep only the nodes the pattern names (a refused pattern names none).
    const kept: ByNode<T> = {};
    for (const [node, reply] of Object.entries(byNode)) {
      let ok = false;
      try {
        ok = matchHostname(node, o.pattern, o.matcher);
      } catch {
        ok = false;
      }
      if (ok) kept[node] = reply;
    }
    return kept;
  }

  ping(): Promise<ByNode<InspectReplies['ping']>> {
    return this.request('ping');
  }

  /** Tasks running now; `safe` gives their arguments as repr strings. */
  active(safe?: boolean): Promise<ByNode<InspectReplies['active']>> {
    return this.request('active', { safe: safe ?? null });
  }

  /** Tasks received and waiting for a pool slot (not the running or ETA-held ones). */
  reserved(): Promise<ByNode<InspectReplies['reserved']>> {
    return this.request('reserved');
  }

  /** Tasks held until their ETA / countdown. */
  scheduled(): Promise<ByNode<InspectReplies['scheduled']>> {
    return this.request('scheduled');
  }

  /** Registered task names; with attribute names ('rate_limit', …) each comes with those values, as Celery's. */
  registered(...taskinfoitems: string[]): Promise<ByNode<InspectReplies['registered']>> {
    return this.request('registered', { taskinfoitems });
  }

  stats(): Promise<ByNode<InspectReplies['stats']>> {
    return this.request('stats');
  }

  /** Revoked task ids each worker remembers. */
  revoked(): Promise<ByNode<InspectReplies['revoked']>> {
    return this.request('revoked');
  }

  /** Where each of these tasks is on each worker: ['active' | 'reserved', info]. */
  queryTask(...ids: (string | string[])[]): Promise<ByNode<InspectReplies['query_task']>> {
    return this.request('query_task', { ids: ids.flat() });
  }

  /** The queues each worker consumes from. */
  activeQueues(): Promise<ByNode<InspectReplies['active_queues']>> {
    return this.request('active_queues');
  }

  /** Each worker's settings (only those changed from the defaults, unless withDefaults). */
  conf(withDefaults = false): Promise<ByNode<InspectReplies['conf']>> {
    return this.request('conf', { with_defaults: withDefaults });
  }

  /** Software and settings, for bug reports. */
  report(): Promise<ByNode<InspectReplies['report']>> {
    return this.request('report');
  }

  /** Each worker's logical clock. */
  clock(): Promise<ByNode<InspectReplies['clock']>> {
    return this.request('clock');
  }
}
