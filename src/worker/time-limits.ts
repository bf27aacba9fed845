// Celery's time limits: the soft limit fires the task's AbortSignal with SoftTimeLimitExceeded
// (catchable); the hard limit has the executor stop the task (thread terminated, process killed and
// replaced, the async pool stops waiting).
import type { Logger } from '../app/log.js';
import type { TaskRequest } from '../protocol/message.js';
import { SoftTimeLimitExceeded, TimeLimitExceeded } from '../app/exceptions.js';
import type { Executor } from './executor.js';
import type { Job, JobHooks } from './job.js';

export interface TimeLimits {
  hard: number | null;
  soft: number | null;
}

/** Limits set by the time_limit control command, per task name. */
export type ControlTimeLimits = Map<string, TimeLimits>;

/** The limits that apply: header [hard, soft], then a time_limit control command, then the task and settings. */
export function limitsFor(f: TaskRequest, ctl: TimeLimits | undefined, options: { timeLimit: number | null; softTimeLimit: number | null }): TimeLimits {
  return { hard: f.timelimit[0] ?? ctl?.hard ?? options.timeLimit, soft: f.timelimit[1] ?? ctl?.soft ?? options.softTimeLimit };
}

/** Run the job on the executor with its limits armed; the timers go when it settles. */
export function runWithLimits(executor: Executor, job: Job & JobHooks, limits: TimeLimits, logger: Logger): Promise<unknown> {
  const { hard, soft } = limits;
  const run = executor.run(job, job);
  if (!hard && !soft) return run;
  const what = () => `${job.taskName}[${job.request.id}]`;
  const timers: NodeJS.Timeout[] = [];
  if (soft) {
    timers.push(setTimeout(() => {
      logger.warning(`Soft time limit (${soft}s) exceeded for ${what()}`);
      executor.interrupt(job.key, new SoftTimeLimitExceeded(`SoftTimeLimitExceeded(${soft})`));
    }, soft * 1000));
  }
  if (hard) {
    timers.push(setTimeout(() => {
      logger.error(`Hard time limit (${hard}s) exceeded for ${what()}`);
      const e = new TimeLimitExceeded(String(hard));
      (e as { excArgs?: unknown[] }).excArgs = [hard];
      executor.kill(job.key, e);
    }, hard * 1000));
  }
  return run.finally(() => timers.forEach(clearTimeout));
}
