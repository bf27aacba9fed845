// The cluster as the events describe it (celery.events.state): workers with their heartbeats, tasks
// with their states. Events may arrive out of order; a task's state follows Celery's precedence, and
// fields of an earlier state (task-received after task-succeeded) are merged without moving it back.
import type { CeleryEvent } from './event.js';

/** A monitor counts a worker offline when no heartbeat came within freq × this percent. */
export const HEARTBEAT_EXPIRE_WINDOW = 200;
/** Drift (seconds) between a worker's timestamp and our clock that is worth a warning. */
export const HEARTBEAT_DRIFT_MAX = 16;

/** celery.states.PRECEDENCE: a lower index wins; any other state ranks where null is. */
const PRECEDENCE = ['SUCCESS', 'FAILURE', null, 'REVOKED', 'STARTED', 'RECEIVED', 'REJECTED', 'RETRY', 'PENDING'];
export const READY_STATES: ReadonlySet<string> = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);

export function precedence(state: string): number {
  const i = PRECEDENCE.indexOf(state);
  return i < 0 ? PRECEDENCE.indexOf(null) : i;
}

/** The state a task event puts a task in (TASK_EVENT_TO_STATE). */
const TASK_EVENT_TO_STATE: Record<string, string> = {
  sent: 'PENDING', received: 'RECEIVED', started: 'STARTED', failed: 'FAILURE',
  retried: 'RETRY', succeeded: 'SUCCESS', revoked: 'REVOKED', rejected: 'REJECTED',
};

/** Fields of an earlier state that are still taken when its event arrives late (Task.merge_rules). */
const MERGE_RULES: Record<string, readonly string[]> = {
  RECEIVED: ['name', 'args', 'kwargs', 'parent_id', 'root_id', 'retries', 'eta', 'expires'],
};

export function heartbeatExpires(timestamp: number, freq = 60, window = HEARTBEAT_EXPIRE_WINDOW): number {
  return timestamp + freq * (window / 100);
}

const WORKER_FIELDS = ['pid', 'freq', 'clock', 'active', 'processed', 'loadavg', 'sw_ident', 'sw_ver', 'sw_sys'] as const;

export class WorkerState {
  static readonly HEARTBEAT_MAX = 4;
  pid: number | null = null;
  freq = 60;
  /** local_received of the last heartbeats (at most four), oldest first. */
  readonly heartbeats: number[] = [];
  clock = 0;
  active: number | null = null;
  processed: number | null = null;
  loadavg: number[] | null = null;
  sw_ident: string | null = null;
  sw_ver: string | null = null;
  sw_sys: string | null = null;

  constructor(readonly hostname: string, private readonly onDrift?: (w: WorkerState, drift: number) => void) {}

  /** Apply a worker event (or a task event's timestamps: subject null). */
  event(subject: string | null, timestamp: number | undefined, localReceived: number | undefined, fields?: Record<string, unknown>): void {
    if (fields) for (const k of WORKER_FIELDS) if (k in fields) (this as Record<string, unknown>)[k] = fields[k];
    if (subject === 'offline') {
      this.heartbeats.length = 0;
      return;
    }
    if (!localReceived || !timestamp) return;
    const drift = Math.abs(Math.trunc(localReceived) - Math.trunc(timestamp));
    if (drift > HEARTBEAT_DRIFT_MAX) this.onDrift?.(this, drift);
    const hb = this.heartbeats;
    if (hb.length > WorkerState.HEARTBEAT_MAX - 1) hb.shift();
    if (hb.length === 0 || localReceived > hb[hb.length - 1]!) hb.push(localReceived);
    else hb.splice(hb.findIndex((t) => t > localReceived), 0, localReceived);
  }

  get heartbeatExpires(): number {
    const last = this.heartbeats[this.heartbeats.length - 1];
    return last === undefined ? 0 : heartbeatExpires(last, this.freq);
  }

  /** A heartbeat arrived within 2 × freq. */
  get alive(): boolean {
    return this.heartbeats.length > 0 && Date.now() / 1000 < this.heartbeatExpires;
  }

  get statusString(): 'ONLINE' | 'OFFLINE' {
    return this.alive ? 'ONLINE' : 'OFFLINE';
  }

  get id(): string {
    return `${this.hostname}.${this.pid}`;
  }
}

