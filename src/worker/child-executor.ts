// Thread and process pools: each child runs one task at a time; a hard limit or terminate kills the child
// and a fresh one replaces it, so CPU-bound tasks can be stopped for real.
import { Worker as Thread } from 'node:worker_threads';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../app/log.js';
import { WorkerLostError } from '../app/exceptions.js';
import { errorOfOutcome, retryOptionsOf, type Job, type JobHooks } from './job.js';
import { GUARDED_SIGNALS, parseChildMessage, type ChildMessage, type ParentMessage } from './child-protocol.js';
import { PoolClosed, type Executor } from './executor.js';
import { fromCloneable, toCloneable } from '../protocol/cloneable.js';
import { isTypeScriptFile, typeScriptMissing, typeScriptSupport } from '../app/typescript.js';

const ENTRY = new URL(import.meta.url.endsWith('.ts') ? './child-main.ts' : './child-main.js', import.meta.url);
const READY_TIMEOUT_MS = 60_000;

export interface ChildExecutorOptions {
  kind: 'thread' | 'process';
  /** The app module the children import (the -A path). */
  module: string;
  size: number;
  brokerUrl: string;
  backendUrl: string | null;
  maxTasksPerChild?: number | null;
  /** KiB, as Celery's worker_max_memory_per_child: RSS for a process, V8 heap for a thread. */
  maxMemoryPerChild?: number | null;
  logger: Logger;
}

interface Handle {
  id: string;
  send(m: ParentMessage): void;
  /** SIGKILL by default; a process child gets the given signal, a thread is terminated. */
  kill(signal?: NodeJS.Signals): void;
}

interface Running {
  job: Job;
  hooks: JobHooks;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

class Child {
  handle!: Handle;
  ready!: Promise<void>;
  job: Running | null = null;
  tasksRun = 0;
  killReason: Error | null = null;
  retiring = false;
  exited = false;
  isReady = false;
  /** Messages from this child the worker could not read (the first one is logged). */
  unreadable = 0;
  constructor(readonly index: number) {}
}

export class ChildExecutor implements Executor {
  readonly kind: 'thread' | 'process';
  private readonly children = new Set<Child>();
  private readonly waiting: Running[] = [];
  private size: number;
  private closed = false;
  private counter = 0;

  constructor(private readonly o: ChildExecutorOptions) {
    this.kind = o.kind;
    this.size = Math.max(1, o.size);
  }

  async start(): Promise<void> {
    const spawned = [];
    for (let i = 0; i < this.size; i++) spawned.push(this.spawn().ready);
    await Promise.all(spawned);
  }

  /** Children alive now (for stats and tests). */
  get pids(): string[] {
    return [...this.children].filter((c) => !c.exited).map((c) => c.handle.id);
  }

