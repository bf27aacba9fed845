// The canvas: signatures and the workflows built from them (chain, group, chord, map, starmap, chunks),
// with the typed builders. Importing this module registers every signature type for fromDict.
import { Signature, type SignatureDict } from './signature.js';
import { Chain } from './chain.js';
import { Group } from './group.js';
import { Chord } from './chord.js';
import { Chunks, XMap, XStarmap } from './map.js';
import type { AnySignature, CheckStep, Last, ParamsOf, ResultOf } from './types.js';

export { Signature, maybeSignature, descend, type SignatureDict, type FreezeOptions, type PartialSignature } from './signature.js';
export { Chain } from './chain.js';
export { Group } from './group.js';
export { Chord } from './chord.js';
export { XMap, XStarmap, Chunks } from './map.js';
export { Dispatch, currentCallContext } from './dispatch.js';
export type { CanvasHost, CanvasTask, CallContext, Suffix, Remaining, TakesResult, AnySignature, ParamsOf, ResultOf, StepMismatch, CheckStep } from './types.js';

/** The steps as given when each fits the one before it; a misfit becomes StepMismatch, which fails the call. */
export type CheckChain<S extends readonly unknown[], Prev = unknown, First extends boolean = true> =
  number extends S['length'] ? S
    : S extends readonly [infer H, ...infer T] ? [First extends true ? H : CheckStep<Prev, H>, ...CheckChain<T, ResultOf<H>, false>]
      : [];

type HeaderResults<H> = H extends Group<infer Rs, any> ? Rs : H extends readonly (infer S)[] ? ResultOf<S>[] : never;
type GroupResults<S extends readonly unknown[]> = { -readonly [K in keyof S]: ResultOf<S[K]> };

function appOf(sigs: readonly unknown[]) {
  return sigs.find((s): s is Signature => s instanceof Signature && s.app !== undefined)?.app;
}

/**
 * Tasks one after another, each applied with the previous one's result as its first argument (Celery's
 * chain). Typed steps must fit: chain(add.s(2, 2), add.s(4), toText.s()) compiles only if toText takes a number.
 */
export function chain<S extends AnySignature[]>(...steps: S & NoInfer<CheckChain<S>>): Chain<ParamsOf<S[0]>, ResultOf<Last<S>>> {
  return new Chain(steps, {}, appOf(steps));
}

/** Tasks applied in parallel under one group id (Celery's group); get() gives their results in order. */
export function group<S extends AnySignature[]>(...tasks: S): Group<GroupResults<S>>;
export function group<S extends AnySignature>(tasks: Iterable<S>): Group<ResultOf<S>[]>;
export function group(...tasks: unknown[]): Group {
  const list = tasks.length === 1 && !(tasks[0] instanceof Signature) && Symbol.iterator in Object(tasks[0]) ? [...(tasks[0] as Iterable<Signature>)] : (tasks as Signature[]);
  return new Group(list, {}, appOf(list));
}

/**
 * A header group, then the body applied with the list of the header's results, in header order (Celery's
 * chord). The body's first parameter must take that list.
 */
export function chord<H extends readonly AnySignature[] | Group<any, any>, B extends AnySignature>(header: H, body: B & NoInfer<CheckStep<HeaderResults<H>, B>>): Chord<ResultOf<B>> {
  const members = header instanceof Group ? header.tasks : [...(header as readonly Signature[])];
  return new Chord(header instanceof Group ? header : members, body, {}, appOf([...members, body]));
}

/** celery.map: call the task in one worker for each item of `it` (Celery's xmap). */
export function xmap<R>(task: Signature<any, R, any> | SignatureDict, it: Iterable<unknown>): XMap<R> {
  return new XMap<R>(task, it);
}

/** celery.starmap: call the task with each item of `it` as its arguments (Celery's xstarmap). */
export function xstarmap<R>(task: Signature<any, R, any> | SignatureDict, it: Iterable<unknown[]>): XStarmap<R> {
  return new XStarmap<R>(task, it);
}

/** Split `it` into chunks of `n`, one celery.starmap task each, as one group (Celery's chunks). */
export function chunks<R>(task: Signature<any, R, any> | SignatureDict, it: Iterable<unknown[]>, n: number): Chunks<R> {
  return new Chunks<R>(task, it, n);
}
