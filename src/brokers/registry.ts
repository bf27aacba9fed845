// URL scheme → transport. A new transport is one folder and one line here.
import type { Broker, BrokerContext } from './types.js';

type Loader = () => Promise<{ createBroker: (url: string, ctx: BrokerContext) => Broker }>;

const TRANSPORTS: Record<string, Loader> = {
  redis: () => import('./redis/index.js'),
  rediss: () => import('./redis/index.js'),
  'redis+socket': () => import('./redis/index.js'),
  socket: () => import('./redis/index.js'),
  sentinel: () => import('./redis/index.js'),
  amqp: () => import('./amqp/index.js'),
  amqps: () => import('./amqp/index.js'),
  pyamqp: () => import('./amqp/index.js'),
  sqlite: () => import('./sqlite/index.js'),
  memory: () => import('./memory/index.js'),
};

export function schemeOf(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*):/i.exec(url.trim());
  return m ? m[1]!.toLowerCase() : '';
}

export function isSupportedBrokerUrl(url: string): boolean {
  return schemeOf(url) in TRANSPORTS;
}

export async function createBroker(url: string, ctx: BrokerContext): Promise<Broker> {
  const scheme = schemeOf(url);
  const load = TRANSPORTS[scheme];
  if (!load) {
    throw new Error(`Unsupported broker URL scheme ${JSON.stringify(scheme || url)}: use redis://, rediss://, redis+socket://, sentinel://, amqp://, amqps://, sqlite:// or memory://`);
  }
  const mod = await load();
  return mod.createBroker(url, ctx);
}
