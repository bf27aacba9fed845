// A call turned into a message, without I/O: argument checks, routing (task_routes) and the protocol
// message with every option resolved (call option, then the task's, then the app's settings).
import { randomUUID } from 'node:crypto';
import { encodeTaskV1, encodeTaskV2, type EncodeTaskOptions } from '../protocol/message.js';
import { jsonTagsFor } from '../protocol/serializers.js';
import type { BuiltCall } from '../canvas/types.js';
import type { CallContext } from '../canvas/index.js';
import { checkTimingOptions, type ApplyOptions } from './options.js';
import type { Settings } from './settings.js';

/** One call of a bulk send (app.sendTasks; task.applyBulk fills in the name). */
export interface TaskCall {
  name: string;
  args?: readonly unknown[];
  kwargs?: Record<string, unknown>;
  options?: ApplyOptions;
}

/** A registered task's own options (queue, priority, limits), when the task is known here. */
type OwnOptions = Record<string, unknown> | undefined;

/** The queue a task goes to: call option, then task_routes, then the task's own, then task_default_queue. */
export function routeFor(conf: Settings, own: OwnOptions, name: string, callOptions: Record<string, unknown>): { queue: string; priority?: number } {
  const routes = conf.task_routes ?? {};
  let route = routes[name];
  if (!route) {
    for (const [pattern, r] of Object.entries(routes)) {
      if (pattern.includes('*') && new RegExp('^' + pattern.split('*').map(escapeRegExp).join('.*') + '$').test(name)) {
        route = r;
        break;
      }
    }
  }
  // An empty queue name means "not given", as in Celery: the message goes to the default queue.
  const queue = (callOptions.queue as string) || route?.queue || (own?.queue as string | undefined) || conf.task_default_queue;
  return { queue, priority: route?.priority };
}

/** The message for a call, with its id, queue and publish target. */
export function buildMessage(
  conf: Settings,
  own: OwnOptions,
  call: { name: string; args: readonly unknown[]; kwargs: Record<string, unknown> },
  o: Record<string, unknown>,
  replyTo: string,
  tags?: boolean,
): BuiltCall {
  const to = own ?? {};
  const route = routeFor(conf, own, call.name, o);
  const id = (o.task_id as string) ?? randomUUID();
  const enc: EncodeTaskOptions = {
    id,
    countdown: o.countdown as number | undefined,
    eta: o.eta as Date | string | undefined,
    expires: (o.expires ?? to.expires) as EncodeTaskOptions['expires'],
    retries: o.retries as number | undefined,
    timeLimit: (o.time_limit ?? to.time_limit ?? null) as number | null,
    softTimeLimit: (o.soft_time_limit ?? to.soft_time_limit ?? null) as number | null,
    rootId: o.root_id as string | undefined,
    parentId: o.parent_id as string | undefined,
    group: (o.group_id ?? o.group) as string | undefined,
    groupIndex: o.group_index as number | undefined,
    shadow: o.shadow as string | undefined,
    ignoreResult: (o.ignore_result ?? to.ignore_result ?? conf.task_ignore_result) as boolean,
    replyTo: (o.reply_to as string) ?? replyTo,
    priority: (o.priority ?? to.priority ?? route.priority ?? conf.task_default_priority ?? 0) as number,
    headers: o.headers as Record<string, unknown> | undefined,
    compression: (o.compression ?? conf.task_compression) as string | null,
    embed: { callbacks: listOf(o.link), errbacks: listOf(o.link_error), chain: (o.chain as never) ?? null, chord: (o.chord as never) ?? null },
    serializer: (o.serializer ?? to.serializer ?? conf.task_serializer) as string,
    tags: tags ?? jsonTagsFor(conf.celery_peer_version),
    // Celery ≥ 5.3 stamps: the option names listed in stamped_headers, with their values.
    stamps: Array.isArray(o.stamped_headers) ? Object.fromEntries((o.stamped_headers as string[]).map((h) => [h, o[h]])) : undefined,
    argsrepr: o.argsrepr as string | undefined,
    kwargsrepr: o.kwargsrepr as string | undefined,
  };
  const message = conf.task_protocol === 1 ? encodeTaskV1(call.name, call.args, call.kwargs, enc) : encodeTaskV2(call.name, call.args, call.kwargs, enc);
  const exchange = (o.exchange as string) ?? '';
  // routing_key '' on the default exchange would name the queue '': the route's queue is meant.
  const routingKey = o.routing_key != null && (o.routing_key !== '' || exchange !== '') ? (o.routing_key as string) : route.queue;
  return { message, id, queue: route.queue, exchange, routingKey };
}

/** sendTask's argument checks, with the defaults filled in; `where` names the call in the error. */
export function checkCall(where: string | (() => string), call: TaskCall): Required<TaskCall> {
  const { name, args = [], kwargs = {}, options = {} } = call;
  const at = () => (typeof where === 'string' ? where : where());
  if (!Array.isArray(args)) throw new TypeError(`${at()}: args must be an array, got ${typeof args}`);
  if (kwargs === null || typeof kwargs !== 'object' || Array.isArray(kwargs)) throw new TypeError(`${at()}: kwargs must be an object`);
  // countdown, eta and expires are spelled the same in camelCase and Celery's names.
  if (options !== null && typeof options === 'object') checkTimingOptions(at, options);
  return { name, args, kwargs, options };
}

/** A task sent from inside a running task is its child: parent_id and root_id default to it (Celery's send_task). */
export function inheritParent(o: Record<string, unknown>, parent: CallContext): Record<string, unknown> {
  if (parent.parentId) {
    if (!o.root_id) o.root_id = parent.rootId || parent.parentId;
    if (!o.parent_id) o.parent_id = parent.parentId;
  }
  return o;
}

function listOf(v: unknown): never {
  return (v == null ? null : Array.isArray(v) ? v : [v]) as never;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
