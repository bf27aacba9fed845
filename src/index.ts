// Celeriac's public API.
export { Celeriac, ImproperlyConfigured, type CeleriacOptions, type TaskCall } from './app/celeriac.js';
export { Task, type Handler, type BoundHandler, type BulkCall } from './app/task.js';
export { EagerResult } from './app/eager.js';
export { AsyncResult, GroupResult, ResultSet, IncompleteStream, resultFromTuple, type GetOptions, type ResultNode, type ResultTuple } from './app/result.js';
export {
  Signature, Chain, Group, Chord, XMap, XStarmap, Chunks, chain, group, chord, xmap, xstarmap, chunks,
  type SignatureDict, type AnySignature, type ParamsOf, type ResultOf, type StepMismatch,
} from './canvas/index.js';
export type { TaskOptions, ApplyOptions } from './app/options.js';
export { currentTask, type TaskContext, type Request, type RetryOptions } from './app/context.js';
export {
  TaskError, NotRegistered, TaskRevokedError, TimeLimitExceeded, SoftTimeLimitExceeded, WorkerLostError,
  MaxRetriesExceededError, Retry, Reject, Ignore, ChordError, NotImplementedError,
} from './app/exceptions.js';
export { createSettings, defaultSettings, DEFAULT_BROKER_URL, type CelerySettings, type Settings, type TransportOptions, type RetryPolicy } from './app/settings.js';
export { createLogger, type Logger, type LogLevel } from './app/log.js';
export { Worker, type WorkerOptions, type TaskEvent } from './worker/worker.js';
export { Control, type RevokeOptions, type BroadcastOptions, type ControlReply } from './control/control.js';
export { Inspect, type InspectOptions, type ByNode } from './control/inspect.js';
export type { OkReply, TaskInfo, ScheduledInfo, QueryTaskReply, WorkerStats, PoolStats, BrokerStats, QueueInfo, InspectReplies } from './control/replies.js';
export * as events from './events/index.js';
export { EventReceiver, State, type CeleryEvent, type EventMap } from './events/index.js';
export * from './beat/index.js';
export type { PoolKind } from './worker/executor.js';
export { States, READY_STATES, type ResultMeta, type ResultBackend, type TaskState } from './backends/types.js';
export { TimeoutError, BackendUnavailable } from './backends/retry.js';
export type { Broker, Delivery, Consumer, PublishTarget, PublishItem } from './brokers/types.js';
export { Float, Decimal, UUID, CeleryDate, CeleryTime, CeleryDateTime } from './protocol/values.js';
export { EncodeError, DecodeError, ContentDisallowed } from './protocol/errors.js';
export { SerializerNotInstalled } from './protocol/serializers.js';
export * as protocol from './protocol/index.js';
export { dashboard, type Dashboard, type DashboardOptions, type TaskView, type WorkerView } from './dashboard/index.js';
