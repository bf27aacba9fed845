// Creating ioredis clients with the settings a queue needs, and a clear error when Redis is unreachable.
import { Redis, type RedisOptions } from 'ioredis';
import type { TransportOptions } from '../../app/settings.js';
import type { RedisTarget } from './url.js';

export class BrokerConnectionError extends Error {
  override name = 'OperationalError';
}

export interface ClientRole {
  /** A connection that issues blocking reads: never give up on a command, let our watchdog decide. */
  blocking?: boolean;
  /** Fail commands instead of queueing them while disconnected. */
  failFast?: boolean;
  /** Seconds to keep retrying the first connection (broker_connection_timeout-ish). */
  connectTimeout?: number;
}

function retryStrategy(times: number): number {
  return Math.min(2000, 50 * 2 ** Math.min(times, 6)) + Math.floor(Math.random() * 100);
}

export function clientOptions(target: RedisTarget, transport: TransportOptions, role: ClientRole = {}): RedisOptions {
  const socketTimeout = transport.socket_timeout != null ? Number(transport.socket_timeout) * 1000 : undefined;
  return {
    ...target.options,
    protocol: 2,
    lazyConnect: true,
    enableAutoPipelining: !role.blocking,
    maxRetriesPerRequest: role.blocking ? null : 20,
    enableOfflineQueue: !role.failFast,
    retryStrategy,
    connectTimeout: target.options.connectTimeout ?? (role.connectTimeout ?? 4) * 1000,
    ...(socketTimeout ? { socketTimeout } : {}),
    keepAlive: 30_000,
  } as RedisOptions;
}

/** Connect and wait until ready; one clear error (URL without password) if Redis cannot be reached. */
export async function connectClient(target: RedisTarget, transport: TransportOptions, role: ClientRole = {}): Promise<Redis> {
  const client = new Redis(clientOptions(target, transport, role));
  let lastError: Error | undefined;
  const onError = (err: Error) => {
    lastError = err;
  };
  client.on('error', onError);
  const timeoutMs = (role.connectTimeout ?? 10) * 1000;
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => setTimeout(() => reject(lastError ?? new Error('timed out')), timeoutMs).unref()),
    ]);
  } catch (err) {
    client.disconnect();
    const why = (lastError ?? (err as Error)).message;
    throw new BrokerConnectionError(`Cannot connect to ${target.displayUrl}: ${why}. Is Redis running there? Check the URL (broker_url / result_backend) and that the server accepts connections.`);
  }
  return client;
}

export async function closeClient(client: Redis | undefined): Promise<void> {
  if (!client) return;
  if (client.status === 'ready') {
    try {
      await Promise.race([client.quit(), new Promise((r) => setTimeout(r, 1000).unref())]);
    } catch {
      /* already closing */
    }
  }
  client.disconnect();
}
