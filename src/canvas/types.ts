// What the canvas needs of the app (CanvasHost, which Celeriac implements and the worker reaches through
// its WorkerHost), the task a call runs under (CallContext), and the type-level helpers of the typed builder.
import type { PublishItem } from '../brokers/types.js';
import type { ResultBackend } from '../backends/types.js';
import type { Message } from '../protocol/message.js';
import type { Settings } from '../app/settings.js';
import type { Logger } from '../app/log.js';
import type { TaskContext } from '../app/context.js';
import type { AsyncResult, GroupResult, ResultHost, ResultNode } from '../app/result.js';
import type { Signature } from './signature.js';

/** A registered task as the canvas sees it (built-ins call tasks in-process; errbacks look at the arity). */
export interface CanvasTask {
  readonly name: string;
  readonly options: Record<string, unknown>;
  /** Bound to its task (bind: true): Celery never calls such an errback in-process. */
  readonly bound: boolean;
  /** Positional parameters of the handler, the bound task not counted. */
  readonly arity: number;
  call(ctx: TaskContext, args: unknown[], kwargs: Record<string, unknown>): unknown;
}

export interface BuiltCall {
  message: Message;
  id: string;
  queue: string;
  routingKey: string;
  exchange: string;
}

/** The app, as far as building and publishing canvases (and reading their results) goes. */
export interface CanvasHost extends ResultHost {
  readonly conf: Settings;
  /** This client's id: the reply_to a frozen signature carries (Celery's app.thread_oid). */
  readonly oid: string;
  readonly logger: Logger;
  readonly tasks: ReadonlyMap<string, CanvasTask>;
  backend(): Promise<ResultBackend | null>;
  /** A task message exactly as sendTask builds it (options in Celery's snake_case), no I/O. */
  buildMessage(name: string, args: readonly unknown[], kwargs: Record<string, unknown>, options: Record<string, unknown>, replyTo: string, tags?: boolean): BuiltCall;
  /** The queue a task goes to (call option, task_routes, the task's own, task_default_queue). */
  routeFor(name: string, options: Record<string, unknown>): { queue: string; priority?: number };
  /** Publish built messages with task_publish_retry_policy, in bulk where the transport can. */
  publishCalls(items: PublishItem[]): Promise<void>;
  AsyncResult(id: string): AsyncResult;
  GroupResult(id: string, results: ResultNode[]): GroupResult;
}

/**
 * The task a canvas is applied from (Celery's current_worker_task): messages default their parent_id
 * and root_id to it, and what is applied joins its children (Celery's add_trail).
 */
export interface CallContext {
  parentId?: string | null;
  rootId?: string | null;
  addTrail?(result: ResultNode): void;
  /** The JSON dialect of the messages: that of the running task's sender (kombu's tags or Celery 5.2's). */
  tags?: boolean;
}

// ---- The typed builder: each chain step takes the previous step's result as its first argument. ----

type BuildTuple<N extends number, T extends unknown[] = []> = T['length'] extends N ? T : BuildTuple<N, [...T, unknown]>;
type Minus<A extends number, B extends number> = number extends A ? 0 : BuildTuple<A> extends [...BuildTuple<B>, ...infer Rest] ? Rest['length'] : 0;
/** The first N parameters of P (optional ones stay optional). */
type Take<P extends unknown[], N extends number, H extends unknown[] = []> =
  Required<H>['length'] extends N ? H
    : P extends [] ? H
      : P extends [infer F, ...infer R] ? Take<R, N, [...H, F]>
        : P extends [(infer F)?, ...infer R] ? Take<R, N, [...H, F?]>
          : H;

/** Every suffix of a parameter list: the arguments .s() may bind (a chain puts the parent's result before them). */
export type Suffix<P extends unknown[]> = P extends [unknown, ...infer Rest] ? P | Suffix<Rest> : P;

/** The parameters left open once `A` is bound at the end of `P`. */
export type Remaining<P extends unknown[], A extends unknown[]> = number extends P['length'] ? P : Take<P, Minus<Required<P>['length'], A['length']>>;

/** Whether a signature with open parameters `P` (immutable when `I`) takes a parent's result `R` as its only argument. */
export type TakesResult<P extends unknown[], I extends boolean, R> =
  [I] extends [true] ? true
    : number extends P['length'] ? true
      : P extends [] ? false
        : P extends [infer First, ...infer Rest] ? ([R] extends [First] ? ([] extends Rest ? true : false) : false)
          : P extends [(infer First)?, ...infer Rest] ? ([R] extends [First] ? ([] extends Rest ? true : false) : false)
            : false;

/** Any signature, typed or not (a task known only by name is untyped: any fits it, and it fits anywhere). */
export type AnySignature = Signature<any, any, any, any>;
export type ParamsOf<S> = S extends Signature<infer P, any, any, any> ? P : never;
export type ResultOf<S> = S extends Signature<any, infer R, any, any> ? R : never;
type ImmutableOf<S> = S extends Signature<any, any, infer I, any> ? I : never;
/** The last element's type of a tuple (an array's element type). */
export type Last<S extends readonly unknown[]> = S extends readonly [...unknown[], infer L] ? L : S extends readonly (infer E)[] ? E : never;

/** What a step that does not fit is checked against: the compiler names the previous result and the step. */
export interface StepMismatch<Previous, Step> {
  readonly "this step does not take the previous step's result as its only argument": [previous: Previous, step: Step];
}

/** A step that takes `Prev` as its only argument (or is immutable), else StepMismatch. */
export type CheckStep<Prev, S> = TakesResult<ParamsOf<S>, ImmutableOf<S>, Prev> extends true ? S : StepMismatch<Prev, S>;

