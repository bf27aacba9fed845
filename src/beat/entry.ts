// Schedule entries: beat_schedule's { task, schedule, args, kwargs, options, relative }, checked once
// at the edge and stored as one JSON string that every beat process and the CLI read the same way.
import { dumps, loads } from '../protocol/json.js';
import { normalizeOptions, type ApplyOptions } from '../app/options.js';
import { Interval, toSchedule, type Schedule, type ScheduleInput, type ScheduleSpec } from './schedule.js';
import type { Zone } from './tz.js';

/** One entry of beat_schedule, as Celery spells it. */
export interface BeatEntryInput {
  task: string;
  /** Seconds, crontab(...), solar(...) (or their JSON form). */
  schedule: ScheduleInput;
  args?: readonly unknown[];
  kwargs?: Record<string, unknown>;
  /** apply_async options: queue, priority, expires, headers, routing_key, … */
  options?: ApplyOptions;
  /** For an interval: round the run time down to the interval's unit (Celery's relative). */
  relative?: boolean;
}

/** An entry as stored: plain JSON values only. */
export interface EntryDefinition {
  task: string;
  schedule: ScheduleSpec;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: Record<string, unknown>;
}

/** Where an entry came from: beat_schedule (merged at every beat start) or app.beat.upsert / the CLI. */
export type EntrySource = 'config' | 'runtime';

export interface EntryState {
  /** The scheduled time of the last run sent (or when the entry was added), ms since the epoch. */
  lastRunAt: number;
  totalRunCount: number;
}

/** An entry read back from the store. */
export interface StoredEntry {
  name: string;
  /** encodeEntry's string: compared as is to see whether an entry changed. */
  encoded: string;
  state: EntryState;
}

/** A stored entry ready to run: its definition parsed and its schedule built. */
export interface ScheduleEntry {
  name: string;
  source: EntrySource;
  definition: EntryDefinition;
  schedule: Schedule;
  encoded: string;
  state: EntryState;
}

const NAME = /^[^\s\u0000-\u001f]{1,200}$/;

/** Check an entry from code or the CLI and turn it into its stored form; errors name the entry. */
export function defineEntry(name: string, input: BeatEntryInput): EntryDefinition {
  const where = `beat entry ${JSON.stringify(name)}`;
  if (typeof name !== 'string' || !NAME.test(name)) throw new TypeError(`${where}: a name must be 1-200 characters without spaces or control characters`);
  if (!input || typeof input !== 'object') throw new TypeError(`${where}: expected { task, schedule, args?, kwargs?, options?, relative? }`);
  if (typeof input.task !== 'string' || input.task === '') throw new TypeError(`${where}: task must be the task's name, e.g. 'tasks.add'`);
  const args = input.args ?? [];
  if (!Array.isArray(args)) throw new TypeError(`${where}: args must be an array`);
  const kwargs = input.kwargs ?? {};
  if (kwargs === null || typeof kwargs !== 'object' || Array.isArray(kwargs)) throw new TypeError(`${where}: kwargs must be an object`);
  const options = input.options ?? {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw new TypeError(`${where}: options must be an object`);
  const schedule = toSchedule(input.schedule, input.relative === true, where).toJSON();
  return { task: input.task, schedule, args: [...args], kwargs: { ...kwargs }, options: normalizeOptions(options) };
}

/** The stored string of an entry: source first, then the definition, in a fixed key order. */
export function encodeEntry(source: EntrySource, def: EntryDefinition): string {
  return dumps({ source, task: def.task, schedule: def.schedule, args: def.args, kwargs: def.kwargs, options: def.options });
}

/** The stored string's marker of a beat_schedule entry (stores drop such entries once the config no longer has them). */
export const CONFIG_PREFIX = '{"source": "config"';

export function decodeEntry(stored: StoredEntry): ScheduleEntry {
  const raw = loads(stored.encoded) as EntryDefinition & { source: EntrySource };
  const where = `stored beat entry ${JSON.stringify(stored.name)}`;
  const definition: EntryDefinition = { task: raw.task, schedule: raw.schedule, args: raw.args ?? [], kwargs: raw.kwargs ?? {}, options: raw.options ?? {} };
  return { name: stored.name, source: raw.source, definition, schedule: toSchedule(raw.schedule, false, where), encoded: stored.encoded, state: stored.state };
}

/**
 * The run an entry owes at `now`: its due time, or null when none is due. Runs missed while no beat was
 * sending collapse into one, the latest due time (Celery sends a missed run once).
 */
export function dueRun(entry: Pick<ScheduleEntry, 'schedule' | 'state'>, now: number, zone: Zone): number | null {
  let due = entry.schedule.next(entry.state.lastRunAt, zone);
  if (due === null || due > now) return null;
  const s = entry.schedule;
  if (s instanceof Interval && !s.relative) {
    const step = s.seconds * 1000;
    return due + Math.floor((now - due) / step) * step;
  }
  // Bounded: a long outage of a frequent crontab is settled by the last step below.
  for (let i = 0; i < 10_000; i++) {
    const after: number | null = s.next(due, zone);
    if (after === null || after > now) return due;
    due = after;
  }
  return now;
}

/** When an entry runs next (for list and for the scheduler's sleep), or null if never. */
export function nextRun(entry: Pick<ScheduleEntry, 'schedule' | 'state'>, zone: Zone): number | null {
  return entry.schedule.next(entry.state.lastRunAt, zone);
}
