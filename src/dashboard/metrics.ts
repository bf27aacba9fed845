// Prometheus metrics with Flower's names (flower/events.py), kept from the events, and the text
// exposition format /metrics serves. Counters live in this process: they start from zero with it.

/** Flower's default runtime buckets (prometheus_client's defaults). */
export const RUNTIME_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] as const;

interface Histogram {
  labels: Record<string, string>;
  counts: number[];
  sum: number;
  count: number;
}

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function labelText(labels: Record<string, string>, extra?: [string, string]): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function num(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

export class DashboardMetrics {
  private readonly events = new Map<string, { labels: Record<string, string>; value: number }>();
  private readonly runtime = new Map<string, Histogram>();
  private readonly prefetch = new Map<string, { labels: Record<string, string>; value: number }>();

  /** One event: flower_events_total, and the runtime / prefetch time it carries. */
  event(worker: string, type: string, task: string): void {
    const key = `${worker}\0${type}\0${task}`;
    const c = this.events.get(key);
    if (c) c.value++;
    else this.events.set(key, { labels: { worker, type, task }, value: 1 });
  }

  observeRuntime(worker: string, task: string, seconds: number): void {
    const key = `${worker}\0${task}`;
    let h = this.runtime.get(key);
    if (!h) this.runtime.set(key, (h = { labels: { worker, task }, counts: RUNTIME_BUCKETS.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < RUNTIME_BUCKETS.length; i++) if (seconds <= RUNTIME_BUCKETS[i]!) h.counts[i]!++;
    h.sum += seconds;
    h.count++;
  }

  /** The time a task waited at the worker between task-received and task-started. */
  setPrefetchTime(worker: string, task: string, seconds: number): void {
    this.prefetch.set(`${worker}\0${task}`, { labels: { worker, task }, value: seconds });
  }

  /** The exposition text; worker and queue gauges are read now from what the caller knows. */
  render(workers: { hostname: string; online: boolean; active: number }[], queues: Record<string, number>): string {
    const out: string[] = [];
    out.push('# HELP flower_events_total Number of events', '# TYPE flower_events_total counter');
    for (const c of this.events.values()) out.push(`flower_events_total${labelText(c.labels)} ${num(c.value)}`);
    out.push('# HELP flower_task_runtime_seconds Task runtime', '# TYPE flower_task_runtime_seconds histogram');
    for (const h of this.runtime.values()) {
      RUNTIME_BUCKETS.forEach((b, i) => out.push(`flower_task_runtime_seconds_bucket${labelText(h.labels, ['le', num(b)])} ${h.counts[i]}`));
      out.push(`flower_task_runtime_seconds_bucket${labelText(h.labels, ['le', '+Inf'])} ${h.count}`);
      out.push(`flower_task_runtime_seconds_sum${labelText(h.labels)} ${num(h.sum)}`);
      out.push(`flower_task_runtime_seconds_count${labelText(h.labels)} ${h.count}`);
    }
    out.push('# HELP flower_task_prefetch_time_seconds The time the task spent waiting at the celery worker to be executed.', '# TYPE flower_task_prefetch_time_seconds gauge');
    for (const g of this.prefetch.values()) out.push(`flower_task_prefetch_time_seconds${labelText(g.labels)} ${num(g.value)}`);
    out.push('# HELP flower_worker_online Worker online status', '# TYPE flower_worker_online gauge');
    for (const w of workers) out.push(`flower_worker_online${labelText({ worker: w.hostname })} ${w.online ? 1 : 0}`);
    out.push('# HELP flower_worker_number_of_currently_executing_tasks Number of tasks currently executing at a worker', '# TYPE flower_worker_number_of_currently_executing_tasks gauge');
    for (const w of workers) out.push(`flower_worker_number_of_currently_executing_tasks${labelText({ worker: w.hostname })} ${w.active}`);
    out.push('# HELP celeriac_queue_length Messages waiting in the queue', '# TYPE celeriac_queue_length gauge');
    for (const [q, n] of Object.entries(queues)) out.push(`celeriac_queue_length${labelText({ queue: q })} ${n}`);
    return out.join('\n') + '\n';
  }
}
