// Creating ioredis clients with the settings a queue needs, and a clear error when Redis is unreachable.
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { Redis, type RedisOptions } from 'ioredis';
import type { TransportOptions } from '../../app/settings.js';
import type { RedisTarget } from './url.js';
import { unrefSocket } from '../../app/keep-alive.js';

export class BrokerConnectionError extends Error {
  override name = 'OperationalError';
  /** True when retrying cannot help (wrong password, missing database, TLS refused). */
  constructor(message: string, readonly permanent = false) {
    super(message);
  }
}

/** Redis replies and socket errors that another attempt would meet again. */
const PERMANENT = /WRONGPASS|NOAUTH|invalid password|invalid username|NOPERM|certificate|self[- ]signed|ERR_SSL|wrong version number/i;

export interface ClientRole {
  /** A connection that issues blocking reads: never give up on a command, let our watchdog decide. */
  blocking?: boolean;
  /** Fail commands instead of queueing them while disconnected. */
  failFast?: boolean;
  /** Seconds to keep retrying the first connection (broker_connection_timeout-ish). */
  connectTimeout?: number;
  /** Longest blocking read this connection issues, in seconds (its socket timeout must exceed it). */
  blockSeconds?: number;
  /** Unref the socket after each connect: idle, it does not keep the process alive (app/keep-alive.ts). */
  idleExit?: boolean;
}

const DEFAULT_SOCKET_TIMEOUT_MS = 15_000;

function retryStrategy(times: number): number {
  return Math.min(2000, 50 * 2 ** Math.min(times, 6)) + Math.floor(Math.random() * 100);
}

/**
 * Hold this client's socket writes until the current tick's callbacks and promise jobs have run,
 * then send them as one write: a burst of publishes leaves together, a lone one leaves at once
 * (within the same turn of the event loop).
 */
export function writeTogether(client: Redis): void {
  const stream = (client as unknown as { stream?: Writable }).stream;
  if (!stream || client.status !== 'ready' || stream.writableCorked > 0) return;
  stream.cork();
  process.nextTick(() => stream.uncork());
}

const REFUSED = /^(READONLY|LOADING|MASTERDOWN|NOREPLICAS)/;
/** How long refused commands are resent before they fail with Redis' error: a failover ends well within it. */
export const REFUSED_RESEND_MS = 60_000;
/** Refusals further apart than this belong to separate outages (a resend comes at most every ~2 s). */
const REFUSED_STREAK_GAP_MS = 10_000;

/**
 * After a Sentinel failover the old master turns replica (READONLY) or, with min-replicas-to-write,
 * refuses writes once its replica left (NOREPLICAS): reconnect through the sentinels and resend (2).
 * A server that goes on refusing for REFUSED_RESEND_MS (a failover that never completes, a master
 * whose replicas are gone for good) is not waited on forever: from then on the command is failed
 * with Redis' error (1: reconnect without resending), until the refusals stop.
 */
export function refusedCommandPolicy(limitMs = REFUSED_RESEND_MS, now: () => number = Date.now): (err: Error) => 1 | 2 | false {
  let since = 0;
  let last = -Infinity;
  return (err) => {
    if (!REFUSED.test(err.message)) return false;
    const t = now();
    if (t - last > REFUSED_STREAK_GAP_MS) since = t;
    last = t;
    return t - since < limitMs ? 2 : 1;
  };
}

export function clientOptions(target: RedisTarget, transport: TransportOptions, role: ClientRole = {}): RedisOptions {
  // Without a socket timeout a half-open connection (dead NAT, partition) hangs a command forever:
  // when none is configured, a reply silent for 15 s marks the socket dead and ioredis reconnects.
  let socketTimeout = transport.socket_timeout != null && Number(transport.socket_timeout) > 0 ? Number(transport.socket_timeout) * 1000 : DEFAULT_SOCKET_TIMEOUT_MS;
  // A blocking read legitimately stays silent for its whole timeout: never count that as a dead socket.
  if (socketTimeout !== undefined && role.blocking) socketTimeout = Math.max(socketTimeout, (role.blockSeconds ?? 1) * 1000 + 3000);
  const sentinel = target.options.sentinels !== undefined;
  return {
    ...target.options,
    protocol: 2,
    lazyConnect: true,
    // Commands are written as they are issued; publishes group themselves with writeTogether().
    // ioredis' auto-pipelining waits for setImmediate and builds a pipeline per batch: it cost an
    // awaited publish about a third of its speed.
    enableAutoPipelining: false,
    maxRetriesPerRequest: role.blocking ? null : 20,
    enableOfflineQueue: !role.failFast,
    retryStrategy,
    reconnectOnError: refusedCommandPolicy(),
    ...(sentinel ? { failoverDetector: true, sentinelRetryStrategy: retryStrategy } : {}),
    connectTimeout: target.options.connectTimeout ?? (role.connectTimeout ?? 4) * 1000,
    ...(socketTimeout ? { socketTimeout } : {}),
    keepAlive: 30_000,
  } as RedisOptions;
}

/**
 * health_check_interval (redis-py checks a connection idle that long before using it): we PING on
 * that period and drop the connection when no reply comes, so a half-open socket is found early.
 */
