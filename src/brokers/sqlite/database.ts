// One better-sqlite3 connection per database file per process, shared by the broker and the result
// backend. Writes are grouped: every write queued in the same turn of the event loop commits in one
// BEGIN IMMEDIATE transaction, retried on SQLITE_BUSY; a write that throws fails alone.
import fs from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import type BetterSqlite3 from 'better-sqlite3';
import { isBusyError, retryBusy } from './busy.js';
import type { SqliteLocation } from './url.js';
import { requireOptional, unbuiltDependency } from '../optional.js';

export type Db = BetterSqlite3.Database;
type Statement = BetterSqlite3.Statement<unknown[]>;

const statements = new WeakMap<Db, Map<string, Statement>>();
/** A statement prepared once per connection. */
export function prepared(db: Db, sql: string): Statement {
  let m = statements.get(db);
  if (!m) statements.set(db, (m = new Map()));
  let s = m.get(sql);
  if (!s) m.set(sql, (s = db.prepare<unknown[]>(sql)));
  return s;
}

/** SQLite's own wait for a lock. Short, because it blocks the event loop; retryBusy does the rest. */
export const BUSY_TIMEOUT_MS = 100;
/** How long a write keeps retrying SQLITE_BUSY before it fails. */
export const WRITE_DEADLINE_MS = 60_000;
const MAX_BATCH = 512;

export interface DatabaseStats {
  busyRetries: number;
  transactions: number;
}

type WriteOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

interface PendingWrite {
  run: (db: Db) => unknown;
  resolve: (v: unknown) => void;
  reject: (err: unknown) => void;
}

export class SqliteDatabase {
  readonly stats: DatabaseStats = { busyRetries: 0, transactions: 0 };
  /** In-process wake-ups: 'publish' (queue name) and 'result' (task id). Other processes poll. */
  readonly events = new EventEmitter();
  private pending: PendingWrite[] = [];
  private flushing = false;
  private scheduled = false;
  private refs = 0;
  private readonly initialized = new Set<string>();

  constructor(readonly location: SqliteLocation, readonly db: Db) {
    this.events.setMaxListeners(0);
    this.savepoint = db.transaction((w: PendingWrite) => w.run(db));
  }

  /** Queue a write; it commits together with the other writes queued in this turn. */
  write<T>(run: (db: Db) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run, resolve: resolve as (v: unknown) => void, reject });
      this.schedule();
    });
  }

  /** Run schema statements once per connection (CREATE … IF NOT EXISTS), retrying on SQLITE_BUSY. */
  async ensureSchema(name: string, sql: string): Promise<void> {
    if (this.initialized.has(name)) return;
    await this.write((db) => db.exec(sql));
    this.initialized.add(name);
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing || this.pending.length === 0) return;
    this.flushing = true;
    const batch = this.pending.splice(0, MAX_BATCH);
    try {
      const outcomes = await retryBusy(() => this.runBatch(batch), { deadlineMs: WRITE_DEADLINE_MS, onRetry: () => { this.stats.busyRetries++; } });
      this.stats.transactions++;
      batch.forEach((w, i) => {
        const o = outcomes[i]!;
        if (o.ok) w.resolve(o.value);
        else w.reject(wrapError(o.error, this.location.file));
      });
    } catch (err) {
      for (const w of batch) w.reject(wrapError(err, this.location.file));
    } finally {
      this.flushing = false;
      if (this.pending.length > 0) this.schedule();
    }
  }

  /** Runs one write inside the batch's transaction as a SAVEPOINT: its failure undoes only its own changes. */
  private readonly savepoint: (w: PendingWrite) => unknown;

  /**
   * Commit a batch in one transaction. When a write throws (other than SQLITE_BUSY, which retries the
   * batch), the batch runs again with each write in its own savepoint, so only the writes that throw
   * fail and the unrelated writes queued with them commit.
   */
  private runBatch(batch: PendingWrite[]): WriteOutcome[] {
    const out: WriteOutcome[] = [];
    try {
      this.db.transaction(() => {
        for (const w of batch) out.push({ ok: true, value: w.run(this.db) });
      }).immediate();
      return out;
    } catch (err) {
      if (isBusyError(err) || batch.length === 1) throw err;
    }
    const isolated: WriteOutcome[] = [];
    this.db.transaction(() => {
      for (const w of batch) {
        try {
          isolated.push({ ok: true, value: this.savepoint(w) });
        } catch (err) {
          // Busy, or an error after which SQLite rolled back the whole transaction: the batch fails or retries.
          if (isBusyError(err) || !this.db.inTransaction) throw err;
          isolated.push({ ok: false, error: err });
        }
      }
    }).immediate();
    return isolated;
  }

  /** A read outside any transaction; reads do not wait for writers in WAL mode. */
  read<T>(run: (db: Db) => T): T {
    return run(this.db);
  }

  acquire(): this {
    this.refs++;
    return this;
  }

  /** Drop one reference; the last one closes the connection after the queued writes commit. */
  async release(): Promise<void> {
    if (--this.refs > 0) return;
    while (this.pending.length > 0 || this.flushing || this.scheduled) await new Promise((r) => setTimeout(r, 5));
    if (this.refs > 0) return;
    OPEN.delete(keyOf(this.location));
    this.db.close();
  }
}

function wrapError(err: unknown, file: string): unknown {
  if (err instanceof Error && !err.message.includes(file)) err.message = `${err.message} (SQLite database ${file})`;
  return err;
}

const OPEN = new Map<string, Promise<SqliteDatabase>>();
const keyOf = (loc: SqliteLocation) => `${loc.file}\u0000${loc.synchronous}`;

/** Open (or share) the connection for this file: parent directory created, busy_timeout, then WAL. */
export async function openDatabase(location: SqliteLocation): Promise<SqliteDatabase> {
  const key = keyOf(location);
  let opening = OPEN.get(key);
  if (!opening) {
    opening = openNew(location);
    OPEN.set(key, opening);
    opening.catch(() => OPEN.delete(key));
  }
  return (await opening).acquire();
}

async function openNew(location: SqliteLocation): Promise<SqliteDatabase> {
  fs.mkdirSync(path.dirname(location.file), { recursive: true });
  // Loaded on first open: better-sqlite3 is an optional dependency a Redis or RabbitMQ install may omit.
  const Database = requireOptional<typeof BetterSqlite3>('better-sqlite3', `The SQLite database ${location.file}`);
  let db: Db;
  try {
    db = new Database(location.file);
  } catch (err) {
    const unbuilt = unbuiltDependency('better-sqlite3', `The SQLite database ${location.file}`, err);
    if (unbuilt) throw unbuilt;
    throw new Error(`Cannot open SQLite database ${location.file}: ${(err as Error).message}`);
  }
  // busy_timeout first: switching to WAL needs a lock another process may hold.
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  const mode = await retryBusy(() => db.pragma('journal_mode = WAL', { simple: true }), { deadlineMs: WRITE_DEADLINE_MS });
  if (String(mode).toLowerCase() !== 'wal') {
    db.close();
    throw new Error(`SQLite database ${location.file} could not switch to WAL mode (got ${String(mode)}); WAL needs a local filesystem`);
  }
  db.pragma(`synchronous = ${location.synchronous.toUpperCase()}`);
  return new SqliteDatabase(location, db);
}
