// URL scheme → transport. A new transport is one folder and one line here. A transport's module (and
// its npm package) is imported only when a URL of its scheme is used.
import type { Broker, BrokerContext } from './types.js';
import { parseSqliteUrl } from './sqlite/url.js';
import { maskUrl } from '../app/log.js';
import { isMissingPackage, missingDependency } from './optional.js';

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

/** The npm package behind each scheme whose package is not a plain dependency of celeriac. */
const PACKAGES: Record<string, string> = {
  amqp: 'amqplib', amqps: 'amqplib', pyamqp: 'amqplib', rpc: 'amqplib',
  sqlite: 'better-sqlite3',
  redis: 'ioredis', rediss: 'ioredis', 'redis+socket': 'ioredis', socket: 'ioredis', sentinel: 'ioredis',
};

export function schemeOf(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*):/i.exec(url.trim());
  return m ? m[1]!.toLowerCase() : '';
}

export function isSupportedBrokerUrl(url: string): boolean {
  return schemeOf(url) in TRANSPORTS;
}

/** Import a transport's module; a missing optional package becomes one error naming it. */
export async function loadTransport<T>(url: string, what: 'broker' | 'result backend', load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    const scheme = schemeOf(url);
    const pkg = PACKAGES[scheme];
    if (pkg && isMissingPackage(err, pkg)) throw missingDependency(pkg, `The ${what} ${describeUrl(url)}`);
    throw err;
  }
}

/** A URL as banners and errors show it: password masked, and a sqlite:// URL with its absolute file. */
export function describeUrl(url: string): string {
  if (schemeOf(url) === 'sqlite') {
    try {
      return `${url} (${parseSqliteUrl(url).file})`;
    } catch {
      return url;
    }
  }
  return maskUrl(url);
}

export async function createBroker(url: string, ctx: BrokerContext): Promise<Broker> {
  const scheme = schemeOf(url);
  const load = TRANSPORTS[scheme];
  if (!load) {
    throw new Error(`Unsupported broker URL scheme ${JSON.stringify(scheme || url)}: use redis://, rediss://, redis+socket://, sentinel://, amqp://, amqps://, sqlite:// or memory://`);
  }
  const mod = await loadTransport(url, 'broker', load);
  return mod.createBroker(url, ctx);
}
