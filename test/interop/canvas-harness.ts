// Canvas interop with real Python Celery: a Python worker on canvasapp (pyapp plus canvas tasks), the
// Python canvas producer (py/canvas_produce.py), and the checks that a result reads the same from
// both languages. Celery 5.6 is found through CELERIAC_TEST_CELERY56, as in the fidelity matrix.
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createLogger, type Celeriac } from '../../src/index.js';
import type { ResultNode } from '../../src/app/result.js';
import { ManagedProcess, PY_DIR, PYTHON, pyEnv, requirePythonCelery, runPythonProducer, type PyAppConfig } from './harness.js';
import { createInteropApp } from './ts/tasks.js';
import { registerCanvasTasks } from './ts/canvas-tasks.js';

export const PYTHON56 = process.env.CELERIAC_TEST_CELERY56 ?? '/opt/celery-5.6/bin/python';
const MAKE_CELERY56 = '/usr/bin/python3 -m venv --system-site-packages /opt/celery-5.6 && /opt/celery-5.6/bin/pip install celery==5.6.3 '
  + '&& /opt/celery-5.6/bin/pip install --no-deps redis==8.1.0';

/** Fail (never skip) with the command that makes it, unless PYTHON56 imports Celery 5.6. */
export function requireCelery56(): void {
  const r = spawnSync(PYTHON56, ['-c', 'import celery, kombu, redis; print(celery.__version__)'], { encoding: 'utf8' });
  const why = r.error ? r.error.message : r.status !== 0 ? (r.stderr || '').trim().split('\n').pop() : !r.stdout.startsWith('5.6') ? `it has Celery ${r.stdout.trim()}` : null;
  if (why) throw new Error(`Celery 5.6 is not usable with ${PYTHON56} (${why}); make it with: ${MAKE_CELERY56} (or set CELERIAC_TEST_CELERY56)`);
}

export interface CanvasEnv extends PyAppConfig {
  /** task_routes of both apps: ts.* to the TS worker's queue, py.* to the Python worker's. */
  routes: Record<string, { queue: string }>;
  /** The interpreter (Debian's Celery 5.2 unless given). */
  python?: string;
}

function env(e: CanvasEnv): NodeJS.ProcessEnv {
  return {
    ...process.env, PYTHONPATH: [PY_DIR, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter), PYTHONUNBUFFERED: '1',
    PYTHONDONTWRITEBYTECODE: '1', ...pyEnv(e), CELERIAC_PY_ROUTES: JSON.stringify(e.routes),
  };
}

/** `python -m celery -A canvasapp worker` on `queues`, resolved once it logged "ready.". */
export async function startCanvasWorker(e: CanvasEnv, queues: string[], concurrency = 4, name = `pycanvas-${process.pid}-${Math.random().toString(36).slice(2, 6)}@interop`): Promise<ManagedProcess> {
  if (!e.python) await requirePythonCelery();
  const args = ['-m', 'celery', '-A', 'canvasapp', 'worker', '-P', 'threads', '-c', String(concurrency), '-Q', queues.join(','), '-n', name,
    '--without-gossip', '--without-mingle', '--without-heartbeat', '-l', 'info'];
  const p = new ManagedProcess(`Python canvas worker ${name}`, e.python ?? PYTHON, args, { cwd: PY_DIR, env: env(e) });
  await p.waitForOutput(/ready\./, 30_000, 'the "ready." log line');
  return p;
}

export interface TsSide {
  app: Celeriac;
  worker: ReturnType<Celeriac['worker']>;
  close(): Promise<void>;
}

/** The TS side: the interop app with the canvas tasks, the same routes, and a worker on e.queue. */
export async function startTsSide(e: CanvasEnv, hostname: string): Promise<TsSide> {
  const app = createInteropApp({ broker: e.broker, backend: e.backend });
  app.logger = createLogger('critical');
  app.configure({ task_routes: e.routes, task_default_queue: e.queue });
  const tasks = registerCanvasTasks(app, e.backend!);
  const worker = app.worker({ queues: [e.queue!], concurrency: 8, hostname, loglevel: 'critical' });
  await worker.start();
  return {
    app, worker,
    close: async () => {
      await worker.close();
      await app.close();
      tasks.close();
    },
  };
}

/** A canvas in canvas_produce.py's notation. */
export type Canvas =
  | { s: string; args?: unknown[]; kwargs?: Record<string, unknown>; options?: Record<string, unknown>; immutable?: boolean; link?: Canvas[]; link_error?: Canvas[] }
  | { chain: Canvas[] } | { group: Canvas[] } | { chord: Canvas[]; body: Canvas }
  | { map: Canvas; it: unknown[] } | { starmap: Canvas; it: unknown[][] } | { chunks: Canvas; it: unknown[][]; n: number };

