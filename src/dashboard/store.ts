// The dashboard's history: an SQLite file (better-sqlite3, WAL) with one row per task keyed by uuid,
// the workers last seen, a row per minute of chart counters and the queue-length samples. Writes are
// gathered by the ingest and committed in one transaction per tick; rows older than the retention
// are deleted once a minute. The file belongs to one dashboard process.
import fs from 'node:fs';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { requireOptional, unbuiltDependency } from '../brokers/optional.js';
import { TASK_COLUMNS, type TaskView, type WorkerView } from './views.js';

type Db = BetterSqlite3.Database;
type Statement = BetterSqlite3.Statement<unknown[]>;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tasks (
  uuid TEXT PRIMARY KEY, name TEXT, state TEXT NOT NULL, args TEXT, kwargs TEXT, result TEXT, exception TEXT,
  traceback TEXT, runtime REAL, worker TEXT, client TEXT, retries INTEGER NOT NULL DEFAULT 0, sent REAL,
  received REAL, started REAL, succeeded REAL, failed REAL, revoked REAL, retried REAL, rejected REAL, eta TEXT,
  expires TEXT, parent_id TEXT, root_id TEXT, group_id TEXT, exchange TEXT, routing_key TEXT,
  clock INTEGER NOT NULL DEFAULT 0, timestamp REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tasks_timestamp ON tasks (timestamp);
CREATE INDEX IF NOT EXISTS tasks_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_group ON tasks (group_id) WHERE group_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS workers (hostname TEXT PRIMARY KEY, view TEXT NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS minutes (
  t INTEGER PRIMARY KEY, succeeded INTEGER NOT NULL, failed INTEGER NOT NULL, retried INTEGER NOT NULL,
  received INTEGER NOT NULL, runtimes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS queue_samples (t INTEGER PRIMARY KEY, lengths TEXT NOT NULL);
`;

/** One minute of chart counters; `runtimes` counts runtimes per RUNTIME_BOUNDS bucket. */
export interface MinuteCounts {
  t: number;
  succeeded: number;
  failed: number;
  retried: number;
  received: number;
  runtimes: number[];
}

export interface TaskQuery {
  state?: string;
  name?: string;
  worker?: string;
  /** Unix seconds: the last change (or, with timeField 'received', the task-received) at or after / before. */
  since?: number;
  until?: number;
  timeField?: 'timestamp' | 'received';
  /** A task id, or text found in the name, args or kwargs. */
  search?: string;
  limit: number;
  offset: number;
}

export class HistoryStore {
  private readonly statements = new Map<string, Statement>();
  private readonly upsertTask: Statement;
  private readonly writeAll: (batch: { tasks: TaskView[]; workers: WorkerView[]; minutes: MinuteCounts[] }) => void;

  private constructor(readonly file: string, private readonly db: Db) {
    db.exec(SCHEMA);
    const cols = TASK_COLUMNS.join(', ');
    const updates = TASK_COLUMNS.filter((c) => c !== 'uuid').map((c) => `${c} = excluded.${c}`).join(', ');
    this.upsertTask = db.prepare(`INSERT INTO tasks (${cols}) VALUES (${TASK_COLUMNS.map(() => '?').join(', ')}) ON CONFLICT (uuid) DO UPDATE SET ${updates}`);
    const upsertWorker = db.prepare('INSERT INTO workers (hostname, view, last_seen) VALUES (?, ?, ?) ON CONFLICT (hostname) DO UPDATE SET view = excluded.view, last_seen = excluded.last_seen');
    const upsertMinute = db.prepare('INSERT INTO minutes (t, succeeded, failed, retried, received, runtimes) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (t) DO UPDATE SET succeeded = excluded.succeeded, failed = excluded.failed, retried = excluded.retried, received = excluded.received, runtimes = excluded.runtimes');
    this.writeAll = db.transaction((batch: { tasks: TaskView[]; workers: WorkerView[]; minutes: MinuteCounts[] }) => {
      for (const t of batch.tasks) this.upsertTask.run(...TASK_COLUMNS.map((c) => t[c]));
      const now = Date.now() / 1000;
      for (const w of batch.workers) upsertWorker.run(w.hostname, JSON.stringify(w), now);
      for (const m of batch.minutes) upsertMinute.run(m.t, m.succeeded, m.failed, m.retried, m.received, JSON.stringify(m.runtimes));
    });
  }

  /** Open (or create) the history file; its folder is made when missing. */
  static open(file: string): HistoryStore {
    const Database = requireOptional<typeof BetterSqlite3>('better-sqlite3', `The dashboard's history (${file})`);
    if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    let db: Db;
    try {
      db = new Database(file);
    } catch (err) {
      const unbuilt = unbuiltDependency('better-sqlite3', `The dashboard's history (${file})`, err);
      if (unbuilt) throw unbuilt;
      throw new Error(`Cannot open the dashboard's history ${file}: ${(err as Error).message}. Pass another file with --db (setting dashboard_db).`);
    }
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 1000');
    return new HistoryStore(file, db);
  }

  private stmt(sql: string): Statement {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.db.prepare<unknown[]>(sql)));
    return s;
  }

  /** Write one tick's changes in one transaction. */
  write(batch: { tasks: TaskView[]; workers: WorkerView[]; minutes: MinuteCounts[] }): void {
    if (batch.tasks.length + batch.workers.length + batch.minutes.length === 0) return;
    this.writeAll(batch);
  }

  task(uuid: string): TaskView | undefined {
    return this.stmt('SELECT * FROM tasks WHERE uuid = ?').get(uuid) as TaskView | undefined;
  }

  /** The rows of these tasks (those that have one), by uuid, in one query. */
  tasksById(uuids: string[]): Map<string, TaskView> {
    const out = new Map<string, TaskView>();
    for (let i = 0; i < uuids.length; i += 5000) {
      const rows = this.stmt('SELECT * FROM tasks WHERE uuid IN (SELECT value FROM json_each(?))').all(JSON.stringify(uuids.slice(i, i + 5000))) as TaskView[];
      for (const r of rows) out.set(r.uuid, r);
    }
    return out;
  }

  children(uuid: string): TaskView[] {
    return this.stmt('SELECT * FROM tasks WHERE parent_id = ? ORDER BY timestamp LIMIT 1000').all(uuid) as TaskView[];
  }

  group(groupId: string): TaskView[] {
    return this.stmt('SELECT * FROM tasks WHERE group_id = ? ORDER BY timestamp LIMIT 1000').all(groupId) as TaskView[];
  }

  /** Tasks by the filters, the latest change first, and how many match in all. */
  tasks(q: TaskQuery): { tasks: TaskView[]; total: number } {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.state) {
      where.push('state = ?');
      params.push(q.state);
    }
    if (q.name) {
      where.push('name = ?');
      params.push(q.name);
    }
    if (q.worker) {
      where.push('worker = ?');
      params.push(q.worker);
    }
    const time = q.timeField === 'received' ? 'received' : 'timestamp';
    if (q.since !== undefined) {
      where.push(`${time} >= ?`);
      params.push(q.since);
    }
    if (q.until !== undefined) {
      where.push(`${time} <= ?`);
      params.push(q.until);
    }
    if (q.search) {
      const like = `%${q.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      where.push("(uuid = ? OR uuid LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\' OR args LIKE ? ESCAPE '\\' OR kwargs LIKE ? ESCAPE '\\')");
      params.push(q.search, `${like.slice(1)}`, like, like, like);
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const total = (this.stmt(`SELECT count(*) AS n FROM tasks ${clause}`).get(...params) as { n: number }).n;
    const tasks = this.stmt(`SELECT * FROM tasks ${clause} ORDER BY timestamp DESC LIMIT ? OFFSET ?`).all(...params, q.limit, q.offset) as TaskView[];
    return { tasks, total };
  }

  /** Every task name seen, sorted. */
  taskTypes(): string[] {
    return (this.stmt('SELECT DISTINCT name FROM tasks WHERE name IS NOT NULL ORDER BY name').all() as { name: string }[]).map((r) => r.name);
  }

  taskCount(): number {
    return (this.stmt('SELECT count(*) AS n FROM tasks').get() as { n: number }).n;
  }

  workers(): { view: WorkerView; lastSeen: number }[] {
    return (this.stmt('SELECT view, last_seen FROM workers ORDER BY hostname').all() as { view: string; last_seen: number }[])
      .map((r) => ({ view: JSON.parse(r.view) as WorkerView, lastSeen: r.last_seen }));
  }

  minutes(since: number): MinuteCounts[] {
    return (this.stmt('SELECT * FROM minutes WHERE t >= ? ORDER BY t').all(since) as (Omit<MinuteCounts, 'runtimes'> & { runtimes: string })[])
      .map((r) => ({ ...r, runtimes: JSON.parse(r.runtimes) as number[] }));
  }

  minute(t: number): MinuteCounts | undefined {
    const r = this.stmt('SELECT * FROM minutes WHERE t = ?').get(t) as (Omit<MinuteCounts, 'runtimes'> & { runtimes: string }) | undefined;
    return r && { ...r, runtimes: JSON.parse(r.runtimes) as number[] };
  }

  addQueueSample(t: number, lengths: Record<string, number>): void {
    this.stmt('INSERT OR REPLACE INTO queue_samples (t, lengths) VALUES (?, ?)').run(Math.floor(t), JSON.stringify(lengths));
  }

  queueSamples(since: number): { t: number; lengths: Record<string, number> }[] {
    return (this.stmt('SELECT t, lengths FROM queue_samples WHERE t >= ? ORDER BY t').all(since) as { t: number; lengths: string }[])
      .map((r) => ({ t: r.t, lengths: JSON.parse(r.lengths) as Record<string, number> }));
  }

  /** Delete what changed last before `before` (unix seconds); returns the tasks deleted. */
  prune(before: number): number {
    const n = this.stmt('DELETE FROM tasks WHERE timestamp < ?').run(before).changes;
    this.stmt('DELETE FROM minutes WHERE t < ?').run(before);
    this.stmt('DELETE FROM queue_samples WHERE t < ?').run(before);
    this.stmt('DELETE FROM workers WHERE last_seen < ?').run(before);
    return n;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
