// The dashboard's view of the cluster, kept from the events: every task event folded into its TaskView
// (recent ones in memory, the rest read back from the history), workers from their heartbeats and the
// inspect replies, chart counters and Prometheus metrics. Each tick (250 ms) writes what changed in one
// transaction and hands the changed views to the live stream, so a view changes at most 4 times a second.
import type { CeleryEvent } from '../events/event.js';
import { EventReceiver, type EventsHost } from '../events/receiver.js';
import { HEARTBEAT_EXPIRE_WINDOW } from '../events/state.js';
import type { Control } from '../control/control.js';
import type { Logger } from '../app/log.js';
import { foldTaskEvent } from './fold.js';
import { MinuteCounters } from './charts.js';
import { DashboardMetrics } from './metrics.js';
import type { HistoryStore } from './store.js';
import { emptyTask, type TaskView, type WorkerView } from './views.js';

export const TICK_MS = 250;
/** Tasks kept in memory for folding the next events (older ones are read back from the file). */
const CACHE_TASKS = 20_000;
/** Seconds between inspect rounds (pool, registered tasks, queues, and Flower's /api/workers). */
const INSPECT_EVERY_S = 60;
/** The inspect commands Flower's /api/workers reports, in its order. */
export const FLOWER_INSPECT = ['stats', 'active_queues', 'registered', 'scheduled', 'active', 'reserved', 'revoked', 'conf'] as const;
/** What a worker coming online is asked at once: what the workers page shows. */
const ONLINE_INSPECT = ['stats', 'active_queues', 'registered'] as const;

interface LiveWorker {
  view: WorkerView;
  /** local_received of the last heartbeat or event (unix s), 0 when none since we started. */
  lastHeartbeat: number;
  /** Flower's inspector record: each FLOWER_INSPECT reply and `timestamp`. */
  inspect: Record<string, unknown>;
  /** When it was last asked for ONLINE_INSPECT (ms). */
  askedAt?: number;
}

export interface Changes {
  tasks: TaskView[];
  workers: WorkerView[];
}

/** What the dashboard uses of the app: its events, and its `control`, whose requests in flight together share one reply subscription. */
export type IngestHost = EventsHost & { readonly control: Control };

export class ClusterView {
  readonly metrics = new DashboardMetrics();
  readonly charts: MinuteCounters;
  private readonly cache = new Map<string, TaskView>();
  /** Events of tasks not in the cache, by uuid, until the next tick. */
  private readonly unresolved = new Map<string, CeleryEvent[]>();
  private readonly dirtyTasks = new Map<string, TaskView>();
  private readonly dirtyWorkers = new Set<string>();
  private readonly workers = new Map<string, LiveWorker>();
  private readonly listeners = new Set<(c: Changes) => void>();
  private receiver: EventReceiver | undefined;
  private tick: NodeJS.Timeout | undefined;
  private inspectTimer: NodeJS.Timeout | undefined;
  private inspecting: Promise<void> | undefined;
  /** Queue names seen in task-sent events. */
  readonly queuesSeen = new Set<string>();
  eventCount = 0;

  constructor(private readonly host: IngestHost, readonly store: HistoryStore, private readonly logger: Logger) {
    this.charts = new MinuteCounters((t) => store.minute(t));
    // Workers remembered from the last run: offline until their next heartbeat.
    for (const { view } of store.workers()) this.workers.set(view.hostname, { view: { ...view, online: false }, lastHeartbeat: 0, inspect: {} });
  }

  async start(): Promise<void> {
    this.receiver = new EventReceiver(this.host, { logger: this.logger });
    this.receiver.on('*', (e) => this.event(e));
    await this.receiver.start();
    this.tick = setInterval(() => this.tickNow(), TICK_MS);
    this.inspectTimer = setInterval(() => void this.refreshWorkers(), INSPECT_EVERY_S * 1000);
    void this.refreshWorkers();
  }

