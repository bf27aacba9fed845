// A task's options with the app's defaults filled in, read once per task while the worker runs (as
// Celery resolves them when the app is finalized): app.conf normalises every key it is asked for,
// which would cost more per task than the rest of the bookkeeping.
import type { Settings } from '../app/settings.js';
import type { TaskHandle } from './host.js';

export interface ResolvedOptions {
  acksLate: boolean;
  ignoreResult: boolean;
  storeErrors: boolean;
  trackStarted: boolean;
  timeLimit: number | null;
  softTimeLimit: number | null;
  rejectOnWorkerLost: boolean;
  acksOnFailureOrTimeout: boolean;
  maxRedeliveries: number;
}

export class TaskOptionsCache {
  private readonly resolved = new Map<TaskHandle, ResolvedOptions>();

  constructor(private readonly conf: Settings) {}

  of(task: TaskHandle): ResolvedOptions {
    let o = this.resolved.get(task);
    if (!o) {
      o = {
        acksLate: this.option(task, 'acks_late', 'task_acks_late') === true,
        ignoreResult: this.option(task, 'ignore_result', 'task_ignore_result') === true,
        storeErrors: this.option(task, 'store_errors_even_if_ignored', 'task_store_errors_even_if_ignored') === true,
        trackStarted: this.option(task, 'track_started', 'task_track_started') === true,
        timeLimit: (this.option(task, 'time_limit', 'task_time_limit') as number | null | undefined) ?? null,
        softTimeLimit: (this.option(task, 'soft_time_limit', 'task_soft_time_limit') as number | null | undefined) ?? null,
        rejectOnWorkerLost: this.option(task, 'reject_on_worker_lost', 'task_reject_on_worker_lost') === true,
        acksOnFailureOrTimeout: this.option(task, 'acks_on_failure_or_timeout', 'task_acks_on_failure_or_timeout') !== false,
        maxRedeliveries: Number(this.option(task, 'max_redeliveries', 'task_max_redeliveries') ?? 3),
      };
      this.resolved.set(task, o);
    }
    return o;
  }

  /** The task's own option, else the app's setting. */
  option(task: TaskHandle, name: string, setting: string): unknown {
    const v = task.options[name];
    return v === undefined ? this.conf[setting] : v;
  }
}
