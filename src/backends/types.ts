// The ResultBackend interface and Celery's task-state vocabulary.
import type { SharedBuckets } from '../brokers/types.js';
import type { Settings } from '../app/settings.js';
import type { Logger } from '../app/log.js';

export const States = {
  PENDING: 'PENDING',
  RECEIVED: 'RECEIVED',
  STARTED: 'STARTED',
  SUCCESS: 'SUCCESS',
  FAILURE: 'FAILURE',
  RETRY: 'RETRY',
  REVOKED: 'REVOKED',
  REJECTED: 'REJECTED',
  IGNORED: 'IGNORED',
} as const;
export type TaskState = (typeof States)[keyof typeof States] | (string & {});

export const READY_STATES: ReadonlySet<string> = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);
export const EXCEPTION_STATES: ReadonlySet<string> = new Set(['RETRY', 'FAILURE', 'REVOKED']);
export const PROPAGATE_STATES: ReadonlySet<string> = new Set(['FAILURE', 'REVOKED']);

/** An exception as Celery's JSON result serializer encodes it. */
export interface ExceptionInfo {
  exc_type: string;
  exc_message: unknown[] | unknown;
  exc_module: string;
}

/**
 * Set on a meta by the worker: whether the task's sender reads kombu's JSON tags (Celery ≥ 5.3), so its
 * result is written in the JSON it reads. A symbol, so it is never stored.
 */
export const PEER_TAGS: unique symbol = Symbol('celeriac.peerTags');

/** celery-task-meta-<id>, field order as Celery emits it. */
export interface ResultMeta {
  [PEER_TAGS]?: boolean;
  status: TaskState;
  result: unknown;
  traceback: string | null;
  children: unknown[] | null;
  date_done: string | null;
  task_id: string;
  group_id?: string;
  parent_id?: string;
  name?: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  worker?: string;
  retries?: number;
  queue?: string;
  [key: string]: unknown;
}

/** What the worker knows about the request when it stores a state (rpc:// needs reply_to). */
export interface StoreContext {
  replyTo?: string | null;
  correlationId?: string | null;
}

export interface WaitOptions {
  /** Milliseconds; undefined waits forever. */
  timeout?: number;
  signal?: AbortSignal;
}

export interface ResultBackend {
  readonly displayUrl: string;
  connect(): Promise<void>;
  /** Called by the client before it publishes a task whose result it may wait for. */
  onTaskCall?(taskId: string): Promise<void>;
  /** The reply_to the client must put in the message (rpc:// only). */
  readonly replyTo?: string;
  /** Store a state. A stored SUCCESS is never overwritten. */
  store(meta: ResultMeta, ctx?: StoreContext): Promise<void>;
  /** The latest meta, or a PENDING meta when nothing is stored. */
  get(taskId: string): Promise<ResultMeta>;
  /** Resolve with the meta once the task is READY; reject with TimeoutError after opts.timeout. */
  wait(taskId: string, opts?: WaitOptions): Promise<ResultMeta>;
  forget(taskId: string): Promise<void>;
  close(): Promise<void>;
  /** Optional: rate-limit buckets every worker shares, for global_rate_limit when the broker has none. */
  sharedBuckets?(): Promise<SharedBuckets>;
  /** Optional: delete expired results (Celery's backend.cleanup, run by celery.backend_cleanup). */
  cleanup?(): Promise<unknown>;

  // Chords and groups (docs/canvas.md). A backend with chordPartReturn joins chords itself (Redis);
  // with any other, whoever applies a chord sends celery.chord_unlock, which polls the header.
  /** Record a chord header task's outcome; the whole join once the last one arrived, else null. */
  chordPartReturn?(groupId: string, part: ChordPart, peerTags?: boolean): Promise<ChordJoin | null>;
  /** Remove a finished chord's join (celery-taskset-meta-<gid>.j, .t, .s on Redis). */
  chordDone?(groupId: string): Promise<void>;
  /** The number of header results the chord waits for, written before the header is published. */
  setChordSize?(groupId: string, size: number): Promise<void>;
  /** Throws when this backend cannot carry chords (Celery's ensure_chords_allowed; rpc:// cannot). */
  ensureChordsAllowed?(): void;
  /** Store a group's result tuple under its id (GroupResult.save: celery-taskset-meta-<gid>). */
  saveGroup?(groupId: string, result: unknown): Promise<void>;
  /** The saved group's result tuple, or null. */
  restoreGroup?(groupId: string): Promise<unknown>;
  deleteGroup?(groupId: string): Promise<void>;
}

/** One chord header task's outcome: its result, or the exception dict of a FAILURE / REVOKED. */
export interface ChordPart {
  taskId: string;
  state: string;
  result: unknown;
  /** Its group_index (the header order); null sorts last. */
  index: number | null;
}

/** A complete chord join: every header outcome in header order, or the saved group when the header held groups. */
export interface ChordJoin {
  parts: { taskId: string; state: string; result: unknown }[];
  /** The result tuple GroupResult.save() stored for a header of groups, when there is one. */
  savedGroup: unknown;
}

export interface BackendContext {
  settings: Settings;
  logger: Logger;
  /** An app's result backend: idle connections must not keep the process alive (app/keep-alive.ts). */
  idleExit?: boolean;
  /** The client's id (Celery's app.thread_oid): rpc:// names its reply queue after it, as frozen signatures' reply_to. */
  oid?: string;
}

export function pendingMeta(taskId: string): ResultMeta {
  return { status: 'PENDING', result: null, traceback: null, children: [], date_done: null, task_id: taskId };
}