const TASK_FIELDS = [
  'name', 'args', 'kwargs', 'eta', 'expires', 'retries', 'result', 'exception', 'traceback', 'runtime',
  'exchange', 'routing_key', 'root_id', 'parent_id', 'clock',
] as const;

export class TaskState {
  state = 'PENDING';
  name: string | null = null;
  args: string | null = null;
  kwargs: string | null = null;
  eta: string | null = null;
  expires: string | null = null;
  retries: number | null = null;
  result: string | null = null;
  exception: string | null = null;
  traceback: string | null = null;
  runtime: number | null = null;
  exchange: string | null = null;
  routing_key: string | null = null;
  root_id: string | null = null;
  parent_id: string | null = null;
  clock = 0;
  /** Unix time of the event that set the current state. */
  timestamp: number | null = null;
  /** Unix time of each event type seen (Celery's task.received, task.succeeded, …). */
  sent: number | null = null;
  received: number | null = null;
  started: number | null = null;
  succeeded: number | null = null;
  failed: number | null = null;
  retried: number | null = null;
  revoked: number | null = null;
  rejected: number | null = null;
  /** The worker that handles it (null for a task only sent so far). */
  worker: WorkerState | null = null;
  /** The client that sent it (task-sent's hostname). */
  client: string | null = null;
  readonly children = new Set<TaskState>();

  constructor(readonly uuid: string) {}

  get id(): string {
    return this.uuid;
  }

  get ready(): boolean {
    return READY_STATES.has(this.state);
  }

  /** Apply a task event of `subject` ('received', 'succeeded', …) with Celery's precedence and merge rules. */
  event(subject: string, timestamp: number | undefined, fields: Record<string, unknown>): void {
    let state = TASK_EVENT_TO_STATE[subject];
    if (state !== undefined) (this as Record<string, unknown>)[subject] = timestamp ?? null;
    else state = subject.toUpperCase();
    let keep: readonly string[] = TASK_FIELDS;
    let moves = true;
    if (state !== 'RETRY' && this.state !== 'RETRY' && precedence(state) > precedence(this.state)) {
      // This state logically happened before the current one: its fields (only the merge fields, if
      // it has rules) are taken, the state and timestamp stay.
      keep = MERGE_RULES[state] ?? TASK_FIELDS;
      moves = false;
    }
    for (const k of keep) if (k in fields) (this as Record<string, unknown>)[k] = fields[k];
    if (moves) {
      this.state = state;
      this.timestamp = timestamp ?? null;
    }
  }

  /** The fields worth showing, when set (Task.info). */
  info(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const k of ['args', 'kwargs', 'retries', 'result', 'eta', 'runtime', 'expires', 'exception', 'exchange', 'routing_key', 'root_id', 'parent_id'] as const) {
      if (this[k] !== null) out[k] = this[k];
    }
    return out;
  }
}

export interface StateOptions {
  maxWorkersInMemory?: number;
  maxTasksInMemory?: number;
  onNodeJoin?: (w: WorkerState) => void;
  onNodeLeave?: (w: WorkerState) => void;
  /** Called with every event before it is applied. */
  callback?: (state: State, event: CeleryEvent) => void;
  /** Called once per worker whose clock drifts more than HEARTBEAT_DRIFT_MAX seconds from ours. */
  onDrift?: (w: WorkerState, drift: number) => void;
}

/** What State.event did: the worker or task it updated, whether it was new, and the event's subject. */
export type StateChange =
  | { kind: 'worker'; worker: WorkerState; created: boolean; subject: string }
  | { kind: 'task'; task: TaskState; created: boolean; subject: string }
  | { kind: 'other'; subject: string };

export class State {
  readonly workers = new Map<string, WorkerState>();
  /** Most recently created last; the oldest are forgotten beyond maxTasksInMemory. */
  readonly tasks = new Map<string, TaskState>();
  eventCount = 0;
  /** task-received events seen. */
  taskCount = 0;
  private readonly seenTypes = new Set<string>();
  private readonly orphans = new Map<string, Set<TaskState>>();
  private readonly drifted = new Set<string>();
  private readonly maxWorkers: number;
  private readonly maxTasks: number;

  constructor(private readonly o: StateOptions = {}) {
    this.maxWorkers = o.maxWorkersInMemory ?? 5000;
    this.maxTasks = o.maxTasksInMemory ?? 10_000;
  }

