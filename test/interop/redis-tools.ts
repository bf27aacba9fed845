// Raw Redis access for the interop tests: read kombu's keys exactly as the other side wrote them.
import { Redis } from 'ioredis';
import { redisDb, requireRedis } from '../helpers/services.js';

export const SEP = '\x06\x16';
export const PRIORITY_STEPS = [0, 3, 6, 9] as const;

/** kombu's list name for a priority step: step 0 is the bare queue name. */
export function priorityKey(queue: string, step: number): string {
  return step === 0 ? queue : `${queue}${SEP}${step}`;
}

export interface RawEnvelope {
  body: string;
  'content-encoding': string;
  'content-type': string;
  headers: Record<string, unknown>;
  properties: Record<string, unknown> & { delivery_info: Record<string, unknown>; delivery_tag: string; priority: number };
}

export interface QueuedItem {
  key: string;
  step: number;
  text: string;
  envelope: RawEnvelope;
  /** The base64 body decoded to text. */
  bodyText: string;
}

/** A private test database: checks Redis is up, then FLUSHDB on that one database only. */
export async function openTestDb(db: number): Promise<{ url: string; redis: Redis }> {
  await requireRedis();
  const url = redisDb(db);
  const redis = new Redis(url, { maxRetriesPerRequest: 2 });
  await redis.flushdb();
  return { url, redis };
}

function parseItem(key: string, step: number, text: string): QueuedItem {
  const envelope = JSON.parse(text) as RawEnvelope;
  const bodyText = envelope.properties.body_encoding === 'base64' ? Buffer.from(envelope.body, 'base64').toString('utf8') : envelope.body;
  return { key, step, text, envelope, bodyText };
}

/** Every message waiting in the queue, all priority lists, head (next to be consumed) first. */
export async function readQueue(redis: Redis, queue: string): Promise<QueuedItem[]> {
  const out: QueuedItem[] = [];
  for (const step of PRIORITY_STEPS) {
    const key = priorityKey(queue, step);
    const items = await redis.lrange(key, 0, -1);
    for (const text of items.reverse()) out.push(parseItem(key, step, text));
  }
  return out;
}

export interface UnackedEntry {
  tag: string;
  envelope: RawEnvelope;
  exchange: string;
  routingKey: string;
  score: number | null;
}

/** The `unacked` hash ([envelope, exchange, routing_key] per delivery tag) joined with `unacked_index`. */
export async function readUnacked(redis: Redis): Promise<UnackedEntry[]> {
  const hash = await redis.hgetall('unacked');
  const out: UnackedEntry[] = [];
  for (const [tag, text] of Object.entries(hash)) {
    const [envelope, exchange, routingKey] = JSON.parse(text) as [RawEnvelope, string, string];
    const score = await redis.zscore('unacked_index', tag);
    out.push({ tag, envelope, exchange, routingKey, score: score == null ? null : Number(score) });
  }
  return out;
}

/** The stored result meta, or null. */
export async function readMeta(redis: Redis, id: string): Promise<Record<string, unknown> | null> {
  const text = await redis.get(`celery-task-meta-${id}`);
  return text == null ? null : (JSON.parse(text) as Record<string, unknown>);
}
