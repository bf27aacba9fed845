// Fanout for remote control (celery.pidbox) and Celery events on the embedded broker: a short-lived
// broadcast table that every subscriber reads from the point it subscribed. Fire-and-forget, as on Redis pub/sub.
import { decodeEnvelope, encodeEnvelope } from '../../protocol/envelope.js';
import type { Message } from '../../protocol/message.js';
import type { Logger } from '../../app/log.js';
import type { BroadcastSubscription } from '../types.js';
import { prepared, type SqliteDatabase } from './database.js';
import { topicMatches } from '../topic.js';

export const BROADCAST_SCHEMA = `
CREATE TABLE IF NOT EXISTS celeriac_broadcast (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  exchange TEXT NOT NULL,
  payload TEXT NOT NULL,
  published_at INTEGER NOT NULL
);
`;

/** A broadcast older than this is deleted; a subscriber polling less often than this would miss it. */
const KEEP_MS = 60_000;
const POLL_MS = 250;

export async function broadcast(db: SqliteDatabase, exchange: string, message: Message, routingKey = ''): Promise<void> {
  const payload = encodeEnvelope(message, { exchange, routing_key: routingKey });
  await db.write((d) => {
    const now = Date.now();
    prepared(d, 'DELETE FROM celeriac_broadcast WHERE published_at < ?').run(now - KEEP_MS);
    prepared(d, 'INSERT INTO celeriac_broadcast (exchange, payload, published_at) VALUES (?, ?, ?)').run(exchange, payload, now);
  });
  db.events.emit('broadcast', exchange);
}

/** `bindingKey` (topic syntax) keeps only the broadcasts whose routing key matches; undefined keeps all. */
export function subscribe(db: SqliteDatabase, exchange: string, handler: (m: Message) => void, logger: Logger, bindingKey?: string): BroadcastSubscription {
  let last = (db.read((d) => prepared(d, 'SELECT max(id) AS id FROM celeriac_broadcast').get()) as { id: number | null }).id ?? 0;
  let closed = false;
  const poll = () => {
    if (closed) return;
    let rows: { id: number; payload: string }[];
    try {
      rows = db.read((d) => prepared(d, 'SELECT id, payload FROM celeriac_broadcast WHERE exchange = ? AND id > ? ORDER BY id').all(exchange, last)) as typeof rows;
    } catch (err) {
      logger.debug(`Embedded broker: reading broadcasts failed, will retry: ${(err as Error).message}`);
      return;
    }
    for (const r of rows) {
      last = r.id;
      try {
        const envelope = decodeEnvelope(r.payload);
        if (bindingKey === undefined || topicMatches(bindingKey, envelope.deliveryInfo.routing_key)) handler(envelope.message);
      } catch (err) {
        logger.error(`Embedded broker: broadcast ${r.id} on ${exchange} could not be handled: ${(err as Error).message}`);
      }
    }
  };
  const onLocal = (ex: string) => { if (ex === exchange) poll(); };
  db.events.on('broadcast', onLocal);
  const timer = setInterval(poll, POLL_MS);
  timer.unref();
  return {
    async close() {
      closed = true;
      clearInterval(timer);
      db.events.off('broadcast', onLocal);
    },
  };
}
