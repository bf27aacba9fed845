// Celery events for monitors and dashboards: a receiver (a typed stream of events off the broker), the
// cluster state kept from them (celery.events.state), the dispatcher workers and clients send with,
// and `celery events --dump` formatting. Import from 'celeriac' (or this module inside the repository).
export { EventReceiver, type ReceiverOptions, type EventsHost } from './receiver.js';
export { State, WorkerState, TaskState, HEARTBEAT_EXPIRE_WINDOW, heartbeatExpires, precedence, READY_STATES, type StateOptions, type StateChange } from './state.js';
export { EventDispatcher, BUFFER_LIMIT, type DispatcherOptions, type EventSink } from './dispatcher.js';
export { Dumper, humanizeType } from './dumper.js';
export { LamportClock, clock } from './clock.js';
export { adjustTimestamp, utcoffset, groupFrom } from './event.js';
export type {
  CeleryEvent, KnownEvent, EventMap, EventBase, EventFields, WorkerEvent, TaskEvent, TaskSentEvent, TaskReceivedEvent, TaskStartedEvent,
  TaskSucceededEvent, TaskFailedEvent, TaskRetriedEvent, TaskRevokedEvent, TaskRejectedEvent,
} from './event.js';
