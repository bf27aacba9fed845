// Exceptions across languages: JS errors ⇄ Celery's {exc_type, exc_message, exc_module}.
import type { ExceptionInfo } from '../backends/types.js';
import { repr } from '../protocol/repr.js';

/** JS built-ins map to the Python built-ins of the same name; a plain Error is Python's Exception. */
const BUILTIN_NAMES = new Set([
  'TypeError', 'ValueError', 'KeyError', 'IndexError', 'RuntimeError', 'ZeroDivisionError', 'AttributeError',
  'NotImplementedError', 'OSError', 'IOError', 'LookupError', 'ArithmeticError', 'AssertionError', 'SyntaxError',
  'ReferenceError', 'TimeoutError', 'ConnectionError', 'PermissionError', 'FileNotFoundError', 'OverflowError',
  'MemoryError', 'RecursionError', 'StopIteration', 'UnicodeError', 'Exception', 'BaseException', 'NameError',
]);

/** Celery's own exceptions live in celery.exceptions on the Python side. */
const CELERY_NAMES = new Set([
  'NotRegistered', 'TaskRevokedError', 'TimeLimitExceeded', 'SoftTimeLimitExceeded', 'WorkerLostError',
  'MaxRetriesExceededError', 'Retry', 'Reject', 'Ignore', 'ChordError', 'InvalidTaskError', 'QueueNotFound',
  'TaskError', 'ImproperlyConfigured',
]);

/** An error raised by a task, possibly in another language, as seen by the caller. */
export class TaskError extends Error {
  excType: string;
  excModule: string;
  excMessage: unknown;
  traceback: string | null;
  taskId?: string;
  constructor(info: ExceptionInfo, traceback: string | null = null) {
    super(messageOf(info.exc_message));
    this.excType = info.exc_type;
    this.excModule = info.exc_module;
    this.excMessage = info.exc_message;
    this.traceback = traceback;
    this.name = info.exc_type.split('.').pop() || 'Exception';
  }
}

function messageOf(m: unknown): string {
  if (Array.isArray(m)) return m.length === 1 && typeof m[0] === 'string' ? m[0] : m.length === 0 ? '' : m.map((x) => (typeof x === 'string' ? x : repr(x))).join(', ');
  return typeof m === 'string' ? m : m == null ? '' : repr(m);
}

function errorName(err: Error): string {
  const n = err.name && err.name !== 'Error' ? err.name : err.constructor?.name;
  return n && n !== 'Error' ? n : 'Exception';
}

/** Encode a thrown value as Celery's exception dict. */
export function encodeException(err: unknown): ExceptionInfo {
  if (err instanceof TaskError) return { exc_type: err.excType, exc_message: err.excMessage, exc_module: err.excModule };
  if (err instanceof Error) {
    const type = errorName(err);
    const module = CELERY_NAMES.has(type) ? 'celery.exceptions' : BUILTIN_NAMES.has(type) ? 'builtins' : 'celeriac.tasks';
    const args = (err as { excArgs?: unknown[] }).excArgs;
    return { exc_type: type, exc_message: Array.isArray(args) ? args : [err.message], exc_module: module };
  }
  return { exc_type: 'Exception', exc_message: [typeof err === 'string' ? err : repr(err)], exc_module: 'builtins' };
}

/** Python's repr of an exception instance: ValueError('bad thing'). */
export function exceptionRepr(info: ExceptionInfo): string {
  const args = Array.isArray(info.exc_message) ? info.exc_message : [info.exc_message];
  return `${info.exc_type}(${args.map((a) => repr(a)).join(', ')})`;
}

/** A stored field as text; a stored value is untrusted, and some objects have no text form. */
function text(v: unknown, fallback: string): string {
  if (typeof v === 'string') return v;
  try {
    return String(v);
  } catch {
    return fallback;
  }
}

/** Decode a stored exception dict back to an Error whose name is the remote type. */
export function decodeException(result: unknown, traceback: string | null = null): TaskError {
  if (result && typeof result === 'object' && 'exc_type' in (result as object)) {
    const r = result as Partial<ExceptionInfo>;
    return new TaskError({ exc_type: text(r.exc_type, 'Exception'), exc_message: r.exc_message ?? [], exc_module: text(r.exc_module ?? 'builtins', 'builtins') }, traceback);
  }
  return new TaskError({ exc_type: 'Exception', exc_message: [result == null ? 'Task failed without an exception' : repr(result)], exc_module: 'builtins' }, traceback);
}

/** A Python-looking traceback string for a JS error (what Celery stores in `traceback`). */
export function formatTraceback(err: unknown): string {
  const info = encodeException(err);
  const stack = err instanceof Error && err.stack ? err.stack.split('\n').slice(1).map((l) => '  ' + l.trim()).join('\n') : '';
  return `Traceback (most recent call last):\n${stack}\n${info.exc_type}: ${messageOf(info.exc_message)}\n`;
}

// Celery's exceptions, usable by TypeScript tasks.
function celeryError(name: string) {
  return class extends Error {
    override name = name;
  };
}
export class NotRegistered extends celeryError('NotRegistered') {}
export class TaskRevokedError extends celeryError('TaskRevokedError') {}
export class TimeLimitExceeded extends celeryError('TimeLimitExceeded') {}
export class SoftTimeLimitExceeded extends celeryError('SoftTimeLimitExceeded') {}
export class WorkerLostError extends celeryError('WorkerLostError') {}
export class MaxRetriesExceededError extends celeryError('MaxRetriesExceededError') {}
export class Ignore extends celeryError('Ignore') {}
/** A chord's header failed (Dependency <id> raised …) or its body could not be applied. */
export class ChordError extends celeryError('ChordError') {}
/** Python's NotImplementedError: what Celery raises for a chord on a backend that cannot join one (rpc://). */
export class NotImplementedError extends celeryError('NotImplementedError') {}

/** Thrown by task.retry(): the worker republishes the task and records RETRY. */
export class Retry extends Error {
  override name = 'Retry';
  constructor(
    message: string,
    readonly exc: unknown,
    readonly when: Date | null,
  ) {
    super(message);
  }
}

/** Thrown inside a task to reject its message (requeue or drop). */
export class Reject extends Error {
  override name = 'Reject';
  constructor(readonly reason: string = '', readonly requeue = false) {
    super(reason);
  }
}

/** A setting or URL that can't work as given (Celery's celery.exceptions.ImproperlyConfigured). */
export class ImproperlyConfigured extends Error {
  override name = 'ImproperlyConfigured';
}
