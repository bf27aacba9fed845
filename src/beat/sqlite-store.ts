// Beat's store in the embedded SQLite file: three small tables; every change is one write
// transaction. When the file is the broker, a due run's message is inserted by the transaction that
// records the run.
import { openDatabase, prepared, type Db, type SqliteDatabase } from '../brokers/sqlite/database.js';
import { insertMessage, MESSAGES_SCHEMA } from '../brokers/sqlite/messages.js';
import { parseSqliteUrl } from '../brokers/sqlite/url.js';
import { encodeEnvelope } from '../protocol/envelope.js';
import { CONFIG_PREFIX, type EntryState, type StoredEntry } from './entry.js';
import type { BeatStore, LeaseState, LeaseToken, RunClaim, RunOutcome } from './store.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS celeriac_beat_entries (
  name TEXT PRIMARY KEY,
  entry TEXT NOT NULL,                 -- the entry as JSON (source, task, schedule, args, kwargs, options)
  last_run_at INTEGER NOT NULL,        -- ms since epoch: the due time of the last run sent
  total_run_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS celeriac_beat_lease (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  owner TEXT NOT NULL,
  epoch INTEGER NOT NULL,              -- fencing token: a new one for every new holder
  expires_at INTEGER NOT NULL          -- ms since epoch (the processes share one machine's clock)
);
CREATE TABLE IF NOT EXISTS celeriac_beat_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
`;

interface LeaseRow {
  owner: string;
  epoch: number;
  expires_at: number;
}

interface EntryRow {
  name: string;
  entry: string;
  last_run_at: number;
  total_run_count: number;
}

function bump(d: Db, key: 'epoch' | 'version'): number {
  const row = prepared(d, 'INSERT INTO celeriac_beat_meta (key, value) VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET value = value + 1 RETURNING value').get(key) as { value: number };
  return row.value;
}

function leaseRow(d: Db): LeaseRow | undefined {
  return prepared(d, 'SELECT owner, epoch, expires_at FROM celeriac_beat_lease WHERE id = 1').get() as LeaseRow | undefined;
}

function entryRow(d: Db, name: string): EntryRow | undefined {
  return prepared(d, 'SELECT name, entry, last_run_at, total_run_count FROM celeriac_beat_entries WHERE name = ?').get(name) as EntryRow | undefined;
}

function insertEntry(d: Db, name: string, encoded: string, now: number): 'added' | 'changed' | 'same' {
  const old = entryRow(d, name);
  if (old?.entry === encoded) return 'same';
  if (old) prepared(d, 'UPDATE celeriac_beat_entries SET entry = ? WHERE name = ?').run(encoded, name);
  else prepared(d, 'INSERT INTO celeriac_beat_entries (name, entry, last_run_at, total_run_count) VALUES (?, ?, ?, 0)').run(name, encoded, Math.round(now));
  return old ? 'changed' : 'added';
}

const sameState = (row: EntryRow, s: EntryState) => row.last_run_at === Math.round(s.lastRunAt) && row.total_run_count === s.totalRunCount;

export class SqliteBeatStore implements BeatStore {
  readonly description: string;
  private db: Promise<SqliteDatabase> | undefined;

  /** `sharesBroker`: the file is the broker's, so due runs are inserted into its queue table atomically. */
  constructor(private readonly url: string, private readonly sharesBroker: boolean) {
    this.description = `${url} (tables celeriac_beat_*)`;
  }

  private database(): Promise<SqliteDatabase> {
    return (this.db ??= (async () => {
      const db = await openDatabase(parseSqliteUrl(this.url));
      try {
        await db.ensureSchema('beat', SCHEMA);
        if (this.sharesBroker) await db.ensureSchema('messages', MESSAGES_SCHEMA);
      } catch (err) {
        await db.release();
        throw err;
      }
      return db;
    })().catch((err) => {
      this.db = undefined;
      throw err;
    }));
  }

  private async write<T>(run: (d: Db) => T): Promise<T> {
    return (await this.database()).write(run);
  }

  private async read<T>(run: (d: Db) => T): Promise<T> {
    return (await this.database()).read(run);
  }

  lease(owner: string, ttlMs: number): Promise<LeaseState> {
    return this.write((d) => {
      const now = Date.now();
      const row = leaseRow(d);
      if (row && row.owner === owner) {
        prepared(d, 'UPDATE celeriac_beat_lease SET expires_at = ? WHERE id = 1').run(now + ttlMs);
        const token = { owner, epoch: row.epoch };
        return { token, holder: token, expiresInMs: ttlMs };
      }
      if (row && row.expires_at > now) return { token: null, holder: { owner: row.owner, epoch: row.epoch }, expiresInMs: row.expires_at - now };
      const token = { owner, epoch: bump(d, 'epoch') };
      prepared(d, 'INSERT OR REPLACE INTO celeriac_beat_lease (id, owner, epoch, expires_at) VALUES (1, ?, ?, ?)').run(owner, token.epoch, now + ttlMs);
      return { token, holder: token, expiresInMs: ttlMs };
    });
  }

  async releaseLease(owner: string): Promise<void> {
    await this.write((d) => prepared(d, 'DELETE FROM celeriac_beat_lease WHERE id = 1 AND owner = ?').run(owner));
  }

  leaseHolder(): Promise<{ holder: LeaseToken; expiresInMs: number } | null> {
    return this.read((d) => {
      const row = leaseRow(d);
      const left = row ? row.expires_at - Date.now() : 0;
      return row && left > 0 ? { holder: { owner: row.owner, epoch: row.epoch }, expiresInMs: left } : null;
    });
  }

  version(): Promise<string> {
    return this.read((d) => String((prepared(d, "SELECT value FROM celeriac_beat_meta WHERE key = 'version'").get() as { value: number } | undefined)?.value ?? 0));
  }

  load(): Promise<StoredEntry[]> {
    return this.read((d) => (prepared(d, 'SELECT name, entry, last_run_at, total_run_count FROM celeriac_beat_entries').all() as EntryRow[])
      .map((r) => ({ name: r.name, encoded: r.entry, state: { lastRunAt: r.last_run_at, totalRunCount: r.total_run_count } })));
  }

  mergeConfig(entries: Map<string, string>, now: number): Promise<{ added: string[]; changed: string[]; removed: string[] }> {
    return this.write((d) => {
      const out = { added: [] as string[], changed: [] as string[], removed: [] as string[] };
      for (const r of prepared(d, 'SELECT name, entry FROM celeriac_beat_entries').all() as EntryRow[]) {
        if (!entries.has(r.name) && r.entry.startsWith(CONFIG_PREFIX)) {
          prepared(d, 'DELETE FROM celeriac_beat_entries WHERE name = ?').run(r.name);
          out.removed.push(r.name);
        }
      }
      for (const [name, encoded] of entries) {
        const what = insertEntry(d, name, encoded, now);
        if (what !== 'same') out[what].push(name);
      }
      if (out.added.length + out.changed.length + out.removed.length > 0) bump(d, 'version');
      return out;
    });
  }

  async upsert(name: string, encoded: string, now: number): Promise<void> {
    await this.write((d) => {
      if (insertEntry(d, name, encoded, now) !== 'same') bump(d, 'version');
    });
  }

  remove(name: string): Promise<boolean> {
    return this.write((d) => {
      const gone = prepared(d, 'DELETE FROM celeriac_beat_entries WHERE name = ?').run(name).changes > 0;
      if (gone) bump(d, 'version');
      return gone;
    });
  }

  async recordRun(claim: RunClaim): Promise<RunOutcome> {
    const { message, target } = claim.publish;
    const queue = target.routingKey;
    const payload = this.sharesBroker ? encodeEnvelope(message, { exchange: target.exchange, routing_key: target.routingKey }) : null;
    const outcome = await this.record(claim, claim.expected, claim.next, (d, now) => {
      if (payload !== null) insertMessage(d, queue, Number(message.properties.priority ?? 0) || 0, payload, now);
    });
    if (outcome === 'sent') (await this.database()).events.emit('publish', queue);
    return outcome;
  }

  async unclaim(claim: RunClaim): Promise<void> {
    await this.record(claim, claim.next, claim.expected, () => undefined);
  }

  private record(claim: RunClaim, from: EntryState, to: EntryState, send: (d: Db, now: number) => void): Promise<RunOutcome> {
    const done: RunOutcome = this.sharesBroker ? 'sent' : 'claimed';
    return this.write((d) => {
      const lease = leaseRow(d);
      if (!lease || lease.owner !== claim.token.owner || lease.epoch !== claim.token.epoch) return 'fenced';
      const row = entryRow(d, claim.name);
      if (!row) return 'changed';
      if (sameState(row, to)) return done;
      if (!sameState(row, from)) return 'changed';
      prepared(d, 'UPDATE celeriac_beat_entries SET last_run_at = ?, total_run_count = ? WHERE name = ?').run(Math.round(to.lastRunAt), to.totalRunCount, claim.name);
      send(d, Date.now());
      return done;
    });
  }

  async close(): Promise<void> {
    const db = this.db;
    this.db = undefined;
    await (await db?.catch(() => undefined))?.release();
  }
}
