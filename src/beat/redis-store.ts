// Beat's store on Redis: a few keys beside kombu's, each change one Lua script (lua/). When the store
// is the broker's Redis, a due run's message is queued by the same script that records the run.
import type { Redis } from 'ioredis';
import type { Settings, SslOptions, TransportOptions } from '../app/settings.js';
import { parseRedisUrl, type RedisTarget } from '../brokers/redis/url.js';
import { closeClient, connectClient } from '../brokers/redis/connection.js';
import { KeyLayout } from '../brokers/redis/keys.js';
import { scriptsFor, type ScriptClient } from '../brokers/redis/scripts.js';
import { encodeEnvelope } from '../protocol/envelope.js';
import { CONFIG_PREFIX, type EntryState, type StoredEntry } from './entry.js';
import type { BeatStore, LeaseState, LeaseToken, RunClaim, RunOutcome } from './store.js';

const SCRIPTS = ['lease', 'release', 'record-run', 'merge', 'upsert', 'remove'] as const;
type ScriptName = (typeof SCRIPTS)[number];

export function stateString(s: EntryState): string {
  return `${Math.round(s.lastRunAt)} ${s.totalRunCount}`;
}

export function parseState(v: string | undefined): EntryState {
  const [at, count] = (v ?? '').split(' ');
  return { lastRunAt: Number(at) || 0, totalRunCount: Number(count) || 0 };
}

function parseToken(value: string | null | undefined): LeaseToken | null {
  if (!value) return null;
  const i = value.lastIndexOf(' ');
  return { owner: value.slice(0, i), epoch: Number(value.slice(i + 1)) };
}

export class RedisBeatStore implements BeatStore {
  readonly description: string;
  private readonly target: RedisTarget;
  private readonly keys: { lease: string; epoch: string; entries: string; state: string; version: string };
  /** The broker's key layout, when this Redis is the broker (then runs are queued atomically). */
  private readonly queueKeys: KeyLayout | null;
  private client: Promise<{ redis: Redis; scripts: ScriptClient }> | undefined;

  constructor(url: string, private readonly transport: TransportOptions, ssl: SslOptions | boolean | null, role: 'broker' | 'backend', private readonly settings: Settings) {
    this.target = parseRedisUrl(url, transport, ssl, role);
    const prefix = `${transport.global_keyprefix ?? ''}_celeriac.beat.`;
    this.keys = { lease: prefix + 'lease', epoch: prefix + 'epoch', entries: prefix + 'entries', state: prefix + 'state', version: prefix + 'version' };
    this.queueKeys = role === 'broker' ? new KeyLayout(transport) : null;
    this.description = `${this.target.displayUrl} (keys ${prefix}*)`;
  }

  private redis(): Promise<{ redis: Redis; scripts: ScriptClient }> {
    return (this.client ??= (async () => {
      const connectTimeout = Number(this.settings.broker_connection_timeout ?? 4);
      const client = await connectClient(this.target, this.transport, { connectTimeout: Math.max(connectTimeout, 2) });
      client.on('error', () => undefined); // ioredis reconnects; the failing command reports the error
      return { redis: client, scripts: scriptsFor(client, SCRIPTS.map((n) => `beat-${n}` as const)) };
    })().catch((err) => {
      this.client = undefined;
      throw err;
    }));
  }

  private async run(name: ScriptName, keys: string[], args: (string | number)[]): Promise<unknown> {
    const { scripts } = await this.redis();
    return scripts.run(`beat-${name}`, keys, args);
  }

  async lease(owner: string, ttlMs: number): Promise<LeaseState> {
    const [held, value, ttl] = (await this.run('lease', [this.keys.lease, this.keys.epoch], [owner, Math.ceil(ttlMs)])) as [number, string | null, number];
    const holder = parseToken(value);
    return { token: held === 1 ? holder : null, holder, expiresInMs: Math.max(0, Number(ttl)) };
  }

  async releaseLease(owner: string): Promise<void> {
    await this.run('release', [this.keys.lease], [owner]);
  }

  async leaseHolder(): Promise<{ holder: LeaseToken; expiresInMs: number } | null> {
    const { redis: client } = await this.redis();
    const [[, value], [, ttl]] = (await client.multi().get(this.keys.lease).pttl(this.keys.lease).exec()) as [[null, string | null], [null, number]];
    const holder = parseToken(value);
    return holder ? { holder, expiresInMs: Math.max(0, Number(ttl)) } : null;
  }

  async version(): Promise<string> {
    return (await (await this.redis()).redis.get(this.keys.version)) ?? '0';
  }

  async load(): Promise<StoredEntry[]> {
    const { redis: client } = await this.redis();
    const [[, entries], [, state]] = (await client.multi().hgetall(this.keys.entries).hgetall(this.keys.state).exec()) as [[null, Record<string, string>], [null, Record<string, string>]];
    return Object.entries(entries).map(([name, encoded]) => ({ name, encoded, state: parseState(state[name]) }));
  }

  async mergeConfig(entries: Map<string, string>, now: number): Promise<{ added: string[]; changed: string[]; removed: string[] }> {
    const args: string[] = [String(Math.round(now)), CONFIG_PREFIX];
    for (const [name, encoded] of entries) args.push(name, encoded);
    const [added, changed, removed] = (await this.run('merge', [this.keys.entries, this.keys.state, this.keys.version], args)) as string[][];
    return { added: added ?? [], changed: changed ?? [], removed: removed ?? [] };
  }

  async upsert(name: string, encoded: string, now: number): Promise<void> {
    await this.run('upsert', [this.keys.entries, this.keys.state, this.keys.version], [name, encoded, Math.round(now)]);
  }

  async remove(name: string): Promise<boolean> {
    return (await this.run('remove', [this.keys.entries, this.keys.state, this.keys.version], [name])) === 1;
  }

  async recordRun(claim: RunClaim): Promise<RunOutcome> {
    const { message, target } = claim.publish;
    // Queued in the script only on the broker's own Redis and the default exchange (no binding lookup).
    const direct = this.queueKeys !== null && target.exchange === '';
    const queue = direct ? this.queueKeys!.queueKey(target.routingKey, this.queueKeys!.stepFor(message.properties.priority)) : '';
    const payload = direct ? encodeEnvelope(message, { exchange: target.exchange, routing_key: target.routingKey }) : '';
    return this.record(claim, claim.expected, claim.next, queue, payload, direct ? this.queueKeys!.bindingKey(target.routingKey) : '', direct ? this.queueKeys!.bindingMember(target.routingKey, target.routingKey) : '');
  }

  async unclaim(claim: RunClaim): Promise<void> {
    await this.record(claim, claim.next, claim.expected, '', '', '', '');
  }

  private async record(claim: RunClaim, from: EntryState, to: EntryState, queue: string, payload: string, binding: string, member: string): Promise<RunOutcome> {
    const token = `${claim.token.owner} ${claim.token.epoch}`;
    return (await this.run('record-run', [this.keys.lease, this.keys.entries, this.keys.state, queue, binding], [token, claim.name, stateString(from), stateString(to), payload, member])) as RunOutcome;
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await closeClient((await c?.catch(() => undefined))?.redis);
  }
}
