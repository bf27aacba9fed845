// The canvas hooks a Request calls after its task's outcome: callbacks and the next chain step on
// success, the chord join on every final state, the rest of the chain and the errbacks on failure
// (the work itself is canvas/outcome.ts). A message without canvas work costs one check.
import type { TaskRequest } from '../protocol/message.js';
import type { ExceptionInfo, ResultBackend } from '../backends/types.js';
import type { Logger } from '../app/log.js';
import type { Request as TaskView } from '../app/context.js';
import { CanvasOutcomes, type CanvasRequest } from '../canvas/outcome.js';
import type { CanvasHost } from '../canvas/types.js';
import { JobContext, type Job, type JobHooks } from './job.js';

/** Whether a success leads anywhere: callbacks, a next chain step, or a chord to join. */
export function hasSuccessCanvas(f: TaskRequest): boolean {
  const e = f.embed;
  return e.callbacks !== null || e.chord !== null || (e.chain !== null && e.chain.length > 0);
}

/** Whether a failure leads anywhere: errbacks, a chord to join, or later chain steps to fail. */
export function hasFailureCanvas(f: TaskRequest): boolean {
  const e = f.embed;
  return e.errbacks !== null || e.chord !== null || (e.chain !== null && e.chain.length > 0);
}

type RunningJob = Job & JobHooks & { readonly request: TaskView };

/** The finished task as the canvas sees it; `job` gives an in-process errback the failed request and context. */
function canvasRequest(f: TaskRequest, job?: RunningJob): CanvasRequest {
  return {
    id: f.id, task: f.task, rootId: f.rootId, group: f.group, groupIndex: f.groupIndex, priority: f.priority,
    embed: f.embed, kombuTags: f.kombuTags,
    view: job?.request,
    context: job ? new JobContext(f.task, job, { signal: new AbortController().signal }, job) : undefined,
  };
}

export class WorkerCanvas {
  private readonly outcomes: CanvasOutcomes;

  constructor(host: CanvasHost, backend: ResultBackend | null, private readonly logger: Logger) {
    this.outcomes = new CanvasOutcomes(host, backend);
  }

  /**
   * Apply the callbacks and the next chain step (before the result is stored, so it lists them as
   * children); the error when they could not be sent (the task then fails with it), else null.
   */
  async afterSuccess(f: TaskRequest, value: unknown, job: RunningJob): Promise<{ error: unknown } | null> {
    try {
      await this.outcomes.applyCallbacks(canvasRequest(f), value, (r) => job.addTrail?.(r));
      return null;
    } catch (error) {
      this.logger.error(`Task ${f.task}[${f.id}] succeeded but what follows it could not be applied: ${(error as Error).message}`);
      return { error };
    }
  }

  /** A chord header member finished: join it (the last one applies the body); failures are logged. */
  async joinChord(f: TaskRequest, state: string, result: unknown): Promise<void> {
    await this.outcomes.chordPart(canvasRequest(f), state, result)
      .catch((err: unknown) => this.logger.error(`Task ${f.task}[${f.id}] could not join chord ${f.group}: ${(err as Error).message}`));
  }

  /**
   * The rest of the chain stored failed. Called in the same turn as the task's own FAILURE store (right
   * after it), so both go to the backend in one write; failures are logged.
   */
  failChain(f: TaskRequest, info: ExceptionInfo, traceback: string | null): Promise<void> {
    if (!f.embed.chain?.length) return Promise.resolve();
    return this.outcomes.storeChainFailure(canvasRequest(f), info, traceback, { state: 'FAILURE', storeResult: true, callErrbacks: true })
      .catch((err: unknown) => this.logger.error(`Task ${f.task}[${f.id}] failed, and the rest of its chain could not be stored failed: ${(err as Error).message}`));
  }

  /** Celery's mark_as_failure after the stores (failChain did the chain's): the chord joins, the errbacks run. */
  async afterFailure(f: TaskRequest, job: RunningJob, info: ExceptionInfo, traceback: string | null, storeResult: boolean): Promise<void> {
    await this.outcomes.onFailure(canvasRequest(f, job), info, traceback, { state: 'FAILURE', storeResult, callErrbacks: true, chainStored: true })
      .catch((err: unknown) => this.logger.error(`Task ${f.task}[${f.id}] failed, and its canvas could not be told: ${(err as Error).message}`));
  }
}
