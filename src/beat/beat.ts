// The beat service (Celery's beat.Service + Scheduler): any number may run; the one holding the lease
// sends due runs as ordinary task messages, each recorded in the store with the lease token, so a
// beat that lost the lease (paused, partitioned) cannot send.
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Celeriac } from '../app/celeriac.js';
import type { Logger } from '../app/log.js';
import { withRetries } from '../backends/retry.js';
import type { PublishItem } from '../brokers/types.js';
import { decodeEntry, defineEntry, dueRun, encodeEntry, nextRun, type BeatEntryInput, type EntryState, type ScheduleEntry } from './entry.js';
import { openStore, type BeatStore, type LeaseToken, type RunClaim } from './store.js';
import { zoneFor, zoneName, type Zone } from './tz.js';

/** Celery's DEFAULT_MAX_INTERVAL. */
const DEFAULT_MAX_INTERVAL_S = 300;
export const DEFAULT_LEASE_TIMEOUT_S = 5;
/** The holder renews (and the others try to take over) this many times per lease. */
const RENEWALS_PER_LEASE = 5;

export interface BeatOptions {
  /** Seconds: the longest sleep between ticks (Celery's --max-interval; default beat_max_loop_interval). */
  maxInterval?: number;
  /** Seconds a leader's lease lasts without renewal (default beat_lease_timeout, 5). */
  leaseTimeout?: number;
  logger?: Logger;
  /** The store (default: the app's, see store.ts). */
  store?: BeatStore;
  /** The clock, ms since the epoch (tests pass a fake one). */
  now?: () => number;
  /** This process's id in the lease (default host:pid:random). */
  id?: string;
}

/** What a sent run was, for listeners ('sent' event) and tests. */
export interface SentRun {
  name: string;
  task: string;
  id: string;
  dueAt: Date;
}

export class Beat extends EventEmitter {
  readonly id: string;
  readonly leaseMs: number;
  readonly tickMs: number;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly zone: Zone;
  private store: BeatStore | undefined;
  private entries = new Map<string, ScheduleEntry>();
  private version: string | null = null;
  private token: LeaseToken | null = null;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<unknown> | undefined;
  /** A send failed this tick: sleep a whole tick before trying again instead of spinning on it. */
  private sendFailed = false;
  /** Stored entries that could not be read, reported once each. */
  private readonly unreadable = new Set<string>();
  /** An entry changed under a send: reload at the next tick whatever the version says. */
  private reloadNeeded = false;