  private spawn(): Child {
    const child = new Child(this.counter++);
    this.children.add(child);
    let onReady!: () => void;
    let onFail!: (e: Error) => void;
    child.ready = new Promise<void>((res, rej) => { onReady = res; onFail = rej; });
    child.ready.catch(() => undefined);
    const timer = setTimeout(() => onFail(new Error(`${this.kind} pool child did not start within ${READY_TIMEOUT_MS / 1000}s`)), READY_TIMEOUT_MS);
    timer.unref();
    const onMessage = (raw: unknown) => {
      const m = parseChildMessage(raw);
      if (!m) return this.unreadable(child, raw);
      try {
        onChildMessage(m);
      } catch (err) {
        this.unreadable(child, raw, err);
      }
    };
    const onChildMessage = (m: ChildMessage) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        child.isReady = true;
        onReady();
        this.pump();
      } else if (m.type === 'initError') {
        clearTimeout(timer);
        onFail(new Error(`${this.kind} pool child could not load ${this.o.module}: ${m.message}`));
        child.handle.kill();
      } else if (m.type === 'done') this.onDone(child, m);
      else if (m.type === 'updateState') {
        if (child.job?.job.key === m.key) void child.job.hooks.updateState(m.state, fromCloneable(m.meta)).catch(() => undefined);
      }
    };
    const onExit = (how: string) => {
      clearTimeout(timer);
      child.exited = true;
      this.children.delete(child);
      onFail(new Error(`${this.kind} pool child exited during start-up (${how})`));
      const r = child.job;
      child.job = null;
      if (r) {
        const reason = child.killReason ?? (this.closed ? new PoolClosed('pool closed') : new WorkerLostError(`Worker exited prematurely: ${how} Job: ${child.index}.`));
        if (!child.killReason && !this.closed) this.o.logger.error(`Process ${this.kind}-${child.handle.id} running ${r.job.taskName}[${r.job.request.id}] exited prematurely: ${how}`);
        r.reject(reason);
      }
      if (!this.closed && this.liveCount() < this.size) this.replace();
    };
    const init: ParentMessage = { type: 'init', module: this.o.module, brokerUrl: this.o.brokerUrl, backendUrl: this.o.backendUrl };
    const ts = tsxFor(this.o.module);
    child.handle = this.kind === 'thread' ? spawnThread(onMessage, onExit, ts) : spawnProcess(onMessage, onExit, ts);
    child.handle.send(init);
    return child;
  }

  /**
   * A message the worker cannot use (task code posting to the pool's channel, or a broken child): logged
   * once per child and ignored. If it claimed to end the running job, that outcome is lost: the child
   * is replaced and the job fails, rather than wait forever.
   */
  private unreadable(child: Child, raw: unknown, err?: unknown): void {
    if (child.unreadable++ === 0) {
      this.o.logger.error(
        `A ${this.kind} pool child (${child.handle.id}) sent a message the worker cannot read: ${preview(raw)}${err ? ` (${(err as Error).message})` : ''}. ` +
          'It was ignored; task code must not post to the pool\'s channel (parentPort.postMessage, process.send). Further unreadable messages from this child are not logged.',
      );
    }
    const r = child.job;
    const claimsDone = typeof raw === 'object' && raw !== null && (raw as { type?: unknown }).type === 'done' && (raw as { key?: unknown }).key === r?.job.key;
    if (r && claimsDone && !child.killReason) {
      child.killReason = new WorkerLostError(`The ${this.kind} pool child reported the outcome of ${r.job.taskName}[${r.job.request.id}] in a form the worker cannot read; the child was replaced.`);
      child.handle.kill();
    }
  }

  private replace(): void {
    const c = this.spawn();
    c.ready.catch((err) => this.o.logger.error(`Could not replace a ${this.kind} pool child: ${(err as Error).message}`));
  }

  private liveCount(): number {
    let n = 0;
    for (const c of this.children) if (!c.exited && !c.retiring) n++;
    return n;
  }

  private onDone(child: Child, m: Extract<ChildMessage, { type: 'done' }>): void {
    const r = child.job;
    if (!r || r.job.key !== m.key) return;
    child.job = null;
    child.tasksRun++;
    const o = m.outcome;
    if (o.kind === 'success') r.resolve(fromCloneable(o.value));
    else if (o.kind === 'retry') r.reject(r.hooks.retry(retryOptionsOf(o.opts)));
    else r.reject(errorOfOutcome(o));
    const maxTasks = this.o.maxTasksPerChild;
    const maxMem = this.o.maxMemoryPerChild;
    if (maxTasks && child.tasksRun >= maxTasks) this.retire(child, `after ${child.tasksRun} tasks (worker_max_tasks_per_child)`);
    else if (maxMem && m.memoryKiB > maxMem) this.retire(child, `using ${m.memoryKiB} KiB > ${maxMem} KiB (worker_max_memory_per_child)`);
    else if (this.liveCount() > this.size) this.retire(child, 'pool shrunk');
    this.pump();
  }

  private retire(child: Child, why: string): void {
    this.o.logger.info(`Replacing ${this.kind} pool child ${child.handle.id} ${why}`);
    child.retiring = true;
    child.handle.kill();
  }

  private pump(): void {
    while (this.waiting.length > 0) {
      const idle = [...this.children].find((c) => !c.exited && !c.retiring && !c.job && c.isReady);
      if (!idle) return;
      const r = this.waiting.shift()!;
      idle.job = r;
      idle.killReason = null;
      // Plain data for the child (the worker's job object refers back to the worker).
      const { key, taskName, args, kwargs, request } = r.job;
      idle.handle.send({ type: 'run', job: { key, taskName, args: toCloneable(args), kwargs: toCloneable(kwargs), request } });
    }
  }

  run(job: Job, hooks: JobHooks): Promise<unknown> {
    if (this.closed) return Promise.reject(new PoolClosed('pool closed'));
    return new Promise((resolve, reject) => {
      this.waiting.push({ job, hooks, resolve, reject });
      this.pump();
    });
  }

  private childRunning(key: string): Child | undefined {
    for (const c of this.children) if (c.job?.job.key === key) return c;
    return undefined;
  }

  interrupt(key: string, reason: Error): void {
    this.childRunning(key)?.handle.send({ type: 'interrupt', key, reason: { name: reason.name, message: reason.message } });
  }

  kill(key: string, reason: Error, signal?: NodeJS.Signals): boolean {
    const c = this.childRunning(key);
    if (!c) {
      const i = this.waiting.findIndex((r) => r.job.key === key);
      if (i < 0) return false;
      this.waiting.splice(i, 1)[0]!.reject(reason);
      return true;
    }
    c.killReason = reason;
    c.handle.kill(signal);
    return true;
  }

  resize(n: number): void {
    n = Math.max(1, n);
    const grow = n - this.size;
    this.size = n;
    for (let i = 0; i < grow; i++) this.replace();
    if (grow < 0) {
      let excess = this.liveCount() - n;
      for (const c of this.children) {
        if (excess <= 0) break;
        if (!c.job && !c.retiring && !c.exited) {
          this.retire(c, 'pool shrunk');
          excess--;
        }
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const r of this.waiting.splice(0)) r.reject(new PoolClosed('pool closed'));
    const exits = [...this.children].map((c) => new Promise<void>((res) => {
      if (c.exited) return res();
      const t = setInterval(() => { if (c.exited) { clearInterval(t); res(); } }, 10);
      c.handle.kill();
    }));
    await Promise.all(exits);
  }
}

