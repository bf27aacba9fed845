// Messages between the worker and its thread/process children.
import type { Job, WireOutcome } from './job.js';

export type ParentMessage =
  | { type: 'init'; module: string; brokerUrl?: string; backendUrl?: string | null }
  | { type: 'run'; job: Job }
  | { type: 'interrupt'; key: string; reason: { name: string; message: string } };

export type ChildMessage =
  | { type: 'ready'; pid: number; tasks: string[] }
  | { type: 'initError'; message: string }
  | { type: 'done'; key: string; outcome: WireOutcome; memoryKiB: number }
  | { type: 'updateState'; key: string; state: string; meta: unknown };
