// Beat's store for memory:// apps (one process): the same rules as the Redis and SQLite stores, in
// maps shared by everything in the process that uses the same app.
import type { Celeriac } from '../app/celeriac.js';
import { CONFIG_PREFIX, type EntryState, type StoredEntry } from './entry.js';
import type { BeatStore, LeaseState, LeaseToken, RunClaim, RunOutcome } from './store.js';

export interface MemoryBeatState {
  entries: Map<string, { encoded: string; state: EntryState }>;
  lease: { owner: string; epoch: number; expiresAt: number } | null;
  epoch: number;
  version: number;
}

const byApp = new WeakMap<Celeriac, MemoryBeatState>();

export class MemoryBeatStore implements BeatStore {
  readonly description = 'memory:// (this process)';

  /** `now` is the lease clock (tests pass the fake clock their beat runs on). */
  constructor(private readonly s: MemoryBeatState = newMemoryState(), private readonly now: () => number = Date.now) {}

  async lease(owner: string, ttlMs: number): Promise<LeaseState> {
    const now = this.now();
    const l = this.s.lease;
    if (l && l.owner !== owner && l.expiresAt > now) return { token: null, holder: { owner: l.owner, epoch: l.epoch }, expiresInMs: l.expiresAt - now };
    const epoch = l && l.owner === owner ? l.epoch : ++this.s.epoch;
    this.s.lease = { owner, epoch, expiresAt: now + ttlMs };
    return { token: { owner, epoch }, holder: { owner, epoch }, expiresInMs: ttlMs };
  }

  async releaseLease(owner: string): Promise<void> {
    if (this.s.lease?.owner === owner) this.s.lease = null;
  }

  async leaseHolder(): Promise<{ holder: LeaseToken; expiresInMs: number } | null> {
    const l = this.s.lease;
    const left = l ? l.expiresAt - this.now() : 0;
    return l && left > 0 ? { holder: { owner: l.owner, epoch: l.epoch }, expiresInMs: left } : null;
  }

  async version(): Promise<string> {
    return String(this.s.version);
  }

  async load(): Promise<StoredEntry[]> {
    return [...this.s.entries].map(([name, e]) => ({ name, encoded: e.encoded, state: { ...e.state } }));
  }

  async mergeConfig(entries: Map<string, string>, now: number): Promise<{ added: string[]; changed: string[]; removed: string[] }> {
    const out = { added: [] as string[], changed: [] as string[], removed: [] as string[] };
    for (const [name, e] of this.s.entries) {
      if (!entries.has(name) && e.encoded.startsWith(CONFIG_PREFIX)) {
        this.s.entries.delete(name);
        out.removed.push(name);
      }
    }
    for (const [name, encoded] of entries) {
      const what = this.put(name, encoded, now);
      if (what !== 'same') out[what].push(name);
    }
    if (out.added.length + out.changed.length + out.removed.length > 0) this.s.version++;
    return out;
  }

  private put(name: string, encoded: string, now: number): 'added' | 'changed' | 'same' {
    const old = this.s.entries.get(name);
    if (old?.encoded === encoded) return 'same';
    this.s.entries.set(name, { encoded, state: old?.state ?? { lastRunAt: Math.round(now), totalRunCount: 0 } });
    return old ? 'changed' : 'added';
  }

  async upsert(name: string, encoded: string, now: number): Promise<void> {
    if (this.put(name, encoded, now) !== 'same') this.s.version++;
  }

  async remove(name: string): Promise<boolean> {
    const gone = this.s.entries.delete(name);
    if (gone) this.s.version++;
    return gone;
  }

  async recordRun(claim: RunClaim): Promise<RunOutcome> {
    return this.record(claim, claim.expected, claim.next);
  }

  async unclaim(claim: RunClaim): Promise<void> {
    this.record(claim, claim.next, claim.expected);
  }

  private record(claim: RunClaim, from: EntryState, to: EntryState): RunOutcome {
    const l = this.s.lease;
    if (!l || l.owner !== claim.token.owner || l.epoch !== claim.token.epoch) return 'fenced';
    const e = this.s.entries.get(claim.name);
    if (!e) return 'changed';
    const same = (a: EntryState, b: EntryState) => a.lastRunAt === Math.round(b.lastRunAt) && a.totalRunCount === b.totalRunCount;
    if (same(e.state, to)) return 'claimed';
    if (!same(e.state, from)) return 'changed';
    e.state = { lastRunAt: Math.round(to.lastRunAt), totalRunCount: to.totalRunCount };
    return 'claimed';
  }

  async close(): Promise<void> {}
}

export function newMemoryState(): MemoryBeatState {
  return { entries: new Map(), lease: null, epoch: 0, version: 0 };
}

/** The store of a memory:// app: one per app object, shared by its beat and app.beat. */
export function memoryStoreFor(app: Celeriac): MemoryBeatStore {
  let s = byApp.get(app);
  if (!s) byApp.set(app, (s = newMemoryState()));
  return new MemoryBeatStore(s);
}
