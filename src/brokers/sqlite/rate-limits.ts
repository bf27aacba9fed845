// Shared token buckets for global (all workers) rate limits in the embedded database: one row per task
// name holding the time (ms) the next token is free, updated inside the write transaction so every
// process on the file sees one bucket.
import { prepared, type SqliteDatabase } from './database.js';
import type { SharedBuckets } from '../types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS celeriac_rate_limits (
  name TEXT PRIMARY KEY,
  next_free_ms REAL NOT NULL
);
`;

/** Take a token from the bucket of `name`: 0 when taken, else the ms to wait before asking again. */
export async function takeSharedToken(db: SqliteDatabase, name: string, intervalMs: number, capacity: number): Promise<number> {
  await db.ensureSchema('rate_limits', SCHEMA);
  return db.write((d) => {
    const now = Date.now();
    const row = prepared(d, 'SELECT next_free_ms FROM celeriac_rate_limits WHERE name = ?').get(name) as { next_free_ms: number } | undefined;
    const tat = Math.max(row?.next_free_ms ?? 0, now);
    const allowedAt = tat - (capacity - 1) * intervalMs;
    if (allowedAt > now) return Math.max(1, Math.ceil(allowedAt - now));
    prepared(d, 'INSERT INTO celeriac_rate_limits (name, next_free_ms) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET next_free_ms = excluded.next_free_ms').run(name, tat + intervalMs);
    return 0;
  });
}

/** The shared-bucket capability of the embedded database (Broker.sharedBuckets, ResultBackend.sharedBuckets). */
export function sqliteBuckets(db: SqliteDatabase, where: string): SharedBuckets {
  return {
    where,
    take: (name, intervalMs, capacity) => takeSharedToken(db, name, intervalMs, capacity),
    close: () => db.release(),
  };
}