export const s = (name: string, args: unknown[] = [], more: Partial<Extract<Canvas, { s: string }>> = {}): Canvas => ({ s: name, args, ...more });

export interface PyCanvasCall {
  canvas: Canvas;
  options?: Record<string, unknown>;
  stamp?: Record<string, unknown>;
  /** Wait for the result (default true). */
  wait?: boolean;
}

export interface PyError { type: string; module: string; args: unknown[]; repr: string }

export interface PyOutcome {
  id: string;
  kind: 'task' | 'group';
  ids: string[] | null;
  parents: string[];
  state: string | string[];
  result: unknown;
  error: PyError | null;
  children: string[] | null;
  /** A task result read by id alone (no parents to look at), as any other client reads it. */
  by_id?: { result: unknown; error: PyError | null };
}

/** Apply canvases built by Python Celery and wait for each (as canvas.apply_async().get()). */
export async function runCanvasProducer(e: CanvasEnv, calls: PyCanvasCall[], timeoutS = 60): Promise<PyOutcome[]> {
  if (!e.python) await requirePythonCelery();
  const spec = JSON.stringify({ calls, timeout: timeoutS });
  const p = new ManagedProcess('Python canvas producer', e.python ?? PYTHON, [path.join(PY_DIR, 'canvas_produce.py'), spec], { cwd: PY_DIR, env: env(e) });
  const code = await new Promise<number | null>((resolve) => p.child.once('close', (c) => resolve(c)));
  const last = p.logs.trim().split('\n').reverse().find((l) => l.startsWith('['));
  if (code !== 0 || !last) throw new Error(`canvas_produce.py failed (exit ${code})\n${p.tail()}`);
  return JSON.parse(last) as PyOutcome[];
}

/** What a result gave in TypeScript: its value or error, and its state(s). */
export interface TsOutcome {
  value?: unknown;
  error?: Error;
  state: string | string[];
}

export async function readInTs(r: ResultNode, timeout = 30_000): Promise<TsOutcome> {
  const out: TsOutcome = { state: '' };
  try {
    out.value = await r.get({ timeout });
  } catch (err) {
    out.error = err as Error;
  }
  if (r.isGroup) {
    await Promise.all(r.results.map((m) => m.get({ timeout, propagate: false }).catch(() => undefined)));
    out.state = await Promise.all(r.results.map((m) => (m as { state(): Promise<string> }).state()));
  } else out.state = await r.state();
  return out;
}

/** A Python outcome read again by id in TypeScript: the same value, state and error type. */
export async function assertSameInTs(app: Celeriac, py: PyOutcome, what: string): Promise<TsOutcome> {
  const r: ResultNode = py.kind === 'group' ? app.GroupResult(py.id, py.ids!.map((id) => app.AsyncResult(id))) : app.AsyncResult(py.id);
  const ts = await readInTs(r);
  assert.deepEqual(ts.state, py.state, `${what}: state read in TS`);
  const { result, error } = py.by_id ?? py;
  if (error) {
    assert.ok(ts.error, `${what}: TS get() rejects as Python's did (${error.repr})`);
    assert.equal(ts.error.name, error.type, `${what}: error type read in TS`);
    if (error.args.length === 1 && typeof error.args[0] === 'string') assert.equal(ts.error.message, error.args[0], `${what}: error message read in TS`);
  } else {
    assert.equal(ts.error, undefined, `${what}: TS get() resolves as Python's did: ${String(ts.error)}`);
    assert.deepEqual(ts.value, result, `${what}: value read in TS`);
  }
  return ts;
}

/** A TS outcome read again by id in Python (AsyncResult(id).get()): the same value, state and error type, for each id. */
export async function assertSameInPython(e: CanvasEnv, items: { id: string; ts: { value?: unknown; error?: Error; state: string }; what: string }[]): Promise<void> {
  const read = await runPythonProducer(e, items.map((i) => ({ get: i.id })), 30);
  items.forEach((item, k) => {
    const py = read[k]!;
    assert.equal(py.state, item.ts.state, `${item.what}: state read in Python`);
    if (item.ts.error) {
      assert.ok(py.error, `${item.what}: Python get() raises as TS's did (${item.ts.error.name}: ${item.ts.error.message})`);
      assert.equal(py.error.type, item.ts.error.name, `${item.what}: error type read in Python`);
    } else {
      assert.equal(py.error, null, `${item.what}: Python get() returns as TS's did: ${JSON.stringify(py.error)}`);
      assert.deepEqual(py.result, item.ts.value, `${item.what}: value read in Python`);
    }
  });
}
