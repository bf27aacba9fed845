// The Celeriac side of the interop tests: tasks Python calls, and tasks shared with test/interop/py/pyapp.py.
import { Celeriac, type TaskContext } from '../../../src/index.js';

export interface InteropAppConfig {
  broker: string;
  backend?: string;
  visibilityTimeout?: number;
  acksLate?: boolean;
  /** interop.slow never finishes: a worker that holds its messages until it is killed. */
  hold?: boolean;
}

/** A JS error class with no Python counterpart: Python should see an exception of this name. */
export class QuotaExceeded extends Error {
  override name = 'QuotaExceeded';
}

type BoundTask = TaskContext;

function plain(v: unknown): unknown {
  return v instanceof Date ? v.toISOString() : v;
}

// The config is not called `c`: esbuild (tsx) renames a handler parameter that shadows an outer name
// (c → c2), and Celeriac reads kwargs names from the handler's source.
export function createInteropApp(cfg: InteropAppConfig): Celeriac {
  const settings: Record<string, unknown> = { broker: cfg.broker, backend: cfg.backend ?? cfg.broker, result_expires: 3600 };
  if (cfg.acksLate) settings.task_acks_late = true;
  if (cfg.visibilityTimeout != null) settings.broker_transport_options = { visibility_timeout: cfg.visibilityTimeout };
  const app = new Celeriac('interop', settings);

  app.task('ts.add', (x: number, y: number) => x + y);
  app.task('ts.mul', (x: number, y: number) => x * y);
  // Python kwargs map onto these parameters by name.
  app.task('ts.kw', (a: number, b: number, c: string) => ({ a, b, c }));
  // The contract's bind example: unknown kwargs are visible through task.request.kwargs.
  app.task('ts.greet', (task: BoundTask, name: string) => `${task.request.kwargs.greeting ?? 'hi'} ${name}`, { bind: true });
  app.task('ts.type_error', (msg: string) => { throw new TypeError(msg); });
  app.task('ts.quota', () => { throw new QuotaExceeded('over quota'); });
  app.task('ts.echo_request', (task: BoundTask, ...args: unknown[]) => {
    const r = task.request as unknown as Record<string, unknown>;
    const pick = ['id', 'task', 'retries', 'eta', 'expires', 'rootId', 'parentId', 'origin', 'kwargs', 'args', 'headers', 'deliveryInfo', 'timelimit', 'correlationId', 'replyTo'];
    const out: Record<string, unknown> = { lang: 'ts', handlerArgs: args };
    for (const k of pick) if (r[k] !== undefined) out[k] = plain(r[k]);
    return out;
  }, { bind: true });
  app.task('interop.slow', async (task: BoundTask, tag: string, seconds: number) => {
    if (cfg.hold) await new Promise(() => { /* held until the process is killed */ });
    await new Promise((r) => setTimeout(r, seconds * 1000));
    return { lang: 'ts', tag, redelivered: task.request.deliveryInfo?.redelivered === true };
  }, { bind: true });
  app.task('interop.flaky', (task: BoundTask, tag: string) => ({ lang: 'ts', tag, retries: task.request.retries }), { bind: true });
  return app;
}

/** Configuration from the CELERIAC_TS_* variables that test/interop/harness.ts sets. */
export function configFromEnv(env: NodeJS.ProcessEnv): InteropAppConfig {
  const broker = env.CELERIAC_TS_BROKER;
  if (!broker) throw new Error('CELERIAC_TS_BROKER is not set (the interop harness sets it)');
  return {
    broker,
    backend: env.CELERIAC_TS_BACKEND || broker,
    visibilityTimeout: env.CELERIAC_TS_VISIBILITY_TIMEOUT ? Number(env.CELERIAC_TS_VISIBILITY_TIMEOUT) : undefined,
    acksLate: env.CELERIAC_TS_ACKS_LATE === '1',
    hold: env.CELERIAC_TS_HOLD === '1',
  };
}
