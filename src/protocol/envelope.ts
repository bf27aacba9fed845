// kombu's virtual-transport envelope (Redis list items, SQLite rows, pub/sub payloads).
import { randomUUID } from 'node:crypto';
import { dumps, flatten, loads, quote } from './json.js';
import { DecodeError } from './errors.js';
import type { Message, MessageProperties } from './message.js';

export interface DeliveryInfo {
  exchange: string;
  routing_key: string;
  redelivered?: boolean;
}

export interface Envelope {
  message: Message;
  deliveryTag: string;
  deliveryInfo: DeliveryInfo;
  /** The parsed JSON object, kept so a restore can write it back with its own fields. */
  raw: Record<string, unknown>;
}

/** Serialize a message for a virtual transport: base64 body plus delivery_info and delivery_tag. */
export function encodeEnvelope(message: Message, deliveryInfo: DeliveryInfo, deliveryTag: string = randomUUID()): string {
  const { correlation_id, reply_to, delivery_mode, expiration, priority, ...rest } = message.properties;
  const properties: Record<string, unknown> = {};
  if (correlation_id !== undefined) properties.correlation_id = correlation_id;
  if (reply_to !== undefined) properties.reply_to = reply_to;
  properties.delivery_mode = delivery_mode ?? 2;
  if (expiration !== undefined) properties.expiration = expiration;
  properties.delivery_info = { exchange: deliveryInfo.exchange, routing_key: deliveryInfo.routing_key };
  properties.priority = priority ?? 0;
  for (const [k, v] of Object.entries(rest)) if (!(k in properties) && k !== 'body_encoding' && k !== 'delivery_tag') properties[k] = v;
  properties.body_encoding = 'base64';
  properties.delivery_tag = deliveryTag;
  // Flat: bulk publishes hold thousands of these until the pipeline is written.
  return flatten(dumps({
    body: message.body.toString('base64'),
    'content-encoding': message.contentEncoding,
    'content-type': message.contentType,
    headers: message.headers,
    properties,
  }));
}

/**
 * A Celery event message for a virtual transport (Redis pub/sub), written as text, as the text before
 * and after its events: the envelope is `head`, then the events (a list: separated by commas; else the
 * one event), then `tail`. The body is the event's (or the task.multi list's) JSON as a string, with
 * body_encoding null — what kombu's virtual transport writes with transport option body_encoding=None,
 * and reads back as it is (no base64 step on either side); the events go in in quoted form
 * (JSON.stringify(text) without its outer quotes). Headers {hostname}, delivery_mode 1 and priority 0,
 * as Celery's EventDispatcher publishes; the keys and their order of encodeEnvelope(). A transport
 * writes the pieces where they go itself (Redis: one RESP buffer) instead of joining them.
 */
export function eventEnvelopeEnds(list: boolean, hostname: string, deliveryInfo: DeliveryInfo, deliveryTag: string = randomUUID()): [head: string, tail: string] {
  return [
    list ? '{"body": "[' : '{"body": "',
    (list ? ']"' : '"') + ', "content-encoding": "utf-8", "content-type": "application/json", "headers": {"hostname": ' + quote(hostname) +
      '}, "properties": {"delivery_mode": 1, "delivery_info": {"exchange": ' + quote(deliveryInfo.exchange) + ', "routing_key": ' + quote(deliveryInfo.routing_key) +
      '}, "priority": 0, "body_encoding": null, "delivery_tag": ' + quote(deliveryTag) + '}}',
  ];
}

const BASE64 = /^[A-Za-z0-9+/=\s_-]*$/;

/** The decoded length of a base64 text without whitespace or stray characters. */
function base64Length(text: string): number {
  let n = text.length;
  while (n > 0 && text.charCodeAt(n - 1) === 61 /* = */) n--;
  return Math.floor((n * 3) / 4);
}

/** Parse a virtual-transport envelope. Throws DecodeError on anything that is not one. */
export function decodeEnvelope(text: string): Envelope {
  let raw: unknown;
  try {
    raw = loads(text);
  } catch (err) {
    throw new DecodeError(`Message is not a kombu envelope (invalid JSON: ${(err as Error).message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new DecodeError('Message is not a kombu envelope (expected a JSON object)');
  const o = raw as Record<string, unknown>;
  const props = (o.properties && typeof o.properties === 'object' ? o.properties : {}) as Record<string, unknown>;
  const di = (props.delivery_info && typeof props.delivery_info === 'object' ? props.delivery_info : {}) as Record<string, unknown>;
  const bodyText = o.body;
  let body: Buffer;
  const encoding = props.body_encoding;
  if (typeof bodyText !== 'string') {
    body = Buffer.from(bodyText === undefined ? '' : JSON.stringify(bodyText), 'utf8');
  } else if (encoding === 'base64') {
    body = Buffer.from(bodyText, 'base64');
    // Node skips characters that are not base64: a decoded length short of what the text's length
    // promises means there were some (or whitespace, which is allowed), and only then is it checked.
    if (body.length !== base64Length(bodyText) && !BASE64.test(bodyText)) throw new DecodeError('Message body is marked base64 but is not valid base64');
  } else {
    body = Buffer.from(bodyText, 'utf8');
  }
  // A copy without the transport's own keys (object rest is slower than this loop in V8).
  const properties: Record<string, unknown> = {};
  for (const k in props) if (k !== 'delivery_info' && k !== 'body_encoding' && k !== 'delivery_tag') properties[k] = props[k];
  const deliveryTag = typeof props.delivery_tag === 'string' ? props.delivery_tag : String(props.delivery_tag ?? randomUUID());
  const headers = (o.headers && typeof o.headers === 'object' ? o.headers : {}) as Record<string, unknown>;
  return {
    message: {
      headers,
      properties: properties as MessageProperties,
      body,
      contentType: typeof o['content-type'] === 'string' ? (o['content-type'] as string) : 'application/json',
      contentEncoding: typeof o['content-encoding'] === 'string' ? (o['content-encoding'] as string) : 'utf-8',
    },
    deliveryTag,
    deliveryInfo: {
      exchange: typeof di.exchange === 'string' ? di.exchange : '',
      routing_key: typeof di.routing_key === 'string' ? di.routing_key : '',
      redelivered: di.redelivered === true || headers.redelivered === true,
    },
    raw: o,
  };
}

/** Mark an envelope redelivered, as kombu does before a restore. */
export function markRedelivered(raw: Record<string, unknown>): string {
  const headers = { ...((raw.headers as Record<string, unknown>) ?? {}), redelivered: true };
  const props = { ...((raw.properties as Record<string, unknown>) ?? {}) };
  props.delivery_info = { ...((props.delivery_info as Record<string, unknown>) ?? {}), redelivered: true };
  return dumps({ ...raw, headers, properties: props });
}
