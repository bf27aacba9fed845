// Summaries (medians of runs), the printed table, Celeriac's ratios and the issue #7 targets.
import type { Case, Metric, ScenarioId } from './plan.js';
import { SCENARIO_TITLES } from './plan.js';
import type { ChildResult } from './spec.js';
import type { RedisCounters } from './services.js';

export interface RunRecord {
  result: ChildResult;
  /** INFO deltas around the timed child (server-wide). */
  redis?: RedisCounters;
  /** INFO deltas around the prefill child. */
  prefillRedis?: RedisCounters;
  prefillCount?: number;
  /** Left in the queue after a drain (kombu-layout systems), as a sanity check. */
  leftInQueue?: number;
}

export interface Summary {
  scenario: ScenarioId;
  variant: string;
  system: string;
  label: string;
  broker: string;
  metric: Metric;
  runs: number;
  /** At least one run gave a figure (the median is over the runs that did). */
  ok: boolean;
  /** Runs that failed (timed out, crashed, lost tasks); their errors are in `errors`. */
  failedRuns: number;
  errors: string[];
  /** The headline number: tasks/s, p50 ms or peak RSS MB. */
  median: number;
  min: number;
  max: number;
  unit: string;
  p99?: number;
  rateMedian: number;
  rssMb: number;
  cpuMsPerTask: number;
  cmdsPerTask?: number;
  inBytesPerTask?: number;
  outBytesPerTask?: number;
  /** Publish + consume side together (drains: prefill child + worker child). */
  lifecycleCmdsPerTask?: number;
  redisCpuMsPer1k?: number;
  notes?: ChildResult['notes'];
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summarize(c: Case, runs: RunRecord[]): Summary {
  const good = runs.filter((r) => r.result.ok);
  const errors = runs.filter((r) => !r.result.ok).map((r) => (r.result.error ?? 'failed').split('\n').slice(0, 6).join('\n'));
  let values: number[];
  let unit: string;
  let p99: number | undefined;
  if (c.metric === 'latency') {
    values = good.map((r) => percentile(r.result.latenciesMs ?? [], 50));
    p99 = median(good.map((r) => percentile(r.result.latenciesMs ?? [], 99)));
    unit = 'ms p50';
  } else if (c.metric === 'rss') {
    values = good.map((r) => r.result.maxRssBytes / 1048576);
    unit = 'MB RSS';
  } else {
    values = good.map((r) => r.result.rate);
    unit = 'tasks/s';
  }
  const per = (f: (r: RunRecord) => number | undefined): number | undefined => {
    const xs = good.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
    return xs.length ? median(xs) : undefined;
  };
  const count = (r: RunRecord) => Math.max(1, r.result.count);
  return {
    scenario: c.scenario, variant: c.variant, system: c.system, label: c.label, broker: c.broker, metric: c.metric,
    runs: runs.length, ok: good.length > 0, failedRuns: runs.length - good.length, errors,
    median: median(values), min: Math.min(...values), max: Math.max(...values), unit, p99,
    rateMedian: median(good.map((r) => r.result.rate)),
    rssMb: median(good.map((r) => r.result.maxRssBytes / 1048576)),
    cpuMsPerTask: median(good.map((r) => r.result.cpuMs / count(r))),
    cmdsPerTask: per((r) => (r.redis ? r.redis.commands / count(r) : undefined)),
    inBytesPerTask: per((r) => (r.redis ? r.redis.netIn / count(r) : undefined)),
    outBytesPerTask: per((r) => (r.redis ? r.redis.netOut / count(r) : undefined)),
    lifecycleCmdsPerTask: per((r) => (r.redis && r.prefillRedis && r.prefillCount ? r.prefillRedis.commands / r.prefillCount + r.redis.commands / count(r) : undefined)),
    redisCpuMsPer1k: per((r) => (r.redis ? (r.redis.cpuMs * 1000) / count(r) : undefined)),
    notes: good[0]?.result.notes,
  };
}

/** How many times better Celeriac is than `peer` (> 1: Celeriac better), or undefined. */
export function ratio(celeriac: Summary | undefined, peer: Summary): number | undefined {
  if (!celeriac || !celeriac.ok || !peer.ok || peer.system === 'celeriac') return undefined;
  if (peer.metric === 'throughput') return celeriac.median / peer.median;
  return peer.median / celeriac.median; // latency and RSS: lower is better
}

const fmt = (x: number | undefined, digits = 0): string => {
  if (x === undefined || !Number.isFinite(x)) return '–';
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US');
  return x.toFixed(Math.abs(x) < 10 && digits === 0 ? 1 : digits);
};

export interface Row { cells: string[] }

export const TABLE_HEADER = ['Scenario', 'Variant', 'System', 'Median', 'Min – max', 'Unit', 'Redis cmds/task', 'In B/task', 'Out B/task', 'Publish+consume cmds/task', 'Redis CPU ms/1k tasks', 'Child RSS MB', 'Child CPU ms/task', 'Celeriac ×'];

export function tableRows(summaries: Summary[]): string[][] {
  const rows: string[][] = [];
  for (const s of summaries) {
    const cel = summaries.find((x) => x.scenario === s.scenario && x.variant === s.variant && x.system === 'celeriac');
    const r = ratio(cel, s);
    const partial = s.failedRuns > 0 ? ` (${s.runs - s.failedRuns} of ${s.runs} runs)` : '';
    const headline = s.ok ? fmt(s.median, s.metric === 'latency' ? 2 : 0) + (s.p99 !== undefined ? ` (p99 ${fmt(s.p99, 1)})` : '') + partial : 'FAILED';
    rows.push([
      s.scenario, s.variant + (s.broker === 'amqp' ? ' (RabbitMQ)' : ''), s.label, headline,
      s.ok ? `${fmt(s.min, s.metric === 'latency' ? 2 : 0)} – ${fmt(s.max, s.metric === 'latency' ? 2 : 0)}` : '–', s.unit,
      fmt(s.cmdsPerTask, 1), fmt(s.inBytesPerTask), fmt(s.outBytesPerTask), fmt(s.lifecycleCmdsPerTask, 1), fmt(s.redisCpuMsPer1k),
      fmt(s.rssMb), fmt(s.cpuMsPerTask, 3), r === undefined ? '' : `${r.toFixed(2)}×`,
    ]);
  }
  return rows;
}

export function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function markdownTable(header: string[], rows: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  return [`| ${header.map(esc).join(' | ')} |`, `|${header.map((_, i) => (i >= 3 ? '---:' : '---')).join('|')}|`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

export interface TargetCheck { target: string; measured: string; met: boolean | undefined }

/** The targets of issue #7, evaluated on whatever was measured. */
export function checkTargets(summaries: Summary[]): TargetCheck[] {
  const get = (sc: ScenarioId, variant: string, system: string) => summaries.find((s) => s.scenario === sc && s.variant === variant && s.system === system && s.ok);
  const best = (sc: ScenarioId, system: string, variantFilter: (v: string) => boolean = () => true) =>
    summaries.filter((s) => s.scenario === sc && s.system === system && s.ok && variantFilter(s.variant)).sort((a, b) => b.median - a.median)[0];
  const out: TargetCheck[] = [];
  const times = (label: string, a: Summary | undefined, b: Summary | undefined, need: number) => {
    if (!a || !b) return;
    const r = a.median / b.median;
    out.push({ target: `${label} ≥ ${need}×`, measured: `${r.toFixed(2)}× (${fmt(a.median)} vs ${fmt(b.median)} tasks/s)`, met: r >= need });
  };
  times('S3 c=100: Celeriac / BullMQ', get('S3', 'c=100', 'celeriac'), get('S3', 'c=100', 'bullmq'), 3);
  times('S4 c=100: Celeriac / BullMQ (return value kept)', get('S4', 'c=100', 'celeriac'), get('S4', 'c=100', 'bullmq'), 2);
  times('S2: Celeriac / BullMQ addBulk', get('S2', 'bulk', 'celeriac'), get('S2', 'bulk', 'bullmq'), 2);
  const c6 = get('S6', 'worker c=10', 'celeriac');
  const b6 = get('S6', 'worker c=10', 'bullmq');
  if (c6 && b6) out.push({ target: 'S6 p50: Celeriac ≤ BullMQ', measured: `${c6.median.toFixed(2)} ms vs ${b6.median.toFixed(2)} ms`, met: c6.median <= b6.median });
  times('S3: best Celeriac / best Python Celery (Redis)', best('S3', 'celeriac'), best('S3', 'celery'), 20);
  times('S8: best Celeriac / best Python Celery (RabbitMQ, results off)', best('S8', 'celeriac', (v) => v.includes('off')), best('S8', 'celery', (v) => v.includes('off')), 4);
  const c7 = get('S7', 'c=100', 'celeriac');
  if (c7) out.push({ target: 'S7: Celeriac worker peak RSS ≤ 150 MB', measured: `${c7.median.toFixed(0)} MB`, met: c7.median <= 150 });
  const c3 = get('S3', 'c=100', 'celeriac');
  const b3 = get('S3', 'c=100', 'bullmq');
  if (c3?.lifecycleCmdsPerTask !== undefined && b3?.lifecycleCmdsPerTask !== undefined) {
    out.push({ target: 'S3 c=100: Redis commands per task (publish + consume) ≤ BullMQ', measured: `${c3.lifecycleCmdsPerTask.toFixed(2)} vs ${b3.lifecycleCmdsPerTask.toFixed(2)}`, met: c3.lifecycleCmdsPerTask <= b3.lifecycleCmdsPerTask });
  }
  return out;
}

export function scenarioTitle(sc: ScenarioId): string {
  return SCENARIO_TITLES[sc];
}

/**
 * Summaries read back from a raw JSON file (`--json`, docs/benchmarks/latest.json). Files written
 * before `failedRuns` existed marked a case with any failed run as not ok; their median is over
 * the runs that succeeded, so it is kept, with the failures counted from `errors`.
 */
export function summariesFromRaw(raw: { summaries: (Omit<Summary, 'failedRuns'> & { failedRuns?: number })[] }): Summary[] {
  return raw.summaries.map((s) => {
    const failedRuns = s.failedRuns ?? s.errors.length;
    return { ...s, failedRuns, ok: s.runs - failedRuns > 0 && Number.isFinite(s.median) };
  });
}
