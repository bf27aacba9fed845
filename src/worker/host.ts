// What the worker and remote control use of the app: the narrow host Celeriac implements. Nothing under
// worker/ or control/ imports app/celeriac.ts; they see only this.
import type { Broker, PublishTarget } from '../brokers/types.js';
import type { ResultBackend } from '../backends/types.js';
import type { Message } from '../protocol/message.js';
import type { Settings } from '../app/settings.js';
import type { Logger } from '../app/log.js';
import type { TaskContext } from '../app/context.js';
import type { CanvasHost } from '../canvas/types.js';

/** A registered task as the worker runs it. */
export interface TaskHandle {
  readonly name: string;
  /** Options with Celery's names (acks_late, max_retries, rate_limit, …). */
  readonly options: Record<string, unknown>;
  /** Call the handler as the current task: a value, or a promise for one. */
  call(ctx: TaskContext, args: unknown[], kwargs: Record<string, unknown>): unknown;
}

/** The app as the worker sees it; CanvasHost is what callbacks, chains and chords are applied through. */
export interface WorkerHost extends CanvasHost {
  /** The app's name (Celery's main), for the banner. */
  readonly main: string;
  readonly conf: Settings;
  readonly logger: Logger;
  readonly brokerUrl: string;
  readonly backendUrl: string | null;
  /** True when no broker was configured and the embedded default is in use. */
  readonly usesEmbeddedDefault: boolean;
  /** The connected broker; a worker's first connection retries as Celery's consumer does (retryOnStartup). */
  broker(opts?: { retryOnStartup?: boolean }): Promise<Broker>;
  backend(): Promise<ResultBackend | null>;
  /** Publish with task_publish_retry_policy (retries, requeues). */
  publish(broker: Broker, message: Message, target: PublishTarget): Promise<void>;
}