/** The start of an unreadable message, for the log. */
function preview(raw: unknown): string {
  let text: string;
  try {
    text = typeof raw === 'string' ? JSON.stringify(raw) : (JSON.stringify(raw) ?? String(raw));
  } catch {
    text = Object.prototype.toString.call(raw);
  }
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}

type Tsx = { api: string; cjsApi: string; loader: string };

/** The tsx loader a child needs: always when we run from source; for a TypeScript app module unless Node strips types. */
function tsxFor(module: string): Tsx | null {
  const fromSource = ENTRY.pathname.endsWith('.ts');
  if (!fromSource && !isTypeScriptFile(module)) return null;
  const support = typeScriptSupport(module);
  if (support.kind === 'tsx') return support;
  if (fromSource || support.kind === 'none') throw new Error(typeScriptMissing(module));
  return null;
}

function spawnThread(onMessage: (m: unknown) => void, onExit: (how: string) => void, tsx: Tsx | null): Handle {
  let code: string;
  if (tsx) {
    // Threads do not inherit --import hooks: register tsx (ESM and CommonJS hooks) before loading the entry.
    const apis = JSON.stringify([tsx.api, tsx.cjsApi]);
    code = `Promise.all(${apis}.map((a) => import(a).then((m) => m.register()))).then(() => import(${JSON.stringify(ENTRY.href)}))`;
  } else {
    code = `import(${JSON.stringify(ENTRY.href)})`;
  }
  const t = new Thread(code, { eval: true });
  t.on('message', onMessage);
  t.on('error', () => undefined); // the exit event that follows reports it
  let exited = false;
  t.on('exit', (c) => { if (!exited) { exited = true; onExit(`exitcode ${c}`); } });
  return {
    id: `thread-${t.threadId}`,
    send: (m) => t.postMessage(m),
    kill: () => void t.terminate(),
  };
}

function spawnProcess(onMessage: (m: unknown) => void, onExit: (how: string) => void, tsx: Tsx | null): Handle {
  const entry = fileURLToPath(ENTRY);
  const execArgv = tsx ? ['--import', tsx.loader] : [];
  const p: ChildProcess = fork(entry, [], { execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  p.on('message', (m) => onMessage(m));
  p.on('error', () => undefined);
  p.on('exit', (code, signal) => onExit(signal ? `signal ${signal}` : `exitcode ${code}`));
  return {
    id: String(p.pid),
    send: (m) => { if (p.connected) p.send(m); },
    // The child ignores the guarded signals (see GUARDED_SIGNALS); a revoke asking for one of them means "stop it".
    kill: (signal = 'SIGKILL') => { if (p.exitCode === null && p.signalCode === null) p.kill(GUARDED_SIGNALS.includes(signal) ? 'SIGKILL' : signal); },
  };
}
