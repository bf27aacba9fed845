// app.beat: change the schedule at runtime. Entries go to the same store every beat process reads,
// so each of them sees a change at its next tick.
import type { Celeriac } from '../app/celeriac.js';
import { decodeEntry, defineEntry, encodeEntry, nextRun, type BeatEntryInput, type EntrySource } from './entry.js';
import type { ScheduleSpec } from './schedule.js';
import type { BeatStore } from './store.js';
import { zoneFor, zoneName } from './tz.js';

/** One entry as app.beat.list() and `celeriac beat list` show it. */
export interface BeatEntryInfo {
  name: string;
  task: string;
  /** Celery's repr: "<freq: 30.00 seconds>", "<crontab: 0 4 * * * (m/h/dM/MY/d)>", "<solar: sunrise at …>". */
  schedule: string;
  spec: ScheduleSpec;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: Record<string, unknown>;
  /** 'config' (beat_schedule, merged at each beat start) or 'runtime' (upsert, `celeriac beat add`). */
  source: EntrySource;
  /** The due time of the last run sent (or when the entry was added). */
  lastRunAt: Date;
  totalRunCount: number;
  /** When the next run is due, in the app's timezone rules; null if never. */
  nextRunAt: Date | null;
}

export interface BeatLeader {
  /** The leader's id: host:pid:random. */
  id: string;
  /** Its fencing token; a new leader gets a higher one. */
  epoch: number;
  expiresInMs: number;
}

export class BeatSchedule {
  private store: Promise<BeatStore> | undefined;

  constructor(private readonly app: Celeriac) {}

  private open(): Promise<BeatStore> {
    return (this.store ??= import('./store.js').then((m) => m.openStore(this.app)).catch((err) => {
      this.store = undefined;
      throw err;
    }));
  }

  /** Add or replace an entry (Celery's beat_schedule format); its last run is kept when it exists. */
  async upsert(name: string, entry: BeatEntryInput): Promise<void> {
    const encoded = encodeEntry('runtime', defineEntry(name, entry));
    await (await this.open()).upsert(name, encoded, Date.now());
  }

  /** Remove an entry; resolves to false when there was none by that name. */
  async remove(name: string): Promise<boolean> {
    return (await this.open()).remove(name);
  }

  /** Every entry in the store, by name. */
  async list(): Promise<BeatEntryInfo[]> {
    const zone = zoneFor(zoneName(this.app.conf.timezone, this.app.conf.enable_utc));
    const out: BeatEntryInfo[] = [];
    for (const stored of await (await this.open()).load()) {
      const e = decodeEntry(stored);
      const next = nextRun(e, zone);
      out.push({
        name: e.name, task: e.definition.task, schedule: e.schedule.toString(), spec: e.definition.schedule,
        args: e.definition.args, kwargs: e.definition.kwargs, options: e.definition.options, source: e.source,
        lastRunAt: new Date(e.state.lastRunAt), totalRunCount: e.state.totalRunCount, nextRunAt: next === null ? null : new Date(next),
      });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** The beat process that sends due tasks now, or null when none holds the lease. */
  async leader(): Promise<BeatLeader | null> {
    const l = await (await this.open()).leaseHolder();
    return l ? { id: l.holder.owner, epoch: l.holder.epoch, expiresInMs: l.expiresInMs } : null;
  }

  async close(): Promise<void> {
    const s = this.store;
    this.store = undefined;
    await (await s?.catch(() => undefined))?.close();
  }
}
