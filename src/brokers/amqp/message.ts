// Celeriac Message ⇄ AMQP basic properties. Property names follow kombu (snake_case) on our side and
// amqplib (camelCase) on the wire side; headers are typed so py-amqp reads them back unchanged.
import type { Message as AmqpMessage, Options } from 'amqplib';
import type { Message, MessageProperties } from '../../protocol/message.js';
import type { Settings } from '../../app/settings.js';
import { fromFieldValue, toFieldTable } from './field-table.js';

export function defaultDeliveryMode(settings: Settings): number {
  const m = settings.task_default_delivery_mode;
  return m === 'transient' || m === 1 ? 1 : 2;
}

export function publishOptions(message: Message, deliveryMode: number): Options.Publish {
  const p = message.properties;
  const opts: Options.Publish = {
    contentType: message.contentType,
    contentEncoding: message.contentEncoding,
    headers: toFieldTable(message.headers),
    deliveryMode: p.delivery_mode ?? deliveryMode,
    priority: p.priority ?? 0,
    mandatory: false,
  };
  if (p.correlation_id != null) opts.correlationId = p.correlation_id;
  if (p.reply_to != null && p.reply_to !== '') opts.replyTo = p.reply_to;
  if (p.expiration != null) opts.expiration = String(p.expiration);
  if (typeof p.message_id === 'string') opts.messageId = p.message_id;
  if (typeof p.type === 'string') opts.type = p.type;
  if (typeof p.app_id === 'string') opts.appId = p.app_id;
  if (typeof p.timestamp === 'number') opts.timestamp = p.timestamp;
  return opts;
}

export function toMessage(raw: AmqpMessage): Message {
  const rp = raw.properties;
  const properties: MessageProperties = {};
  if (rp.correlationId != null) properties.correlation_id = String(rp.correlationId);
  if (rp.replyTo != null) properties.reply_to = String(rp.replyTo);
  if (rp.deliveryMode != null) properties.delivery_mode = Number(rp.deliveryMode);
  properties.priority = rp.priority != null ? Number(rp.priority) : 0;
  if (rp.expiration != null) properties.expiration = String(rp.expiration);
  if (rp.messageId != null) properties.message_id = String(rp.messageId);
  if (rp.type != null) properties.type = String(rp.type);
  if (rp.appId != null) properties.app_id = String(rp.appId);
  if (rp.timestamp != null) properties.timestamp = Number(rp.timestamp);
  properties.delivery_info = { exchange: raw.fields.exchange, routing_key: raw.fields.routingKey, redelivered: raw.fields.redelivered };
  const headers = (rp.headers ? fromFieldValue(rp.headers) : {}) as Record<string, unknown>;
  return {
    headers,
    properties,
    body: raw.content,
    contentType: rp.contentType ? String(rp.contentType) : 'application/json',
    contentEncoding: rp.contentEncoding ? String(rp.contentEncoding) : 'utf-8',
  };
}
