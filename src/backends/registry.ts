// URL scheme → result backend module, imported only when a URL of its scheme is used.
import type { BackendContext, ResultBackend } from './types.js';
import { loadTransport, schemeOf } from '../brokers/registry.js';

type Loader = () => Promise<{ createBackend: (url: string, ctx: BackendContext) => ResultBackend }>;

const BACKENDS: Record<string, Loader> = {
  redis: () => import('./redis.js'),
  rediss: () => import('./redis.js'),
  'redis+socket': () => import('./redis.js'),
  socket: () => import('./redis.js'),
  sentinel: () => import('./redis.js'),
  rpc: () => import('./rpc.js'),
  sqlite: () => import('./sqlite.js'),
  memory: () => import('./memory.js'),
  cache: () => import('./memory.js'),
};

export async function createBackend(url: string, ctx: BackendContext): Promise<ResultBackend> {
  const scheme = schemeOf(url);
  const load = BACKENDS[scheme];
  if (!load) {
    throw new Error(`Unsupported result backend URL scheme ${JSON.stringify(scheme || url)}: use redis://, rediss://, redis+socket://, sentinel://, rpc://, sqlite:// or memory://`);
  }
  return (await loadTransport(url, 'result backend', load)).createBackend(url, ctx);
}
