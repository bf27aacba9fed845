// Messages between the worker and its thread/process children.
import type { Job, WireOutcome } from './job.js';

/**
 * Process children ignore these, so a signal sent to the worker's whole process group (Ctrl+C, systemd's
 * control-group kill) cannot stop running tasks during a warm shutdown; the worker stops children itself.
 */
export const GUARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGQUIT'];

export type ParentMessage =
  | { type: 'init'; module: string; brokerUrl?: string; backendUrl?: string | null }
  | { type: 'run'; job: Job }
  | { type: 'interrupt'; key: string; reason: { name: string; message: string } };

export type ChildMessage =
  | { type: 'ready'; pid: number; tasks: string[] }
  | { type: 'initError'; message: string }
  | { type: 'done'; key: string; outcome: WireOutcome; memoryKiB: number }
  | { type: 'updateState'; key: string; state: string; meta: unknown };
