// Celery's remote-control messages (kombu pidbox) on the celery.pidbox fanout exchange.
import { randomUUID } from 'node:crypto';
import { dumps, loads } from '../protocol/json.js';
import { decodeBody } from '../protocol/message.js';
import type { Message } from '../protocol/message.js';
import { clock } from '../events/clock.js';

export const PIDBOX_EXCHANGE = 'celery.pidbox';
export const REPLY_EXCHANGE = 'reply.celery.pidbox';

export interface ControlRequest {
  method: string;
  arguments: Record<string, unknown>;
  destination: string[] | null;
  pattern: string | null;
  matcher: string | null;
  ticket?: string;
  reply_to?: { exchange: string; routing_key: string };
}

export interface RequestOptions {
  destination?: string[] | null;
  /** Seconds the request stays valid (the expires header); also how long the client waits for replies. */
  timeout?: number;
  /** The client's routing key, when replies are wanted. */
  replyTo?: string;
  /** Nodes whose name matches (glob or pcre, as kombu), when no destination is given. */
  pattern?: string | null;
  matcher?: string | null;
}

/** The request message, with the headers kombu sends ({clock, expires}). */
export function encodeControlRequest(method: string, args: Record<string, unknown>, opts: RequestOptions = {}): { message: Message; ticket: string | null } {
  const body: ControlRequest = {
    method, arguments: args, destination: opts.destination ?? null,
    pattern: opts.pattern && opts.matcher ? opts.pattern : null, matcher: opts.pattern && opts.matcher ? opts.matcher : null,
  };
  let ticket: string | null = null;
  if (opts.replyTo) {
    ticket = randomUUID();
    body.ticket = ticket;
    body.reply_to = { exchange: REPLY_EXCHANGE, routing_key: opts.replyTo };
  }
  const message: Message = {
    headers: { clock: clock.forward(), expires: opts.timeout ? Date.now() / 1000 + opts.timeout : 0 },
    properties: { delivery_mode: 2, priority: 0 },
    body: Buffer.from(dumps(body), 'utf8'),
    contentType: 'application/json',
    contentEncoding: 'utf-8',
  };
  return { message, ticket };
}

/** Parse a request; null when it is not one (other traffic on the exchange). */
export function decodeControlRequest(message: Message): ControlRequest | null {
  let body: unknown;
  try {
    body = decodeBody(message, { accept: ['json', 'application/json'] });
  } catch {
    try {
      body = loads(message.body.toString('utf8'));
    } catch {
      return null;
    }
  }
  if (!body || typeof body !== 'object' || typeof (body as { method?: unknown }).method !== 'string') return null;
  const b = body as Partial<ControlRequest>;
  return {
    method: b.method!,
    arguments: (b.arguments && typeof b.arguments === 'object' ? b.arguments : {}) as Record<string, unknown>,
    // kombu tests `hostname in destination`: a lone string names one node, never everyone.
    destination: Array.isArray(b.destination) ? b.destination.map(String) : typeof b.destination === 'string' && b.destination ? [b.destination] : null,
    pattern: typeof b.pattern === 'string' ? b.pattern : null,
    matcher: typeof b.matcher === 'string' ? b.matcher : null,
    ticket: b.ticket,
    reply_to: b.reply_to,
  };
}

/** Has the request expired (headers.expires is a unix time, 0 for never)? */
export function isExpired(message: Message): boolean {
  const e = Number(message.headers.expires ?? 0);
  return e > 0 && e < Date.now() / 1000;
}

/** Task ids as revoke sends them: one id or a list. */
export function taskIds(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  return v == null ? [] : [String(v)];
}
