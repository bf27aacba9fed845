// The scenarios (S1–S8 of issue #7) expanded into cases: one system, one variant, run N times.
import type { ChildSpec, Role } from './spec.js';
import type { SystemId } from './child.js';

export type ScenarioId = 'S1' | 'S2' | 'S3' | 'S4' | 'S5' | 'S6' | 'S7' | 'S8' | 'S9';
export const ALL_SCENARIOS: ScenarioId[] = ['S1', 'S2', 'S3', 'S4', 'S5', 'S6', 'S7', 'S8', 'S9'];
export const ALL_SYSTEMS: SystemId[] = ['celeriac', 'bullmq', 'celery', 'celery-node'];

export const SCENARIO_TITLES: Record<ScenarioId, string> = {
  S1: 'awaited single publish',
  S2: 'bulk publish',
  S3: 'drain no-op tasks, acks on, results off',
  S4: 'drain no-op tasks, results stored in Redis',
  S5: 'tasks doing 10 ms of async I/O',
  S6: 'round trip send → result',
  S7: 'worker peak RSS draining 100,000 queued tasks',
  S8: 'drain on RabbitMQ (results off / stored in Redis)',
  S9: 'canvas on Redis, end to end: a group, and a chord, of no-op tasks (apply → every result / the body\'s)',
};

/** What a case's headline number is. */
export type Metric = 'throughput' | 'latency' | 'rss';

export interface Case {
  scenario: ScenarioId;
  /** Comparison group inside a scenario, e.g. 'c=100' or 'c=100 results'. */
  variant: string;
  system: SystemId;
  /** Row label, e.g. 'Celery (threads)'. */
  label: string;
  broker: 'redis' | 'amqp';
  metric: Metric;
  /** The timed child. */
  spec: ChildSpec;
  /** Run before the timed child to fill the queue (not part of the timing). */
  prefill?: ChildSpec;
  /** S6: a worker started first and stopped after the timed child. */
  worker?: ChildSpec;
}

export interface PlanOptions {
  smoke: boolean;
  scenarios: ScenarioId[];
  systems: SystemId[];
  redisBroker: string;
  redisBackend: string;
  amqpBroker: string | null;
  /** S3 and S4 also run with task events on (-E), as variants suffixed ' -E'. */
  events?: boolean;
  /** S3 and S4 only at these concurrencies (default: 1, 10, 100; smoke: 100). */
  concurrencies?: number[] | null;
  /** Tasks a Node system drains in S3 and S4 above c=1 (default: the plan's). */
  drainTasks?: number | null;
}

const SYSTEM_LABEL: Record<SystemId, string> = { celeriac: 'Celeriac', bullmq: 'BullMQ', celery: 'Celery', 'celery-node': 'celery-node' };

export function systemLabel(system: SystemId, pool?: string): string {
  return system === 'celery' ? `Celery (${pool ?? 'solo'})` : SYSTEM_LABEL[system];
}

// Task counts. Python Celery drains ~500 tasks/s here, so its drains use fewer tasks (and Node
// drains at c=1 use 10,000); rates are measured first → last completion, so the count changes
// the run time, not the rate's meaning.
const FULL = { s1: 5000, s2: 50000, drain: 50000, drainC1: 10000, pyDrain: 3000, io: 20000, pyIo: 5000, lat: 1000, latWarm: 50, rss: 100000, pyRss: 10000, amqp: 20000, pyAmqp: 3000, cnLat: 20, canvas: 10000 };
const SMOKE = { s1: 300, s2: 2000, drain: 3000, drainC1: 1000, pyDrain: 600, io: 1000, pyIo: 500, lat: 100, latWarm: 10, rss: 5000, pyRss: 1000, amqp: 2000, pyAmqp: 500, cnLat: 4, canvas: 1000 };

