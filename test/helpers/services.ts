// Where the test services are, and a loud failure (never a skip) when one is not answering.
import net from 'node:net';

export const REDIS_URL = process.env.CELERIAC_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const AMQP_URL = process.env.CELERIAC_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672//';

const HOW_TO_START: Record<string, string> = {
  redis: 'start it with: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no (or set CELERIAC_TEST_REDIS_URL)',
  amqp: 'start it with: rabbitmq-server -detached (or set CELERIAC_TEST_AMQP_URL)',
};

function hostPort(url: string, defaultPort: number): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname || '127.0.0.1', port: Number(u.port || defaultPort) };
}

function probe(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => { s.destroy(); resolve(ok); };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

async function require(kind: 'redis' | 'amqp', url: string, port: number): Promise<void> {
  const { host, port: p } = hostPort(url, port);
  if (!(await probe(host, p))) {
    throw new Error(`${kind === 'redis' ? 'Redis' : 'RabbitMQ'} is not answering at ${host}:${p}; ${HOW_TO_START[kind]}`);
  }
}

/** Fail the test (with how to fix it) unless Redis answers. */
export const requireRedis = (): Promise<void> => require('redis', REDIS_URL, 6379);
/** Fail the test (with how to fix it) unless RabbitMQ answers. */
export const requireRabbit = (): Promise<void> => require('amqp', AMQP_URL, 5672);

/** A Redis URL on the test server with the given database number. */
export function redisDb(db: number): string {
  const u = new URL(REDIS_URL);
  u.pathname = `/${db}`;
  return u.toString();
}

/** A name no other test (or parallel run) uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll until fn() is truthy or the deadline passes (then throw with the message). */
export async function eventually<T>(fn: () => Promise<T> | T, what: string, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(intervalMs);
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