  constructor(readonly app: Celeriac, private readonly options: BeatOptions = {}) {
    super();
    const conf = app.conf;
    this.id = options.id ?? `${hostname().replace(/\s+/g, '_')}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.leaseMs = seconds(options.leaseTimeout ?? conf.beat_lease_timeout, DEFAULT_LEASE_TIMEOUT_S, 'beat_lease_timeout') * 1000;
    const maxInterval = seconds(options.maxInterval ?? (conf.beat_max_loop_interval || undefined), DEFAULT_MAX_INTERVAL_S, 'beat_max_loop_interval');
    this.tickMs = Math.min(maxInterval * 1000, this.leaseMs / RENEWALS_PER_LEASE);
    this.logger = options.logger ?? app.logger;
    this.now = options.now ?? Date.now;
    this.zone = zoneFor(zoneName(conf.timezone, conf.enable_utc));
  }

  get isLeader(): boolean {
    return this.token !== null;
  }

  get timezone(): string {
    return this.zone.name;
  }

  get storeDescription(): string {
    return this.store?.description ?? '(not open)';
  }

  /** Open the store and merge beat_schedule into it (without starting the loop). */
  async prepare(): Promise<void> {
    if (this.store) return;
    const config = new Map<string, string>();
    for (const [name, input] of Object.entries(this.app.conf.beat_schedule ?? {})) {
      config.set(name, encodeEntry('config', defineEntry(name, input as BeatEntryInput)));
    }
    const store = this.options.store ?? (await openStore(this.app));
    const merged = await store.mergeConfig(config, this.now());
    this.store = store;
    const changes = describeChanges(merged);
    if (changes) this.logger.info(`beat: beat_schedule merged into ${store.description}: ${changes}`);
  }

  /** Start ticking: prepare, then one tick after another until close(). */
  async start(): Promise<void> {
    await this.prepare();
    if (this.running) return;
    this.running = true;
    this.logger.info(`beat: Starting... (id ${this.id}, lease ${this.leaseMs / 1000}s, tick ${this.tickMs / 1000}s, timezone ${this.zone.name})`);
    this.loop();
  }

  private loop(): void {
    if (!this.running) return;
    const t = this.tick().catch((err: Error) => {
      this.logger.error(`beat: tick failed (retrying in ${this.tickMs / 1000}s): ${err.message}`);
      return this.tickMs;
    });
    this.ticking = t;
    void t.then((ms) => {
      if (this.running) this.timer = setTimeout(() => this.loop(), ms);
    });
  }

  /**
   * One pass: see schedule changes, send due runs with the lease we hold (the store refuses them when
   * the lease moved on), renew or take the lease. Returns how long to sleep, in ms.
   */
  async tick(): Promise<number> {
    await this.prepare();
    await this.refresh(false);
    if (this.token) await this.sendDue();
    const before = this.token;
    const lease = await this.store!.lease(this.id, this.leaseMs);
    this.token = lease.token;
    if (this.token && (!before || before.epoch !== this.token.epoch)) {
      this.logger.info(`beat: ${this.id} is the leader now (lease epoch ${this.token.epoch}); it sends the due tasks`);
      this.emit('leader', this.token);
      await this.refresh(true);
      await this.sendDue();
    } else if (!this.token && before) {
      this.logger.warning(`beat: ${this.id} lost the lease to ${lease.holder ? `${lease.holder.owner} (epoch ${lease.holder.epoch})` : 'nobody'}; standing by`);
      this.emit('standby', lease.holder);
    }
    return this.sleepMs();
  }

  private sleepMs(): number {
    let ms = this.tickMs;
    if (!this.token || this.sendFailed) return ms;
    const now = this.now();
    for (const e of this.entries.values()) {
      const n = nextRun(e, this.zone);
      if (n !== null) ms = Math.min(ms, Math.max(0, n - now));
    }
    return ms;
  }

  /** Reload the entries when the store's version moved (or always, with force), and log what changed. */
  private async refresh(force: boolean): Promise<void> {
    const store = this.store!;
    const version = await store.version();
    if (!force && !this.reloadNeeded && version === this.version) return;
    this.reloadNeeded = false;
    const next = new Map<string, ScheduleEntry>();
    for (const stored of await store.load()) {
      try {
        next.set(stored.name, decodeEntry(stored));
      } catch (err) {
        const key = `${stored.name}\u0000${stored.encoded}`;
        if (!this.unreadable.has(key)) this.logger.error(`beat: skipping entry ${JSON.stringify(stored.name)}: ${(err as Error).message}`);
        this.unreadable.add(key);
      }
    }
    const first = this.version === null;
    this.version = version;
    const changes = {
      added: [...next.keys()].filter((n) => !this.entries.has(n)),
      changed: [...next.keys()].filter((n) => this.entries.has(n) && this.entries.get(n)!.encoded !== next.get(n)!.encoded),
      removed: [...this.entries.keys()].filter((n) => !next.has(n)),
    };
    this.entries = next;
    const text = describeChanges(changes);
    if (first) this.logger.info(`beat: ${next.size} entr${next.size === 1 ? 'y' : 'ies'} in the schedule (version ${version})`);
    else if (text) {
      this.logger.info(`beat: schedule changed (version ${version}): ${text}`);
      this.emit('changed', changes);
    }
  }

  private async sendDue(): Promise<void> {
    this.sendFailed = false;
    const now = this.now();
    const due: [ScheduleEntry, number][] = [];
    for (const e of this.entries.values()) {
      const at = dueRun(e, now, this.zone);
      if (at !== null) due.push([e, at]);
    }
    due.sort((a, b) => a[1] - b[1]);
    for (const [entry, at] of due) {
      if (!this.token) return;
      await this.send(entry, at);
    }
  }

  /** Record and send one due run; `dueAt` becomes the entry's last run. */
  private async send(entry: ScheduleEntry, dueAt: number): Promise<void> {
    const store = this.store!;
    const { task } = entry.definition;
    const next: EntryState = { lastRunAt: dueAt, totalRunCount: entry.state.totalRunCount + 1 };
    const run = this.buildRun(entry, dueAt);
    const claim: RunClaim = { token: this.token!, name: entry.name, expected: entry.state, next, publish: run };
    const policy = this.app.conf.task_publish_retry_policy;
    try {
      // Safe to resend: the store reports a run it already recorded and writes nothing twice.
      const outcome = await withRetries(policy, `recording the run of beat entry ${entry.name}`, () => store.recordRun(claim));
      if (outcome === 'fenced') {
        this.logger.warning(`beat: not sending ${entry.name}: lease epoch ${claim.token.epoch} is no longer the current one (this beat was paused or cut off past its lease, which lapsed or went to another beat)`);
        this.token = null;
        this.emit('fenced', { name: entry.name, epoch: claim.token.epoch });
        return;
      }
      if (outcome === 'changed') {
        this.logger.info(`beat: ${entry.name} changed while it was due; reloading the schedule`);
        this.reloadNeeded = true;
        return;
      }
      this.logger.info(`Scheduler: Sending due task ${entry.name} (${task})`);
      if (outcome === 'claimed') {
        try {
          await this.app.publish(await this.app.broker(), run.message, run.target);
        } catch (err) {
          await store.unclaim(claim).catch(() => undefined);
          throw err;
        }
      }
    } catch (err) {
      this.logger.error(`Message Error: Couldn't apply scheduled task ${entry.name}: ${(err as Error).message}`);
      this.sendFailed = true;
      return;
    }
    entry.state = next;
    this.logger.debug(`${task} sent. id->${run.id}`);
    this.emit('sent', { name: entry.name, task, id: run.id, dueAt: new Date(dueAt) } satisfies SentRun);
  }

  /** The run's task message, built as app.sendTask builds one, with the entry's name and due time in its headers. */
  private buildRun(entry: ScheduleEntry, dueAt: number): PublishItem & { id: string } {
    const { task, args, kwargs, options } = entry.definition;
    const headers = { ...((options.headers as Record<string, unknown> | undefined) ?? {}), periodic_task_name: entry.name, periodic_task_due_at: new Date(dueAt).toISOString() };
    const built = this.app.buildMessage(task, args, kwargs, { ...options, headers }, this.app.oid);
    return { id: built.id, message: built.message, target: { exchange: built.exchange, routingKey: built.routingKey } };
  }

  /** Stop ticking; give the lease up so another beat takes over at its next tick. */
  async close(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.ticking?.catch(() => undefined);
    const store = this.store;
    this.store = undefined;
    if (!store) return;
    if (this.token) await store.releaseLease(this.id).catch(() => undefined);
    this.token = null;
    if (!this.options.store) await store.close();
  }
}

function seconds(v: unknown, fallback: number, setting: string): number {
  if (v === undefined || v === null) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new RangeError(`${setting} must be a number of seconds above 0, got ${JSON.stringify(v)}`);
  return n;
}

function describeChanges(c: { added: string[]; changed: string[]; removed: string[] }): string {
  const parts: string[] = [];
  if (c.added.length) parts.push(`added ${c.added.join(', ')}`);
  if (c.changed.length) parts.push(`changed ${c.changed.join(', ')}`);
  if (c.removed.length) parts.push(`removed ${c.removed.join(', ')}`);
  return parts.join('; ');
}
