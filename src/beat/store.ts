// Where beat keeps its lease, its entries and their last runs: the broker (Redis, SQLite), or the
// result backend for RabbitMQ deployments. Every beat process and `celeriac beat list|add|remove`
// open the same store, so they see one schedule.
import type { PublishItem } from '../brokers/types.js';
import type { Celeriac } from '../app/celeriac.js';
import { ImproperlyConfigured } from '../app/exceptions.js';
import type { EntryState, StoredEntry } from './entry.js';

/** The lease a leader holds: its owner id and the epoch that fences its sends. */
export interface LeaseToken {
  owner: string;
  epoch: number;
}

export interface LeaseState {
  /** Set when `owner` holds the lease (taken or renewed by this call). */
  token: LeaseToken | null;
  /** The current holder (this owner or another), or null when nobody holds it. */
  holder: LeaseToken | null;
  expiresInMs: number;
}

/** One due run: the state the leader read and the state after the run. */
export interface RunClaim {
  token: LeaseToken;
  name: string;
  expected: EntryState;
  next: EntryState;
  /** The run's task message; a store that is the broker writes it in the same atomic step. */
  publish: PublishItem;
}

/**
 * - sent: the state moved on and the message is in the broker, in one step;
 * - claimed: the state moved on; the caller must publish the message (and unclaim if it cannot);
 * - fenced: the token is not the lease's current one: nothing was written;
 * - changed: the entry was changed or removed meanwhile: nothing was written.
 */
export type RunOutcome = 'sent' | 'claimed' | 'fenced' | 'changed';

export interface BeatStore {
  /** For banners and errors, password masked: "redis://h:6379/0", "sqlite:///path". */
  readonly description: string;
  /** Take the lease, or renew it when `owner` holds it; lapses ttlMs after the last renewal. */
  lease(owner: string, ttlMs: number): Promise<LeaseState>;
  /** Give the lease up at once if `owner` holds it (a clean shutdown: no waiting for the lapse). */
  releaseLease(owner: string): Promise<void>;
  /** Who holds the lease, without taking it. */
  leaseHolder(): Promise<{ holder: LeaseToken; expiresInMs: number } | null>;
  /** Changes whenever an entry is added, changed or removed (not when one runs). */
  version(): Promise<string>;
  load(): Promise<StoredEntry[]>;
  /** Merge beat_schedule: write entries that differ, drop config entries no longer listed, keep every last run. */
  mergeConfig(entries: Map<string, string>, now: number): Promise<{ added: string[]; changed: string[]; removed: string[] }>;
  /** Add or replace one entry; a new one starts with lastRunAt = now. */
  upsert(name: string, encoded: string, now: number): Promise<void>;
  remove(name: string): Promise<boolean>;
  /** Record a due run, fenced by the lease token (see RunOutcome). */
  recordRun(claim: RunClaim): Promise<RunOutcome>;
  /** Undo a claimed run whose publish failed, so the next tick tries it again. */
  unclaim(claim: RunClaim): Promise<void>;
  close(): Promise<void>;
}

function scheme(url: string): string {
  return url.slice(0, Math.max(0, url.indexOf(':'))).toLowerCase();
}

const REDIS_SCHEMES = new Set(['redis', 'rediss', 'redis+socket', 'socket', 'unix', 'sentinel']);

/**
 * The store for an app: in the broker when it is Redis, SQLite or memory; in the result backend
 * (Redis or SQLite) when the broker is RabbitMQ.
 */
export async function openStore(app: Celeriac): Promise<BeatStore> {
  const conf = app.conf;
  const broker = app.brokerUrl;
  const kind = scheme(broker);
  if (REDIS_SCHEMES.has(kind)) {
    const { RedisBeatStore } = await import('./redis-store.js');
    return new RedisBeatStore(broker, conf.broker_transport_options ?? {}, conf.broker_use_ssl, 'broker', conf);
  }
  if (kind === 'sqlite') {
    const { SqliteBeatStore } = await import('./sqlite-store.js');
    return new SqliteBeatStore(broker, true);
  }
  if (kind === 'memory') {
    const { memoryStoreFor } = await import('./memory-store.js');
    return memoryStoreFor(app);
  }
  const backend = app.backendUrl;
  const bkind = backend ? scheme(backend) : '';
  if (REDIS_SCHEMES.has(bkind)) {
    const { RedisBeatStore } = await import('./redis-store.js');
    return new RedisBeatStore(backend!, conf.result_backend_transport_options ?? {}, conf.redis_backend_use_ssl, 'backend', conf);
  }
  if (bkind === 'sqlite') {
    const { SqliteBeatStore } = await import('./sqlite-store.js');
    return new SqliteBeatStore(backend!, false);
  }
  throw new ImproperlyConfigured(
    `beat keeps its schedule and lease in the broker (Redis or SQLite) or, with a ${kind}:// broker, in the result backend, ` +
      `which must then be Redis or SQLite (result_backend is ${backend ? `${bkind}://…` : 'not set'}). Set result_backend = 'redis://host:6379/1' (or sqlite:///beat.db).`,
  );
}