  /** Apply one event (a receiver handler: `receiver.on('*', (e) => state.event(e))`). */
  event(e: CeleryEvent): StateChange {
    this.eventCount++;
    this.o.callback?.(this, e);
    const type = String(e.type);
    const dash = type.indexOf('-');
    const group = dash < 0 ? type : type.slice(0, dash);
    const subject = dash < 0 ? '' : type.slice(dash + 1);
    const fields = e as Record<string, unknown>;
    if (group === 'worker' && typeof e.hostname === 'string') {
      const offline = subject === 'offline';
      let worker = this.workers.get(e.hostname);
      let created = false;
      if (!worker) {
        worker = this.newWorker(e.hostname);
        if (!offline) {
          this.remember(this.workers, e.hostname, worker, this.maxWorkers);
          created = true;
        }
      }
      worker.event(subject, e.timestamp, e.local_received, fields);
      if (created || subject === 'online') this.o.onNodeJoin?.(worker);
      if (offline) {
        this.o.onNodeLeave?.(worker);
        this.workers.delete(e.hostname);
      }
      return { kind: 'worker', worker, created, subject };
    }
    if (group === 'task' && typeof fields.uuid === 'string') {
      const uuid = fields.uuid;
      let task = this.tasks.get(uuid);
      const created = !task;
      if (!task) this.remember(this.tasks, uuid, (task = new TaskState(uuid)), this.maxTasks);
      if (subject === 'sent') task.client = e.hostname;
      else {
        let worker = this.workers.get(e.hostname);
        if (!worker) this.remember(this.workers, e.hostname, (worker = this.newWorker(e.hostname)), this.maxWorkers);
        task.worker = worker;
        if (e.local_received) worker.event(null, e.local_received, e.timestamp);
      }
      if (subject === 'received') this.taskCount++;
      task.event(subject, e.timestamp, fields);
      if (task.name) this.seenTypes.add(task.name);
      if (task.parent_id) {
        const parent = this.tasks.get(task.parent_id);
        if (parent) parent.children.add(task);
        else this.orphanOf(task.parent_id).add(task);
      }
      const children = this.orphans.get(uuid);
      if (children) {
        this.orphans.delete(uuid);
        for (const c of children) task.children.add(c);
      }
      return { kind: 'task', task, created, subject };
    }
    return { kind: 'other', subject };
  }

  private newWorker(hostname: string): WorkerState {
    return new WorkerState(hostname, (w, drift) => {
      if (this.drifted.has(w.hostname)) return;
      this.drifted.add(w.hostname);
      this.o.onDrift?.(w, drift);
    });
  }

  private orphanOf(parentId: string): Set<TaskState> {
    let s = this.orphans.get(parentId);
    if (!s) {
      if (this.orphans.size >= this.maxTasks) this.orphans.delete(this.orphans.keys().next().value!);
      this.orphans.set(parentId, (s = new Set()));
    }
    return s;
  }

  private remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
    map.set(key, value);
    while (map.size > max) map.delete(map.keys().next().value!);
  }

  /** Workers whose last heartbeat is recent enough. */
  aliveWorkers(): WorkerState[] {
    return [...this.workers.values()].filter((w) => w.alive);
  }

  /** Tasks, the latest event first (by timestamp, then clock). */
  tasksByTime(limit?: number): TaskState[] {
    const all = [...this.tasks.values()].sort((a, b) => (b.timestamp ?? 0) - (a.timestamp ?? 0) || b.clock - a.clock);
    return limit === undefined ? all : all.slice(0, limit);
  }

  tasksByType(name: string, limit?: number): TaskState[] {
    return this.tasksByTime().filter((t) => t.name === name).slice(0, limit);
  }

  tasksByWorker(hostname: string, limit?: number): TaskState[] {
    return this.tasksByTime().filter((t) => t.worker?.hostname === hostname).slice(0, limit);
  }

  /** Every task name seen, sorted. */
  taskTypes(): string[] {
    return [...this.seenTypes].sort();
  }

  /** Forget the workers and the finished tasks (every task when `ready` is false). */
  clear(ready = true): void {
    this.workers.clear();
    for (const [id, t] of this.tasks) if (!ready || t.ready) this.tasks.delete(id);
    this.orphans.clear();
    this.eventCount = 0;
    this.taskCount = 0;
  }
}
