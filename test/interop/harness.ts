// Drives real Python Celery (Debian's /usr/bin/python3) and Celeriac worker processes for the interop tests.
// Broker and backend URLs are parameters, so the same harness serves Redis and AMQP test files.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { sleep } from '../helpers/services.js';

/** Debian's interpreter: the python3 first on PATH may be another one without celery. */
export const PYTHON = process.env.CELERIAC_TEST_PYTHON ?? '/usr/bin/python3';
export const PY_DIR = fileURLToPath(new URL('./py/', import.meta.url));
export const TS_DIR = fileURLToPath(new URL('./ts/', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const INSTALL_HINT = 'install with: apt-get install -y python3-celery python3-redis python3-amqp python3-msgpack';
/** What every interop test imports; the fidelity matrix also needs amqp and msgpack. */
const BASE_MODULES = 'celery, kombu, redis';
const MATRIX_MODULES = 'celery, kombu, redis, amqp, msgpack';

/** Celery 5.6.3 in a virtualenv beside Debian's 5.2.6 (the fidelity matrix runs against both). */
export const PYTHON56 = process.env.CELERIAC_TEST_CELERY56 ?? '/opt/celery-5.6/bin/python';
const MAKE_CELERY56 = 'apt-get install -y python3-venv python3-msgpack python3-amqp && /usr/bin/python3 -m venv --system-site-packages /opt/celery-5.6 '
  + '&& /opt/celery-5.6/bin/pip install celery==5.6.3 && /opt/celery-5.6/bin/pip install --no-deps redis==8.1.0';

const checked = new Map<string, Promise<void>>();

/** Fail (never skip) with how to fix it unless `python` imports the modules (and has that Celery version). */
function requireCelery(python: string, version: string | null, hint: string, modules = BASE_MODULES): Promise<void> {
  const key = `${python} ${version} ${modules}`;
  let p = checked.get(key);
  if (!p) {
    p = (async () => {
      const r = spawnSync(python, ['-c', `import ${modules}; print(celery.__version__)`], { encoding: 'utf8' });
      const why = r.error ? r.error.message : r.status !== 0 ? (r.stderr || '').trim().split('\n').pop() : null;
      if (why) throw new Error(`Python Celery is not usable with ${python} (${why}); ${hint}`);
      const got = r.stdout.trim();
      if (version && !got.startsWith(version)) throw new Error(`${python} has Celery ${got}, not ${version}; ${hint}`);
    })();
    checked.set(key, p);
  }
  return p;
}

/** Debian's Celery 5.2 at PYTHON (CELERIAC_TEST_PYTHON); with `matrix`, also amqp and msgpack. */
export function requirePythonCelery(matrix = false): Promise<void> {
  return requireCelery(PYTHON, null, INSTALL_HINT, matrix ? MATRIX_MODULES : BASE_MODULES);
}

/** Celery 5.6.3 at PYTHON56 (CELERIAC_TEST_CELERY56, default /opt/celery-5.6/bin/python), with amqp and msgpack. */
export function requireCelery56(): Promise<void> {
  return requireCelery(PYTHON56, '5.6', `make it with: ${MAKE_CELERY56} (or set CELERIAC_TEST_CELERY56 to a Python with Celery 5.6)`, MATRIX_MODULES);
}

/** Environment for test/interop/py/pyapp.py. */
export interface PyAppConfig {
  broker: string;
  backend?: string;
  /** task_default_queue of the Python app (where produce.py sends by default). */
  queue?: string;
  /** broker_transport_options.visibility_timeout, seconds. */
  visibilityTimeout?: number;
  acksLate?: boolean;
  protocol?: 1 | 2;
  /** Queue interop.flaky sends its retry to. */
  retryQueue?: string;
  /** interop.slow blocks for an hour: a worker that holds its messages until it is killed. */
  hold?: boolean;
}

export function pyEnv(c: PyAppConfig): Record<string, string> {
  const env: Record<string, string> = { CELERIAC_PY_BROKER: c.broker, CELERIAC_PY_BACKEND: c.backend ?? c.broker };
  if (c.queue) env.CELERIAC_PY_QUEUE = c.queue;
  if (c.visibilityTimeout != null) env.CELERIAC_PY_VISIBILITY_TIMEOUT = String(c.visibilityTimeout);
  if (c.acksLate) env.CELERIAC_PY_ACKS_LATE = '1';
  if (c.protocol) env.CELERIAC_PY_PROTOCOL = String(c.protocol);
  if (c.retryQueue) env.CELERIAC_PY_RETRY_QUEUE = c.retryQueue;
  if (c.hold) env.CELERIAC_PY_HOLD = '1';
  return env;
}

export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const pythonPath = [PY_DIR, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter);
  return { ...process.env, PYTHONPATH: pythonPath, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1', ...extra };
}

// Every process group we started, so a crashed test run still kills them (and nothing else).
const started = new Set<number>();
process.on('exit', () => {
  for (const pid of started) {
    try { process.kill(-pid, 'SIGKILL'); } catch { /* already gone */ }
  }
});

/** A child process (Python worker or Celeriac worker) in its own process group, with its output collected. */
export class ManagedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  private out = '';
  private exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  constructor(readonly label: string, command: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }) {
    // detached: the child leads a new process group, so a kill reaches the children it forks and nobody else.
    this.child = spawn(command, args, { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    if (this.child.pid === undefined) throw new Error(`Could not start ${label}: ${command} ${args.join(' ')}`);
    this.pid = this.child.pid;
    started.add(this.pid);
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => { this.out += d; });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => { this.out += d; });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        started.delete(this.pid);
        resolve(code);
      });
      this.child.once('error', () => resolve(null));
    });
  }

  /** Everything the process wrote on stdout and stderr so far. */
  get logs(): string {
    return this.out;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Wait until the output matches; fail with the log tail if it exits or times out first. */
  async waitForOutput(pattern: RegExp, timeoutMs = 20_000, what = String(pattern)): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.out.match(pattern);
      if (m) return m;
      if (!this.running) throw new Error(`${this.label} exited (code ${this.exitCode}) before ${what}. Output:\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`${this.label}: timed out after ${timeoutMs} ms waiting for ${what}. Output:\n${this.tail()}`);
      await sleep(50);
    }
  }

  /** Wait until at least n output lines match the pattern. */
  async waitForLines(pattern: RegExp, n: number, timeoutMs = 20_000, what = `${n} lines matching ${pattern}`): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.count(pattern) < n) {
      if (!this.running) throw new Error(`${this.label} exited (code ${this.exitCode}) before ${what}. Output:\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`${this.label}: timed out after ${timeoutMs} ms waiting for ${what}. Output:\n${this.tail()}`);
      await sleep(50);
    }
  }

  /** Count of output lines matching the pattern. */
  count(pattern: RegExp): number {
    return this.out.split('\n').filter((l) => pattern.test(l)).length;
  }

  tail(lines = 60): string {
    return this.out.split('\n').slice(-lines).join('\n');
  }

  /** SIGKILL the whole group at once: nothing gets to clean up. */
  async kill(): Promise<void> {
    if (!this.running) return;
    try { process.kill(-this.pid, 'SIGKILL'); } catch { /* gone */ }
    await this.exited;
  }

  /** SIGTERM (warm shutdown), then SIGKILL if it has not exited after graceMs. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    try { process.kill(-this.pid, 'SIGTERM'); } catch { /* gone */ }
    const done = await Promise.race([this.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!done) await this.kill();
  }
}