export function buildPlan(o: PlanOptions): Case[] {
  const N = o.smoke ? SMOKE : FULL;
  const cases: Case[] = [];
  const has = (s: SystemId) => o.systems.includes(s);
  const base = (role: Role, broker: 'redis' | 'amqp'): ChildSpec => ({
    role, n: 0, concurrency: 1, results: false, task: 'noop', ioMs: 10,
    brokerUrl: broker === 'redis' ? o.redisBroker : o.amqpBroker ?? '', backendUrl: o.redisBackend,
    queue: 'celery', warmup: 0, batch: 1000,
  });
  const queueFor = (s: SystemId) => (s === 'bullmq' ? 'bench' : 'celery');
  const spec = (s: SystemId, role: Role, broker: 'redis' | 'amqp', over: Partial<ChildSpec>): ChildSpec => ({ ...base(role, broker), queue: queueFor(s), ...over });
  const isPy = (s: SystemId) => s === 'celery';

  const publishing = (scenario: 'S1' | 'S2', role: Role) => {
    for (const s of o.systems) {
      const n = scenario === 'S1' ? N.s1 : isPy(s) ? Math.min(N.s2, 20000) : N.s2;
      cases.push({ scenario, variant: role === 'publish-single' ? '1 in flight' : 'bulk', system: s, label: systemLabel(s), broker: 'redis', metric: 'throughput', spec: spec(s, role, 'redis', { n }) });
    }
  };

  // A drain case for each system at each concurrency; Python gets solo at c=1 and threads above it.
  const drains = (scenario: ScenarioId, broker: 'redis' | 'amqp', concurrencies: number[], results: boolean, task: 'noop' | 'io', nNode: number, nPy: number, metric: Metric = 'throughput', variantSuffix = '', events = false) => {
    for (const c of concurrencies) {
      const variant = `c=${c}${variantSuffix}`;
      for (const s of o.systems) {
        if (s === 'bullmq' && broker === 'amqp') continue;
        if (s === 'celery' && task === 'io' && c === 1) continue;
        // celery-node has no concurrency limit: it runs once per scenario, compared at the highest c.
        if (s === 'celery-node' && c !== Math.max(...concurrencies)) continue;
        const pool = isPy(s) ? (c === 1 ? 'solo' : 'threads') : undefined;
        // At c=1 the Node systems drain ~2,000 tasks/s: 10,000 tasks keep a run near 5 s.
        const n = isPy(s) ? nPy : c === 1 && metric === 'throughput' ? Math.min(nNode, N.drainC1) : nNode;
        // celery-node sends no events: it has no -E row.
        if (events && s === 'celery-node') continue;
        const common = { n, concurrency: c, results, task, ...(pool ? { pool } : {}), ...(events ? { events } : {}) } as Partial<ChildSpec>;
        cases.push({
          scenario, variant, system: s, label: s === 'celery-node' ? 'celery-node (unbounded)' : systemLabel(s, pool), broker, metric,
          prefill: spec(s, 'prefill', broker, { ...common, n: metric === 'rss' ? (isPy(s) ? N.rss : n) : n }),
          spec: spec(s, 'drain', broker, common),
        });
      }
    }
  };

  for (const sc of o.scenarios) {
    switch (sc) {
      case 'S1': publishing('S1', 'publish-single'); break;
      case 'S2': publishing('S2', 'publish-bulk'); break;
      case 'S3':
      case 'S4': {
        const cs = o.concurrencies ?? (o.smoke ? [100] : [1, 10, 100]);
        const drain = o.drainTasks ?? N.drain;
        drains(sc, 'redis', cs, sc === 'S4', 'noop', drain, N.pyDrain);
        // The same drains with task events on, in the same sitting: the cost of -E, for each system.
        if (o.events) drains(sc, 'redis', cs, sc === 'S4', 'noop', drain, N.pyDrain, 'throughput', ' -E', true);
        break;
      }
      case 'S5': drains('S5', 'redis', [100], false, 'io', N.io, N.pyIo); break;
      case 'S6':
        for (const s of o.systems) {
          const n = s === 'celery-node' ? N.cnLat : N.lat;
          const warmup = s === 'celery-node' ? 1 : N.latWarm;
          const pool = isPy(s) ? 'threads' : undefined;
          const w = spec(s, 'worker', 'redis', { concurrency: 10, results: true, ...(pool ? { pool } : {}) });
          cases.push({ scenario: 'S6', variant: 'worker c=10', system: s, label: systemLabel(s, pool), broker: 'redis', metric: 'latency', worker: w, spec: spec(s, 'latency', 'redis', { n, warmup, results: true }) });
        }
        break;
      case 'S7': drains('S7', 'redis', [100], false, 'noop', N.rss, N.pyRss, 'rss'); break;
      case 'S9':
        // Side by side with Python Celery only: BullMQ and celery-node have no group or chord of this kind.
        for (const kind of ['group', 'chord'] as const) {
          for (const s of o.systems) {
            if (s !== 'celeriac' && s !== 'celery') continue;
            const pool = isPy(s) ? 'threads' : undefined;
            const w = spec(s, 'worker', 'redis', { concurrency: 100, results: true, ...(pool ? { pool } : {}) });
            cases.push({
              scenario: 'S9', variant: `${kind} of ${N.canvas.toLocaleString('en-US')}, worker c=100`, system: s, label: systemLabel(s, pool), broker: 'redis', metric: 'throughput',
              worker: w, spec: spec(s, 'canvas', 'redis', { n: N.canvas, results: true, canvas: kind }),
            });
          }
        }
        break;
      case 'S8':
        if (!o.amqpBroker) break;
        drains('S8', 'amqp', o.smoke ? [100] : [1, 100], false, 'noop', N.amqp, N.pyAmqp, 'throughput', ' results off');
        drains('S8', 'amqp', o.smoke ? [100] : [1, 100], true, 'noop', N.amqp, N.pyAmqp, 'throughput', ' results on');
        break;
    }
  }
  // celery-node S8/S7 etc. only exist where the filters above allowed them.
  return cases.filter((c) => has(c.system));
}