export function startHealthCheck(client: Redis, seconds: number | undefined, onDead: (why: string) => void): () => void {
  const s = Number(seconds ?? 0);
  if (!(s > 0)) return () => undefined;
  let inFlight = false;
  const timer = setInterval(() => {
    if (inFlight || client.status !== 'ready') return;
    inFlight = true;
    let answered = false;
    const deadline = setTimeout(() => {
      if (answered) return;
      onDead(`no reply to PING within ${s}s (health_check_interval)`);
      // Destroy the socket (not a polite QUIT, which a dead peer never answers); ioredis reconnects.
      (client as unknown as { stream?: { destroy(): void } }).stream?.destroy();
    }, s * 1000);
    client.ping().then(
      () => { answered = true; },
      () => { answered = true; },
    ).finally(() => {
      clearTimeout(deadline);
      inFlight = false;
    });
  }, s * 1000);
  timer.unref();
  client.once('end', () => clearInterval(timer));
  return () => clearInterval(timer);
}

/** max_connections: Celeriac opens a fixed set of connections; refuse to open more than allowed. */
export class ConnectionBudget {
  private used = 0;
  constructor(private readonly max: number | undefined, private readonly setting: string) {}

  take(what: string): void {
    if (this.max != null && this.max > 0 && this.used >= this.max) {
      throw new BrokerConnectionError(`Cannot open a ${what} connection: ${this.setting} = ${this.max} and ${this.used} connection(s) are open. Raise ${this.setting} (Celeriac needs 1 command connection, plus 1 per consumer or result subscriber).`);
    }
    this.used++;
  }

  give(): void {
    this.used = Math.max(0, this.used - 1);
  }
}

/** Connect and wait until ready; one clear error (URL without password) if Redis cannot be reached. */
export async function connectClient(target: RedisTarget, transport: TransportOptions, role: ClientRole = {}): Promise<Redis> {
  const client = new Redis(clientOptions(target, transport, role));
  // ioredis adds a 'close' listener per command failed with a reconnect error (a Sentinel failover
  // fails a whole pipeline with NOREPLICAS); they go with the socket, so Node's leak warning is noise.
  client.on('connect', () => (client as unknown as { stream?: { setMaxListeners(n: number): void } }).stream?.setMaxListeners(0));
  // An app's idle connection does not hold the process open (app/keep-alive.ts): unref each new socket.
  if (role.idleExit) client.on('connect', () => unrefSocket((client as unknown as { stream?: Socket }).stream));
  if (!role.blocking) startHealthCheck(client, transport.health_check_interval, () => undefined);
  let lastError: Error | undefined;
  const onError = (err: Error) => {
    lastError = err;
  };
  client.on('error', onError);
  const timeoutMs = (role.connectTimeout ?? 10) * 1000;
  try {
    await withDeadline(client.connect(), timeoutMs, () => Promise.reject(lastError ?? new Error('timed out')));
  } catch (err) {
    client.disconnect();
    const why = (lastError ?? (err as Error)).message.replace(/[.\s]+$/, '');
    throw new BrokerConnectionError(`Cannot connect to ${target.displayUrl}: ${why}. ${connectHint(why)}`, PERMANENT.test(why));
  }
  if (target.db > 0) await requireDatabase(client, target);
  return client;
}

/**
 * ioredis reports a failed SELECT only as an 'error' event and stays on database 0: select it again
 * ourselves, so a database the server does not have fails the connection instead of using another.
 */
async function requireDatabase(client: Redis, target: RedisTarget): Promise<void> {
  try {
    await client.select(target.db);
  } catch (err) {
    if (!/DB index is out of range|invalid DB index/i.test((err as Error).message)) return;
    let limit = '';
    try {
      const reply = (await client.call('CONFIG', 'GET', 'databases')) as string[];
      if (reply[1]) limit = `: the server has ${reply[1]} databases (0 to ${Number(reply[1]) - 1})`;
    } catch {
      limit = ' (its `databases` setting is lower)';
    }
    client.disconnect();
    throw new BrokerConnectionError(`Redis database ${target.db} in ${target.displayUrl} does not exist${limit}. Use a database number the server has, or raise \`databases\` in redis.conf.`, true);
  }
}

/** What to check after a failed connect: the credentials when Redis refused them, else whether it runs there. */
function connectHint(why: string): string {
  if (/^NOAUTH/.test(why)) return 'Redis wants a password: add :password@ before the host in the URL (user:password@ for an ACL user).';
  if (/^WRONGPASS|invalid (username-)?password|^ERR AUTH/i.test(why)) return 'Redis refused the credentials: check the user and password in the URL (broker_url / result_backend).';
  return 'Is Redis running there? Check the URL (broker_url / result_backend) and that the server accepts connections.';
}

export async function closeClient(client: Redis | undefined): Promise<void> {
  if (!client) return;
  if (client.status === 'ready') {
    try {
      await withDeadline(client.quit(), 1000, () => undefined);
    } catch {
      /* already closing */
    }
  }
  client.disconnect();
}

/** `work`, or what `late` gives once `ms` have passed; the timer never outlives the race. */
async function withDeadline<T, L>(work: Promise<T>, ms: number, late: () => L | Promise<L>): Promise<T | L> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<L>((resolve, reject) => {
    timer = setTimeout(() => Promise.resolve().then(late).then(resolve, reject), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