  /** Called with the views changed in each tick. */
  onChange(fn: (c: Changes) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  event(e: CeleryEvent): void {
    this.eventCount++;
    const type = String(e.type);
    const fields = e as unknown as Record<string, unknown>;
    const hostname = typeof e.hostname === 'string' ? e.hostname : '';
    if (type.startsWith('worker-')) return this.workerEvent(type.slice(7), hostname, fields);
    if (!type.startsWith('task-') || typeof fields.uuid !== 'string') return;
    const uuid = fields.uuid;
    if (!this.cache.has(uuid)) {
      // Not in memory: new, or older than the cache. Held until the tick looks all of them up at once.
      const held = this.unresolved.get(uuid);
      if (held) held.push(e);
      else this.unresolved.set(uuid, [e]);
      return;
    }
    this.taskEvent(e, type, hostname, fields);
  }

  private taskEvent(e: CeleryEvent, type: string, hostname: string, fields: Record<string, unknown>): void {
    const subject = type.slice(5);
    const task = this.taskFor(fields.uuid as string);
    foldTaskEvent(task, subject, fields);
    this.dirtyTasks.set(task.uuid, task);
    const name = task.name ?? '';
    this.metrics.event(hostname, type, typeof fields.name === 'string' ? fields.name : name);
    if (subject === 'sent') {
      const q = fields.queue ?? fields.routing_key;
      if (typeof q === 'string' && q) this.queuesSeen.add(q);
      return;
    }
    const timestamp = typeof e.timestamp === 'number' ? e.timestamp : Date.now() / 1000;
    const runtime = typeof fields.runtime === 'number' ? fields.runtime : undefined;
    this.charts.count(subject, timestamp, runtime);
    if (runtime !== undefined && runtime > 0) this.metrics.observeRuntime(hostname, name, runtime);
    if (subject === 'started' && !task.eta && task.received && task.started) this.metrics.setPrefetchTime(hostname, name, Math.max(0, task.started - task.received));
    const w = this.liveWorker(hostname);
    if (subject === 'failed') w.view.failed++;
    else if (subject === 'retried') w.view.retried++;
    this.touch(w, typeof e.local_received === 'number' ? e.local_received : undefined, false);
  }

  /** The held events' tasks read back in one query (a new task has no row), then their events applied in order. */
  private resolve(): void {
    if (this.unresolved.size === 0) return;
    const held = [...this.unresolved];
    this.unresolved.clear();
    const rows = this.store.tasksById(held.map(([uuid]) => uuid));
    for (const [uuid, events] of held) {
      this.remember(this.dirtyTasks.get(uuid) ?? rows.get(uuid) ?? emptyTask(uuid));
      for (const e of events) this.taskEvent(e, String(e.type), typeof e.hostname === 'string' ? e.hostname : '', e as unknown as Record<string, unknown>);
    }
  }

  private remember(t: TaskView): void {
    this.cache.set(t.uuid, t);
    if (this.cache.size > CACHE_TASKS) this.cache.delete(this.cache.keys().next().value!);
  }

  private taskFor(uuid: string): TaskView {
    const t = this.cache.get(uuid)!;
    this.cache.delete(uuid); // most recently used last
    this.cache.set(uuid, t);
    return t;
  }

  private liveWorker(hostname: string): LiveWorker {
    let w = this.workers.get(hostname);
    if (!w) {
      w = { view: { hostname, online: false, active: 0, processed: 0, failed: 0, retried: 0 }, lastHeartbeat: 0, inspect: {} };
      this.workers.set(hostname, w);
    }
    return w;
  }

  private touch(w: LiveWorker, localReceived: number | undefined, heartbeat: boolean): void {
    if (heartbeat && localReceived) w.lastHeartbeat = localReceived;
    this.dirtyWorkers.add(w.view.hostname);
  }

  private workerEvent(subject: string, hostname: string, e: Record<string, unknown>): void {
    if (!hostname) return;
    const known = this.workers.has(hostname);
    const w = this.liveWorker(hostname);
    const v = w.view;
    this.metrics.event(hostname, `worker-${subject}`, '');
    if (typeof e.pid === 'number') v.pid = e.pid;
    if (typeof e.freq === 'number') v.freq = e.freq;
    if (typeof e.active === 'number') v.active = e.active;
    if (typeof e.processed === 'number') v.processed = e.processed;
    if (Array.isArray(e.loadavg)) v.loadavg = e.loadavg.filter((x): x is number => typeof x === 'number');
    if (typeof e.sw_ident === 'string') v.sw_ident = e.sw_ident;
    if (typeof e.sw_ver === 'string') v.sw_ver = e.sw_ver;
    if (subject === 'offline') {
      w.lastHeartbeat = 0;
      v.online = false;
      v.active = 0;
      this.dirtyWorkers.add(hostname);
      return;
    }
    const wasOnline = this.isOnline(w);
    this.touch(w, typeof e.local_received === 'number' ? e.local_received : Date.now() / 1000, true);
    // What the workers page shows; the rest of Flower's set (active, reserved, …) waits for the next round.
    // Asked again (at most every 10 s) while a worker has not answered: a busy worker's reply can miss the wait.
    const now = Date.now();
    const unanswered = v.registered === undefined && now - (w.askedAt ?? 0) > 10_000;
    if (!known || subject === 'online' || !wasOnline || unanswered) {
      w.askedAt = now;
      void this.refreshWorkers([hostname], ONLINE_INSPECT, 5);
    }
  }

  private isOnline(w: LiveWorker): boolean {
    if (!w.lastHeartbeat) return false;
    return Date.now() / 1000 < w.lastHeartbeat + (w.view.freq ?? 60) * (HEARTBEAT_EXPIRE_WINDOW / 100);
  }

  /** A worker as the UI shows it now. */
  workerView(w: LiveWorker): WorkerView {
    const now = Date.now() / 1000;
    return { ...w.view, online: this.isOnline(w), heartbeatAge: w.lastHeartbeat ? Math.max(0, now - w.lastHeartbeat) : undefined };
  }

  workerViews(): WorkerView[] {
    return [...this.workers.values()].map((w) => this.workerView(w)).sort((a, b) => a.hostname.localeCompare(b.hostname));
  }

  hasWorker(hostname: string): boolean {
    return this.workers.has(hostname);
  }

  /** Flower's /api/workers: name → { stats, active_queues, registered, …, timestamp }, from the last inspect round. */
  flowerWorkers(): Record<string, Record<string, unknown>> {
    const out: Record<string, Record<string, unknown>> = {};
    for (const [name, w] of this.workers) if (Object.keys(w.inspect).length) out[name] = w.inspect;
    return out;
  }

  /** Online status by name (Flower's /api/workers?status=true). */
  workerStatus(): Record<string, boolean> {
    const out: Record<string, boolean> = {};
    for (const [name, w] of this.workers) out[name] = this.isOnline(w);
    return out;
  }

  /** Ask the workers (or these) for stats, queues, registered tasks and the rest of Flower's set (or these commands). */
  refreshWorkers(destination?: string[], methods: readonly (typeof FLOWER_INSPECT)[number][] = FLOWER_INSPECT, timeout = 1): Promise<void> {
    if (this.inspecting && !destination) return this.inspecting;
    const run = (async () => {
      const replies = await Promise.all(methods.map((m) => this.host.control.inspect({ destination, timeout, onDuplicate: () => undefined }).request(m, m === 'active' ? { safe: null } : m === 'conf' ? { with_defaults: false } : m === 'registered' ? { taskinfoitems: [] } : {}).catch(() => ({}))));
      const now = Date.now() / 1000;
      methods.forEach((method, i) => {
        for (const [node, reply] of Object.entries(replies[i] as Record<string, unknown>)) {
          const w = this.liveWorker(node);
          w.inspect[method] = reply;
          w.inspect.timestamp = now;
          this.apply(w, method, reply);
          this.dirtyWorkers.add(node);
        }
      });
    })().catch((err: unknown) => this.logger.debug(`Dashboard: inspect failed: ${(err as Error).message}`));
    if (!destination) this.inspecting = run.finally(() => (this.inspecting = undefined));
    return run;
  }

  private apply(w: LiveWorker, method: string, reply: unknown): void {
    if (!reply || typeof reply !== 'object') return;
    const v = w.view;
    if (method === 'stats') {
      const s = reply as { pid?: unknown; pool?: { 'max-concurrency'?: unknown; implementation?: unknown } };
      if (typeof s.pid === 'number') v.pid = s.pid;
      if (typeof s.pool?.['max-concurrency'] === 'number') v.concurrency = s.pool['max-concurrency'];
      if (typeof s.pool?.implementation === 'string') v.pool = s.pool.implementation.replace(/^celery\.concurrency\./, '').replace(/:TaskPool$/, '');
    } else if (method === 'registered' && Array.isArray(reply)) {
      v.registered = reply.map(String).map((s) => s.split(' ')[0]!).sort();
    } else if (method === 'active_queues' && Array.isArray(reply)) {
      v.queues = reply.map((q) => String((q as { name?: unknown }).name ?? '')).filter(Boolean);
    }
  }

  /** The queues workers consume from (their last active_queues), with how many consume each. */
  consumedQueues(): Map<string, number> {
    const out = new Map<string, number>();
    for (const w of this.workers.values()) {
      if (!this.isOnline(w)) continue;
      for (const q of w.view.queues ?? []) out.set(q, (out.get(q) ?? 0) + 1);
    }
    return out;
  }

  /** A task by id: the folded view when it is recent, else the stored row. */
  task(uuid: string): TaskView | undefined {
    if (this.unresolved.has(uuid)) this.resolve();
    return this.dirtyTasks.get(uuid) ?? this.cache.get(uuid) ?? this.store.task(uuid);
  }

  /**
   * Write the changes in one transaction (each tick, and before a request reads the history). The
   * listeners hear of them at the tick only, so a view changes on the stream at most 4 times a second.
   */
  flush(): void {
    this.resolve();
    for (const w of this.workers.values()) {
      const online = this.isOnline(w);
      if (online !== w.view.online) {
        w.view.online = online; // a heartbeat that stopped coming: the worker went offline
        this.dirtyWorkers.add(w.view.hostname);
      }
    }
    const tasks = [...this.dirtyTasks.values()];
    const workers = [...this.dirtyWorkers].map((h) => this.workerView(this.workers.get(h)!));
    this.dirtyTasks.clear();
    this.dirtyWorkers.clear();
    const minutes = this.charts.takeDirty();
    try {
      this.store.write({ tasks, workers, minutes });
    } catch (err) {
      this.logger.error(`Dashboard: could not write the history to ${this.store.file}: ${(err as Error).message}`);
    }
    if (this.listeners.size === 0) return;
    for (const t of tasks) this.unsent.tasks.set(t.uuid, { ...t });
    for (const w of workers) this.unsent.workers.set(w.hostname, w);
  }

  private readonly unsent = { tasks: new Map<string, TaskView>(), workers: new Map<string, WorkerView>() };

  private tickNow(): void {
    this.flush();
    if (this.unsent.tasks.size + this.unsent.workers.size === 0) return;
    const changes = { tasks: [...this.unsent.tasks.values()], workers: [...this.unsent.workers.values()] };
    this.unsent.tasks.clear();
    this.unsent.workers.clear();
    for (const fn of this.listeners) {
      try {
        fn(changes);
      } catch (err) {
        this.logger.error(`Dashboard: a change listener threw: ${(err as Error).message}`);
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.tick);
    clearInterval(this.inspectTimer);
    await this.receiver?.close();
    await this.inspecting;
    this.flush();
  }
}
