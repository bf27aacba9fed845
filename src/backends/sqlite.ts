// sqlite:// result backend: task results in the embedded database (the broker's file, its own table).
import type { Logger } from '../app/log.js';
import { openDatabase, prepared, type Db, type SqliteDatabase } from '../brokers/sqlite/database.js';
import { parseSqliteUrl, type SqliteLocation } from '../brokers/sqlite/url.js';
import { sqliteBuckets } from '../brokers/sqlite/rate-limits.js';
import type { SharedBuckets } from '../brokers/types.js';
import { pendingMeta, type BackendContext, type ResultBackend, type ResultMeta, type WaitOptions } from './types.js';
import { onResultEvent, resultExpiresMs, waitForReady } from './memory.js';
import { encodeWith, readMeta, resultCodec, type ResultCodec } from './encode.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS celeriac_results (
  task_id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  meta TEXT NOT NULL,          -- the celery-task-meta document: JSON text, or a msgpack BLOB
  date_done INTEGER NOT NULL,  -- ms since epoch
  expires_at INTEGER           -- ms since epoch; NULL never expires
);
CREATE INDEX IF NOT EXISTS celeriac_results_expires ON celeriac_results (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS celeriac_groups (
  group_id TEXT PRIMARY KEY,
  meta TEXT NOT NULL,          -- {"result": <GroupResult tuple>} as the result serializer writes it
  expires_at INTEGER           -- ms since epoch; NULL never expires
);
`;

const CLEANUP_EVERY_MS = 60_000;

export class SqliteBackend implements ResultBackend {
  readonly displayUrl: string;
  private readonly location: SqliteLocation;
  private db: SqliteDatabase | null = null;
  private lastCleanup = 0;

  constructor(url: string, private readonly logger: Logger, private readonly expiresMs: number | null, private readonly codec: ResultCodec) {
    this.location = parseSqliteUrl(url);
    this.displayUrl = url;
  }

  private get database(): SqliteDatabase {
    if (!this.db) throw new Error(`Result backend ${this.displayUrl} is not connected: call connect() first`);
    return this.db;
  }

  /** global_rate_limit buckets in this database (when the broker has no store of its own). */
  async sharedBuckets(): Promise<SharedBuckets> {
    await this.connect();
    return sqliteBuckets(this.database.acquire(), this.displayUrl.replace(/\?.*$/, ''));
  }

  async connect(): Promise<void> {
    if (this.db) return;
    const db = await openDatabase(this.location);
    try {
      await db.ensureSchema('results', SCHEMA);
    } catch (err) {
      await db.release();
      throw err;
    }
    this.db = db;
    await this.cleanup();
  }

  async store(meta: ResultMeta): Promise<void> {
    const db = this.database;
    const now = Date.now();
    const expiresAt = this.expiresMs === null ? null : now + this.expiresMs;
    const encoded = encodeWith(this.codec, this.logger, meta);
    const text = encoded.encoded;
    const status = String(encoded.meta.status);
    // A stored SUCCESS is final (Celery ignores later states for a task that already succeeded).
    await db.write((d) =>
      prepared(d, 
        `INSERT INTO celeriac_results (task_id, status, meta, date_done, expires_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (task_id) DO UPDATE SET status = excluded.status, meta = excluded.meta,
           date_done = excluded.date_done, expires_at = excluded.expires_at
         WHERE celeriac_results.status <> 'SUCCESS'
            OR (celeriac_results.expires_at IS NOT NULL AND celeriac_results.expires_at <= excluded.date_done)`,
      ).run(meta.task_id, status, text, now, expiresAt),
    );
    db.events.emit('result', meta.task_id);
    if (now - this.lastCleanup > CLEANUP_EVERY_MS) void this.cleanup();
  }

  async get(taskId: string): Promise<ResultMeta> {
    const row = this.database.read((d) => selectLive(d, taskId, Date.now()));
    return row ? readMeta(row.meta, this.codec, taskId) : pendingMeta(taskId);
  }

  wait(taskId: string, opts: WaitOptions = {}): Promise<ResultMeta> {
    return waitForReady({
      taskId,
      opts,
      get: () => this.get(taskId),
      subscribe: onResultEvent(this.database.events, taskId),
      pollMs: { min: 20, max: 250 },
    });
  }

  async forget(taskId: string): Promise<void> {
    await this.database.write((d) => prepared(d, 'DELETE FROM celeriac_results WHERE task_id = ?').run(taskId));
  }

  /** GroupResult.save: the group's result tuple under its id. */
  async saveGroup(groupId: string, result: unknown): Promise<void> {
    const data = this.codec.serializer.encode({ result }, { tags: this.codec.tags });
    const expiresAt = this.expiresMs === null ? null : Date.now() + this.expiresMs;
    await this.database.write((d) => prepared(d, 'INSERT OR REPLACE INTO celeriac_groups (group_id, meta, expires_at) VALUES (?, ?, ?)').run(groupId, data, expiresAt));
  }

  async restoreGroup(groupId: string): Promise<unknown> {
    const row = this.database.read((d) => prepared(d, 'SELECT meta FROM celeriac_groups WHERE group_id = ? AND (expires_at IS NULL OR expires_at > ?)').get(groupId, Date.now())) as { meta: string | Buffer } | undefined;
    return row ? ((this.codec.serializer.decode(row.meta, { tags: this.codec.tags }) as { result?: unknown }).result ?? null) : null;
  }

  async deleteGroup(groupId: string): Promise<void> {
    await this.database.write((d) => prepared(d, 'DELETE FROM celeriac_groups WHERE group_id = ?').run(groupId));
  }

  /** Delete expired results (result_expires); returns how many. */
  async cleanup(): Promise<number> {
    this.lastCleanup = Date.now();
    try {
      return await this.database.write((d) => prepared(d, 'DELETE FROM celeriac_results WHERE expires_at IS NOT NULL AND expires_at <= ?').run(Date.now()).changes);
    } catch (err) {
      this.logger.warning(`Result backend ${this.displayUrl}: removing expired results failed: ${(err as Error).message}`);
      return 0;
    }
  }

  async close(): Promise<void> {
    if (!this.db) return;
    const db = this.db;
    this.db = null;
    await db.release();
  }
}

function selectLive(d: Db, taskId: string, now: number): { meta: string | Buffer } | undefined {
  return prepared(d, 'SELECT meta FROM celeriac_results WHERE task_id = ? AND (expires_at IS NULL OR expires_at > ?)').get(taskId, now) as { meta: string | Buffer } | undefined;
}

export function createBackend(url: string, ctx: BackendContext): ResultBackend {
  return new SqliteBackend(url, ctx.logger, resultExpiresMs(ctx.settings.result_expires), resultCodec(ctx.settings));
}
