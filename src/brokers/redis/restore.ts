// Putting held messages back on their queues: kombu's restore_visible (entries older than the
// visibility timeout, under unacked_mutex), dead consumers' inflight lists, and the exchange routing
// a restored message follows. A message that cannot be routed stays in unacked, never dropped.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../../app/log.js';
import { markRedelivered } from '../../protocol/envelope.js';
import type { KeyLayout } from './keys.js';
import type { ScriptClient } from './scripts.js';

export interface RestoreDeps {
  client: Redis;
  scripts: ScriptClient;
  keys: KeyLayout;
  logger: Logger;
  visibilityTimeout: number;
}

/** Most exchanges remembered as unroutable; past this the set starts over (a line more, never a leak). */
const PARKED_EXCHANGES_MAX = 1000;

export class Restorer {
  /** Exchanges whose held messages could not be routed back: reported once each, until one routes again. */
  private readonly parked = new Set<string>();

  constructor(private readonly deps: RestoreDeps) {}

  /** kombu's restore_visible: return messages unacknowledged for longer than visibility_timeout. */
  async restoreVisible(): Promise<number> {
    const { client, keys, logger, visibilityTimeout } = this.deps;
    const token = randomUUID().replace(/-/g, '');
    const locked = await client.set(keys.unackedMutex, token, 'PX', 300_000, 'NX');
    if (locked !== 'OK') return 0;
    let restored = 0;
    try {
      const cutoff = Date.now() / 1000 - visibilityTimeout;
      const tags = await client.zrevrangebyscore(keys.unackedIndex, cutoff, 0, 'LIMIT', 0, 1000);
      for (const tag of tags) {
        const value = await client.hget(keys.unacked, tag);
        if (value === null) {
          await client.zrem(keys.unackedIndex, tag);
          continue;
        }
        try {
          if (await this.restoreOne(tag, value, 'head', String(cutoff))) restored++;
        } catch (err) {
          if (!(err instanceof InconsistencyError)) throw err;
          await this.park(tag, err);
        }
      }
      restored += await this.recoverDeadInflight();
    } finally {
      await this.deps.scripts.run('unlock', [keys.unackedMutex], [token]);
    }
    if (restored > 0) logger.warning(`Restored ${restored} unacknowledged message(s) older than the visibility timeout (${visibilityTimeout}s).`);
    return restored;
  }

  /**
   * A held message whose exchange has no binding left stays in unacked (never deleted). Its index
   * score is refreshed so a Python worker's restore (which would drop it silently) leaves it alone;
   * we try again one visibility timeout later, e.g. after a worker restart re-declared the binding.
   */
  private async park(tag: string, err: InconsistencyError): Promise<void> {
    const { client, keys, logger } = this.deps;
    await client.zadd(keys.unackedIndex, 'XX', Date.now() / 1000, tag);
    if (this.parked.has(err.exchange)) return;
    if (this.parked.size >= PARKED_EXCHANGES_MAX) this.parked.clear();
    this.parked.add(err.exchange);
    logger.error(
      `Could not restore message ${tag}: ${err.message} The message is kept in the '${keys.unacked}' hash and will be restored once the binding exists again ` +
        `(other messages for exchange '${err.exchange}' are kept the same way without another line).`,
    );
  }

  /** Exchanges reported as unroutable now (bounded; for tests and stats). */
  get parkedExchanges(): number {
    return this.parked.size;
  }

  /** Put one unacked entry ([payload, exchange, routing_key]) back on its queue. */
  private async restoreOne(tag: string, value: string, end: 'head' | 'tail', maxScore: string): Promise<boolean> {
    let entry: unknown;
    try {
      entry = JSON.parse(value);
    } catch {
      return false;
    }
    if (!Array.isArray(entry) || typeof entry[0] !== 'object' || entry[0] === null) return false;
    return this.restoreEnvelope(tag, entry[0] as Record<string, unknown>, String(entry[1] ?? ''), String(entry[2] ?? ''), end, maxScore);
  }

  /** Put a held message back on the queues its exchange and routing key lead to, marked redelivered. */
  async restoreEnvelope(tag: string, raw: Record<string, unknown>, exchange: string, routingKey: string, end: 'head' | 'tail', maxScore: string): Promise<boolean> {
    const { keys, client } = this.deps;
    const queues = await resolveQueues(client, keys, exchange, routingKey);
    const props = (raw.properties ?? {}) as Record<string, unknown>;
    const payload = markRedelivered(raw);
    let ok = false;
    for (const q of queues) {
      const dest = keys.queueKey(q, keys.stepFor(props.priority));
      ok = (await this.deps.scripts.run('restore', [keys.unacked, keys.unackedIndex, dest], [tag, payload, end, maxScore])) === 1 || ok;
    }
    this.parked.delete(exchange);
    return ok;
  }

  private async recoverDeadInflight(): Promise<number> {
    const { client, keys } = this.deps;
    let n = 0;
    const prefix = keys.inflightPattern().slice(0, -1);
    let cursor = '0';
    do {
      const [next, found] = await client.scan(cursor, 'MATCH', keys.inflightPattern(), 'COUNT', 200);
      cursor = next;
      for (const key of found) {
        const rest = key.slice(prefix.length);
        const slash = rest.indexOf('/');
        if (slash < 0) continue;
        const owner = rest.slice(0, slash);
        const source = rest.slice(slash + 1);
        n += Number(await this.deps.scripts.run('recover-inflight', [key, keys.heartbeatKey(owner), source], []));
      }
    } while (cursor !== '0');
    return n;
  }
}

/**
 * The queues a message for (exchange, routing_key) goes to: '' routes by name, others by the bindings
 * in _kombu.binding.<exchange>. A missing binding set or a routing key no binding matches is an
 * error, never a silent drop (kombu >= 5.2 drops such messages).
 */
export async function resolveQueues(client: Redis, keys: KeyLayout, exchange: string, routingKey: string): Promise<string[]> {
  if (exchange === '') return [routingKey];
  const bindingKey = keys.bindingKey(exchange);
  const members = await client.smembers(bindingKey);
  if (members.length === 0) {
    throw new InconsistencyError(exchange,
      `Cannot route message for exchange '${exchange}': Table empty or key no longer exists. Probably the key ('${bindingKey}') has been removed from the Redis database. ` +
        `If Redis evicts keys, set maxmemory-policy to noeviction and raise maxmemory (redis.conf or CONFIG SET), then restart the workers to re-declare their queues.`,
    );
  }
  const out = new Set<string>();
  for (const m of members) {
    const [rk = '', pattern = '', queue] = m.split(keys.sep);
    if (queue === undefined) continue;
    if (pattern !== '' ? safeMatch(pattern, routingKey) : rk === routingKey || rk === '') out.add(queue);
  }
  if (out.size === 0) {
    throw new InconsistencyError(exchange,
      `Cannot route message for exchange '${exchange}' with routing key '${routingKey}': no binding in '${bindingKey}' matches it. ` +
        `Bind a queue to it (start a worker that consumes it) or publish to the queue by name.`,
    );
  }
  return [...out];
}

function safeMatch(pattern: string, routingKey: string): boolean {
  try {
    return new RegExp(pattern).test(routingKey);
  } catch {
    return false;
  }
}

/** kombu's InconsistencyError: routing state in Redis is missing (evicted or flushed). Not retried. */
export class InconsistencyError extends Error {
  override name = 'InconsistencyError';
  /** Retrying cannot help: withRetries rethrows it at once. */
  readonly permanent = true;

  constructor(readonly exchange: string, message: string) {
    super(message);
  }
}

