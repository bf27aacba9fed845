// `celeriac events`: a live view of the workers and tasks the events describe (like `celery events`),
// or with --dump one line per event as `celery events --dump` prints them. --json for scripts.
import type { Celeriac } from '../app/celeriac.js';
import { maskUrl } from '../app/log.js';
import { EventReceiver } from '../events/receiver.js';
import { State, type TaskState, type WorkerState } from '../events/state.js';
import { Dumper } from '../events/dumper.js';
import { CommandFailed, EX_UNAVAILABLE } from './remote.js';

export interface EventsOptions {
  dump?: boolean;
  json?: boolean;
  /** Seconds between screen refreshes of the live view. */
  frequency: number;
  /** Stop after this many seconds (default: until Ctrl+C). */
  duration?: number;
}

/** Run until a signal (or --duration): the receiver is closed and the app too before it resolves. */
export async function eventsCommand(app: Celeriac, o: EventsOptions): Promise<void> {
  const receiver = new EventReceiver(app, { logger: app.logger });
  let stopView: (() => void) | undefined;
  if (o.dump) {
    const dumper = new Dumper();
    if (!o.json) process.stdout.write('-> evdump: starting capture...\n');
    receiver.on('*', (e) => process.stdout.write((o.json ? JSON.stringify(e) : dumper.format({ ...e })) + '\n'));
  } else {
    const state = new State();
    receiver.on('*', (e) => state.event(e));
    stopView = liveView(state, app, o);
  }
  try {
    await receiver.start();
  } catch (err) {
    stopView?.();
    throw new CommandFailed(`Could not receive events from ${maskUrl(app.brokerUrl)}: ${(err as Error).message}`, EX_UNAVAILABLE);
  }
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    if (o.duration !== undefined) setTimeout(done, o.duration * 1000).unref();
  });
  stopView?.();
  await receiver.close();
}

/** Redraw the view every `frequency` seconds; returns how to stop it (the last frame stays on screen). */
function liveView(state: State, app: Celeriac, o: EventsOptions): () => void {
  const tty = process.stdout.isTTY === true && !o.json;
  const draw = () => {
    if (o.json) return void process.stdout.write(JSON.stringify(snapshot(state)) + '\n');
    const rows = tty ? process.stdout.rows || 40 : 40;
    const frame = render(state, maskUrl(app.brokerUrl), rows);
    process.stdout.write(tty ? `\x1b[H\x1b[2J${frame}` : `${frame}\n`);
  };
  draw();
  const timer = setInterval(draw, o.frequency * 1000);
  return () => {
    clearInterval(timer);
    draw();
  };
}

/** The view's data for --json: workers and the latest tasks. */
export function snapshot(state: State, tasks = 100): Record<string, unknown> {
  return {
    timestamp: Date.now() / 1000,
    events: state.eventCount,
    workers: [...state.workers.values()].map((w) => ({
      hostname: w.hostname, status: w.statusString, active: w.active, processed: w.processed, loadavg: w.loadavg, freq: w.freq,
      last_heartbeat: w.heartbeats[w.heartbeats.length - 1] ?? null, sw_ident: w.sw_ident, sw_ver: w.sw_ver,
    })),
    tasks: state.tasksByTime(tasks).map((t) => ({
      uuid: t.uuid, name: t.name, state: t.state, worker: t.worker?.hostname ?? null, timestamp: t.timestamp, runtime: t.runtime,
      args: t.args, kwargs: t.kwargs, result: t.result, exception: t.exception,
    })),
  };
}

function cell(v: unknown, width: number): string {
  const s = v === null || v === undefined ? '' : String(v);
  return s.length > width ? s.slice(0, width - 1) + '…' : s.padEnd(width);
}

function time(ts: number | null): string {
  return ts ? new Date(ts * 1000).toTimeString().slice(0, 8) : '';
}

function workerLine(w: WorkerState, now: number): string {
  const last = w.heartbeats[w.heartbeats.length - 1];
  const load = w.loadavg ? w.loadavg.map((l) => l.toFixed(2)).join(' ') : '';
  return `${cell(w.hostname, 34)} ${cell(w.statusString, 8)} ${cell(w.active, 7)} ${cell(w.processed, 10)} ${cell(load, 16)} ${last ? `${(now - last).toFixed(1)}s ago` : ''}`;
}

function taskLine(t: TaskState): string {
  const detail = t.state === 'SUCCESS' ? `${t.result ?? ''}${t.runtime != null ? ` (${t.runtime.toFixed(3)}s)` : ''}` : t.exception ?? t.args ?? '';
  return `${cell(t.uuid, 36)} ${cell(t.name, 24)} ${cell(t.worker?.hostname, 20)} ${cell(time(t.timestamp), 8)} ${cell(t.state, 9)} ${cell(detail, 40)}`;
}

/** One frame: the workers, then as many of the latest tasks as fit in `rows` lines. */
export function render(state: State, broker: string, rows: number): string {
  const now = Date.now() / 1000;
  const workers = [...state.workers.values()].sort((a, b) => a.hostname.localeCompare(b.hostname));
  const lines = [
    `celeriac events: ${broker}  (Ctrl+C to quit)  ${new Date().toTimeString().slice(0, 8)}`,
    '',
    `${cell('WORKER', 34)} ${cell('STATUS', 8)} ${cell('ACTIVE', 7)} ${cell('PROCESSED', 10)} ${cell('LOAD', 16)} HEARTBEAT`,
    ...(workers.length ? workers.map((w) => workerLine(w, now)) : ['(no worker seen yet: workers send a heartbeat every 2 s)']),
    '',
    `${cell('UUID', 36)} ${cell('TASK', 24)} ${cell('WORKER', 20)} ${cell('TIME', 8)} ${cell('STATE', 9)} RESULT / INFO`,
  ];
  const room = Math.max(1, rows - lines.length - 2);
  const tasks = state.tasksByTime(room);
  lines.push(...(tasks.length ? tasks.map(taskLine) : ['(no task events yet: start workers with -E, or run `celeriac control enable_events`)']));
  const alive = workers.filter((w) => w.alive).length;
  lines.push('', `Events: ${state.eventCount}  Tasks: ${state.tasks.size}  Workers: ${alive}/${workers.length} online`);
  return lines.join('\n') + '\n';
}