export interface PythonWorkerOptions extends PyAppConfig {
  queues: string[];
  /** Interpreter (default PYTHON, Debian's Celery 5.2) and app module (default pyapp, configured by PyAppConfig). */
  python?: string;
  app?: string;
  /** Extra environment, for an app other than pyapp. */
  env?: Record<string, string>;
  /** -n, e.g. "py1@interop". */
  name?: string;
  pool?: 'solo' | 'threads' | 'prefork';
  concurrency?: number;
  loglevel?: string;
  readyTimeoutMs?: number;
  /** Send worker heartbeats (default false: --without-heartbeat). */
  heartbeat?: boolean;
  /** More worker flags, e.g. ['-E'] for task events. */
  extraArgs?: string[];
  /** Sync with the other nodes at start (Celery's mingle; default false: --without-mingle). */
  mingle?: boolean;
}

/** Start `python3 -m celery -A pyapp worker` and resolve once it logged "ready.". */
export async function startPythonWorker(o: PythonWorkerOptions): Promise<ManagedProcess> {
  if (o.python === undefined || o.python === PYTHON) await requirePythonCelery();
  const name = o.name ?? `py-${process.pid}-${Math.random().toString(36).slice(2, 6)}@interop`;
  const args = [
    '-m', 'celery', '-A', o.app ?? 'pyapp', 'worker',
    '-P', o.pool ?? 'threads', '-c', String(o.concurrency ?? 4),
    '-Q', o.queues.join(','), '-n', name,
    '--without-gossip', ...(o.mingle ? [] : ['--without-mingle']), ...(o.heartbeat ? [] : ['--without-heartbeat']),
    '-l', o.loglevel ?? 'info', ...(o.extraArgs ?? []),
  ];
  const p = new ManagedProcess(`Python worker ${name}`, o.python ?? PYTHON, args, { cwd: PY_DIR, env: childEnv({ ...pyEnv(o), ...o.env }) });
  await p.waitForOutput(/ready\./, o.readyTimeoutMs ?? 30_000, 'the "ready." log line');
  return p;
}

