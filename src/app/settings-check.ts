// The start-up check that keeps settings honest: every name is one Celeriac honours, or the user hears
// about it (an unknown name is a warning naming the closest known one; a value Celeriac cannot honour
// is an error naming the setting).
import { CELERY_OLD_NAMES, CELERY_SETTING_NAMES } from './celery-settings.js';
import { defaultSettings, writtenNames, type Settings } from './settings.js';
import { logFormatProblem } from './log.js';

/** Names Celeriac reads besides those with a default (set by the CLI for thread/process children). */
const ALSO_KNOWN = ['worker_app_module'];

/** What `new Celeriac(main, options)` takes besides settings. */
const CONSTRUCTOR_OPTIONS = ['broker', 'backend', 'logger'];

let knownNames: Set<string> | undefined;

/** Every setting name Celeriac honours (Celery names, lowercase). */
export function knownSettingNames(): ReadonlySet<string> {
  return (knownNames ??= new Set([...Object.keys(defaultSettings()), ...ALSO_KNOWN]));
}

/** Damerau-Levenshtein distance (adjacent swaps count as one edit): how far a typo is from a name. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known name closest to `name`, or undefined when none is close enough to be a typo of it. */
export function closestName(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 4)) ? best : undefined;
}

function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** One line about a name Celeriac does not know: a Celery setting it does not implement, or a likely typo. */
function unknownNameMessage(name: string, written: string): string {
  const celeryName = CELERY_OLD_NAMES.get(written) ?? name;
  if (CELERY_SETTING_NAMES.has(celeryName)) {
    return `Setting '${written}' is a Celery setting that Celeriac does not implement; it has no effect (see docs/reliability.md, "Settings").`;
  }
  if (name === 'broker' || name === 'backend') return `Unknown setting '${written}': it has no effect. Did you mean '${name === 'broker' ? 'broker_url' : 'result_backend'}'? ('${name}' is an option of new Celeriac(), not a setting.)`;
  const guess = closestName(name, [...knownSettingNames(), ...CONSTRUCTOR_OPTIONS]);
  if (!guess) return `Unknown setting '${written}': it has no effect. Celeriac takes Celery's setting names (e.g. task_acks_late) or their camelCase aliases (taskAcksLate).`;
  const shown = /[A-Z]/.test(written) && !CONSTRUCTOR_OPTIONS.includes(guess) ? camel(guess) : guess;
  return `Unknown setting '${written}': it has no effect. Did you mean '${shown}'?`;
}

const NOT_YET = 'is not yet supported';

/**
 * Values Celeriac cannot honour: each returns the error for a value it refuses, or null. Settings that
 * are accepted with their Celery meaning need no entry; see docs/reliability.md for the full table.
 */
const REFUSALS: Record<string, (v: unknown, s: Settings) => string | null> = {
  event_serializer: (v) => (v != null && v !== 'json' ? `event_serializer = ${JSON.stringify(v)} ${NOT_YET}: Celeriac sends and reads events as JSON (Celery's default). Remove the setting.` : null),
  task_create_missing_queues: (v) => (v === false ? `task_create_missing_queues = false ${NOT_YET}: Celeriac has no task_queues list, so every queue is created on first use. Remove the setting.` : null),
  result_compression: (v) => (v != null ? `result_compression = ${JSON.stringify(v)} ${NOT_YET}: results are stored uncompressed. Remove the setting (task_compression compresses task messages).` : null),
  result_backend_max_retries: (v) => (v != null && v !== Infinity ? `result_backend_max_retries = ${String(v)} ${NOT_YET}: set result_backend_transport_options = { retry_policy: { max_retries: ${String(v)} } } instead.` : null),
  task_default_routing_key: (v, s) => (v != null && v !== s.task_default_queue ? `task_default_routing_key = ${JSON.stringify(v)} ${NOT_YET}: Celeriac routes a task to its queue by the queue's name. Remove the setting, or route with task_routes / the queue option.` : null),
  worker_log_format: (v) => (v == null ? null : typeof v !== 'string' ? `worker_log_format must be a string such as '[%(asctime)s: %(levelname)s/%(processName)s] %(message)s', got ${typeof v}` : logFormatProblem(v)),
};

export interface SettingsReport {
  /** Names Celeriac does not know (each one line). */
  unknown: string[];
  /** Values Celeriac refuses (each one line naming the setting). */
  refused: string[];
}

/** Check the names and values of `settings` (no side effects). */
export function checkSettings(settings: Settings): SettingsReport {
  const known = knownSettingNames();
  const unknown: string[] = [];
  for (const [name, written] of writtenNames(settings)) {
    if (!known.has(name)) unknown.push(unknownNameMessage(name, written));
  }
  const refused: string[] = [];
  for (const [name, check] of Object.entries(REFUSALS)) {
    const problem = check(settings[name], settings);
    if (problem) refused.push(problem);
  }
  return { unknown, refused };
}

/** strict_settings, or CELERIAC_STRICT_SETTINGS=1 in the environment: unknown names fail the start. */
export function strictSettings(settings: Settings, env: NodeJS.ProcessEnv = process.env): boolean {
  const e = env.CELERIAC_STRICT_SETTINGS;
  return settings.strict_settings === true || (e !== undefined && /^(1|true|yes)$/i.test(e));
}
