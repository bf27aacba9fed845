// The celeriac_messages table: one row per message, claimed with a lease, acked with a fenced delete.
// Every function here runs inside a write transaction queued on SqliteDatabase (or is a plain read).
import { prepared as stmt, type Db } from './database.js';

export const MESSAGES_SCHEMA = `
CREATE TABLE IF NOT EXISTS celeriac_messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  queue TEXT NOT NULL,
  priority INTEGER NOT NULL DEFAULT 0,
  payload TEXT NOT NULL,               -- kombu virtual-transport envelope (JSON)
  lease_token TEXT,                    -- who holds it; NULL while it waits
  lease_expires INTEGER NOT NULL DEFAULT 0, -- ms since epoch; a row is visible once this has passed
  deliveries INTEGER NOT NULL DEFAULT 0,
  published_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS celeriac_messages_fetch ON celeriac_messages (queue, priority DESC, id);
`;

export interface ClaimedRow {
  id: number;
  queue: string;
  priority: number;
  payload: string;
  deliveries: number;
}

export function insertMessage(db: Db, queue: string, priority: number, payload: string, now: number): number {
  const r = stmt(db, 'INSERT INTO celeriac_messages (queue, priority, payload, published_at) VALUES (?, ?, ?, ?)').run(queue, priority, payload, now);
  return Number(r.lastInsertRowid);
}

/** Lease up to `limit` visible messages of one queue (highest priority first, then oldest). */
export function claimMessages(db: Db, queue: string, limit: number, token: string, now: number, leaseMs: number): ClaimedRow[] {
  const rows = stmt(
    db,
    `UPDATE celeriac_messages SET lease_token = ?, lease_expires = ?, deliveries = deliveries + 1
     WHERE id IN (SELECT id FROM celeriac_messages WHERE queue = ? AND lease_expires <= ? ORDER BY priority DESC, id LIMIT ?)
     RETURNING id, queue, priority, payload, deliveries`,
  ).all(token, now + leaseMs, queue, now, limit) as ClaimedRow[];
  // RETURNING gives no order guarantee.
  return rows.sort((a, b) => b.priority - a.priority || a.id - b.id);
}

/** Is there anything to claim? A plain read, so idle pollers never take the write lock. */
export function hasVisible(db: Db, queue: string, now: number): boolean {
  return stmt(db, 'SELECT 1 FROM celeriac_messages WHERE queue = ? AND lease_expires <= ? LIMIT 1').get(queue, now) !== undefined;
}

/** Extend a held lease. False when the lease is no longer ours (expired and taken, or deleted). */
export function renewLease(db: Db, id: number, token: string, expires: number): boolean {
  return stmt(db, 'UPDATE celeriac_messages SET lease_expires = ? WHERE id = ? AND lease_token = ?').run(expires, id, token).changes > 0;
}

/** Fenced ack: deletes the row only while we still hold its lease. */
export function deleteHeld(db: Db, id: number, token: string): boolean {
  return stmt(db, 'DELETE FROM celeriac_messages WHERE id = ? AND lease_token = ?').run(id, token).changes > 0;
}

/** Fenced release: the row becomes visible again at once, with the payload marked redelivered. */
export function releaseHeld(db: Db, id: number, token: string, payload: string): boolean {
  return stmt(db, 'UPDATE celeriac_messages SET lease_token = NULL, lease_expires = 0, payload = ? WHERE id = ? AND lease_token = ?').run(payload, id, token).changes > 0;
}

/** Messages waiting in the queue: not held under a live lease. */
export function countVisible(db: Db, queue: string, now: number): number {
  return (stmt(db, 'SELECT count(*) AS n FROM celeriac_messages WHERE queue = ? AND lease_expires <= ?').get(queue, now) as { n: number }).n;
}

/** The payloads of the next `limit` waiting messages, in fetch order, left in place. */
export function peekVisible(db: Db, queue: string, now: number, limit: number): string[] {
  return (stmt(db, 'SELECT payload FROM celeriac_messages WHERE queue = ? AND lease_expires <= ? ORDER BY priority DESC, id LIMIT ?').all(queue, now, limit) as { payload: string }[]).map((r) => r.payload);
}

/** Delete the waiting messages; held ones stay with their holders, as with kombu's purge. */
export function purgeVisible(db: Db, queue: string, now: number): number {
  return stmt(db, 'DELETE FROM celeriac_messages WHERE queue = ? AND lease_expires <= ?').run(queue, now).changes;
}