/** Run a Python script of test/interop/py with one JSON argument; return its last stdout line, parsed. */
export async function runPythonScript<T>(python: string, script: string, arg: unknown, env: Record<string, string>): Promise<T> {
  const p = new ManagedProcess(`Python ${script}`, python, [path.join(PY_DIR, script), JSON.stringify(arg)], { cwd: PY_DIR, env: childEnv(env) });
  // 'close', not 'exit': the last line may still be in the pipe when the process exits.
  const code = await new Promise<number | null>((resolve) => p.child.once('close', (c) => resolve(c)));
  const last = p.logs.trim().split('\n').reverse().find((l) => /^[[{]/.test(l));
  if (code !== 0 || last === undefined) throw new Error(`${script} failed (exit ${code})\n${p.tail()}`);
  return JSON.parse(last) as T;
}

export interface ProducedCall {
  id: string;
  state: string | null;
  result: unknown;
  error: null | { type: string; module: string; args: unknown[]; repr: string; is_builtin: boolean };
}

export type PyCall = PySend | { get: string };

export interface PySend {
  task: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  /** send_task options: queue, priority, countdown, expires, task_id, headers, shadow, time_limit… */
  options?: Record<string, unknown>;
  /** Wait for the result with AsyncResult.get() (default true). */
  wait?: boolean;
}

/** Send tasks from Python (test/interop/py/produce.py) and return what each .get() gave or raised. */
export async function runPythonProducer(config: PyAppConfig, calls: PyCall[], timeoutS = 30): Promise<ProducedCall[]> {
  await requirePythonCelery();
  const spec = JSON.stringify({ calls, timeout: timeoutS });
  const p = new ManagedProcess('Python producer', PYTHON, [path.join(PY_DIR, 'produce.py'), spec], { cwd: PY_DIR, env: childEnv(pyEnv(config)) });
  const code = await new Promise<number | null>((resolve) => p.child.once('exit', (c) => resolve(c)));
  const lines = p.logs.trim().split('\n');
  const last = lines[lines.length - 1] ?? '';
  if (code !== 0 || !last.startsWith('[')) {
    throw new Error(`Python producer failed (exit ${code}) for ${spec}\n${p.tail()}`);
  }
  return JSON.parse(last) as ProducedCall[];
}

/** Environment for test/interop/ts/worker.ts. */
export interface TsWorkerOptions {
  broker: string;
  backend?: string;
  queues: string[];
  hostname?: string;
  concurrency?: number;
  visibilityTimeout?: number;
  acksLate?: boolean;
  /** interop.slow never finishes: the worker holds its messages until it is killed. */
  hold?: boolean;
  /** Run the worker through the CLI (src/cli/main.ts) instead of the API script. */
  viaCli?: boolean;
  readyTimeoutMs?: number;
}

/** Start a Celeriac worker in a child process; resolves once it reports ready. */
export async function startTsWorker(o: TsWorkerOptions): Promise<ManagedProcess> {
  const hostname = o.hostname ?? `ts-${process.pid}-${Math.random().toString(36).slice(2, 6)}@interop`;
  const env: Record<string, string> = {
    CELERIAC_TS_BROKER: o.broker,
    CELERIAC_TS_BACKEND: o.backend ?? o.broker,
    CELERIAC_TS_QUEUES: o.queues.join(','),
    CELERIAC_TS_HOSTNAME: hostname,
    CELERIAC_TS_CONCURRENCY: String(o.concurrency ?? 4),
  };
  if (o.visibilityTimeout != null) env.CELERIAC_TS_VISIBILITY_TIMEOUT = String(o.visibilityTimeout);
  if (o.acksLate) env.CELERIAC_TS_ACKS_LATE = '1';
  if (o.hold) env.CELERIAC_TS_HOLD = '1';
  let args: string[];
  if (o.viaCli) {
    args = ['--import', 'tsx', path.join(REPO_ROOT, 'src/cli/main.ts'), '-A', path.join(TS_DIR, 'app.ts'), '-b', o.broker,
      '--result-backend', o.backend ?? o.broker, 'worker', '-c', String(o.concurrency ?? 4), '-Q', o.queues.join(','), '-n', hostname, '-l', 'info'];
  } else {
    args = ['--import', 'tsx', path.join(TS_DIR, 'worker.ts')];
  }
  const p = new ManagedProcess(`Celeriac worker ${hostname}`, process.execPath, args, { cwd: REPO_ROOT, env: childEnv(env) });
  await p.waitForOutput(o.viaCli ? /@\S+ ready\.$/m : /^celeriac-interop-worker ready$/m, o.readyTimeoutMs ?? 30_000, 'the worker to be ready');
  return p;
}
