// The revoked-ids set: bounded and expiring like Celery's LimitedSet, optionally persisted (--statedb).
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import type { Logger } from '../app/log.js';

const MAX = Number(process.env.CELERY_WORKER_REVOKES_MAX ?? 50_000);
const EXPIRES_S = Number(process.env.CELERY_WORKER_REVOKE_EXPIRES ?? 10_800);

export class RevokedSet {
  /** id → revoke time in unix seconds, in insertion order. */
  private readonly ids = new Map<string, number>();
  private saveTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly statedb: string | null = null,
    private readonly logger?: Logger,
    private readonly maxlen = MAX,
    private readonly expires = EXPIRES_S,
  ) {
    if (statedb) this.load();
  }

  private load(): void {
    let text: string;
    try {
      text = readFileSync(this.statedb!, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // first run
      throw new Error(`Cannot read the revoked task ids from --statedb ${this.statedb} (worker_state_db): ${(err as Error).message}. Make the file readable, or point --statedb elsewhere.`);
    }
    let revoked: unknown;
    try {
      revoked = (JSON.parse(text) as { revoked?: unknown } | null)?.revoked ?? {};
      if (typeof revoked !== 'object' || revoked === null || Array.isArray(revoked)) throw new Error('"revoked" is not an object of id: time');
    } catch (err) {
      throw new Error(
        `The --statedb file ${this.statedb} (worker_state_db) is not a Celeriac state file: ${(err as Error).message}. ` +
          'Move it aside (the revoked ids it kept are then forgotten) or point --statedb elsewhere.',
      );
    }
    const now = Date.now() / 1000;
    for (const [id, ts] of Object.entries(revoked as Record<string, unknown>)) if (typeof ts === 'number' && now - ts < this.expires) this.ids.set(id, ts);
  }

  has(id: string): boolean {
    const ts = this.ids.get(id);
    if (ts === undefined) return false;
    if (Date.now() / 1000 - ts >= this.expires) {
      this.ids.delete(id);
      return false;
    }
    return true;
  }

  add(id: string): void {
    this.ids.delete(id);
    this.ids.set(id, Date.now() / 1000);
    while (this.ids.size > this.maxlen) this.ids.delete(this.ids.keys().next().value as string);
    this.scheduleSave();
  }

  get size(): number {
    return this.ids.size;
  }

  list(): string[] {
    return [...this.ids.keys()].filter((id) => this.has(id));
  }

  /** The unexpired ids with their revoke times (what Celery's LimitedSet sends as `_data`). */
  entries(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const id of this.list()) out[id] = this.ids.get(id)!;
    return out;
  }

  /**
   * Take in another worker's revoked ids (mingle's `hello`): a dict of id → revoke time. A Celeriac
   * worker sends unix seconds; Celery sends [time.monotonic(), id] (LimitedSet's heap entry), a clock
   * of its own host, so a time that is not a recent unix time counts as now. Returns how many were taken.
   */
  merge(entries: unknown): number {
    if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) return 0;
    const now = Date.now() / 1000;
    let taken = 0;
    for (const [id, raw] of Object.entries(entries as Record<string, unknown>)) {
      const given = Number(Array.isArray(raw) ? raw[0] : raw);
      if (!Number.isFinite(given)) continue;
      const ts = given > now - this.expires && given <= now + 60 ? given : now;
      if ((this.ids.get(id) ?? -Infinity) >= ts) continue;
      this.ids.delete(id);
      this.ids.set(id, ts);
      taken++;
    }
    while (this.ids.size > this.maxlen) this.ids.delete(this.ids.keys().next().value as string);
    if (taken) this.scheduleSave();
    return taken;
  }

  private scheduleSave(): void {
    if (!this.statedb || this.saveTimer) return;
    this.saveTimer = setTimeout(() => this.save(), 100);
    this.saveTimer.unref();
  }

  /** Write the state file now (atomically: temp file + rename); a failure is logged, never thrown. */
  save(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
    if (!this.statedb) return;
    const tmp = `${this.statedb}.tmp-${process.pid}`;
    try {
      writeFileSync(tmp, JSON.stringify({ revoked: Object.fromEntries(this.ids) }));
      renameSync(tmp, this.statedb);
    } catch (err) {
      const line = `Could not save the revoked task ids to --statedb ${this.statedb} (worker_state_db): ${(err as Error).message}. ` +
        'They still apply in this worker but a restart forgets them; make the directory writable (it is saved again at the next revoke and at shutdown).';
      if (this.logger) this.logger.error(line);
      else process.emitWarning(line);
    }
  }
}

/**
 * revoke(terminate=True, signal=…): Celery sends a name ('SIGTERM', 'TERM', 'KILL') or a number. Unknown
 * values fall back to SIGTERM, Celery's default, with a warning from the caller.
 */
export function terminateSignal(s: string | number | null | undefined): { signal: NodeJS.Signals; known: boolean } {
  const signals = os.constants.signals as Record<string, number>;
  if (typeof s === 'number' || (typeof s === 'string' && /^\d+$/.test(s.trim()))) {
    const n = Number(s);
    const name = Object.keys(signals).find((k) => signals[k] === n);
    return name ? { signal: name as NodeJS.Signals, known: true } : { signal: 'SIGTERM', known: false };
  }
  if (s === null || s === undefined || s === '') return { signal: 'SIGTERM', known: true };
  const up = s.trim().toUpperCase();
  const name = up.startsWith('SIG') ? up : `SIG${up}`;
  return name in signals ? { signal: name as NodeJS.Signals, known: true } : { signal: 'SIGTERM', known: false };
}
