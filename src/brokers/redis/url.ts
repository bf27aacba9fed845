// Parse Celery/kombu Redis URLs into ioredis options. Shared by the Redis broker and result backend.
import { readFileSync } from 'node:fs';
import type { RedisOptions } from 'ioredis';
import type { SslOptions, TransportOptions } from '../../app/settings.js';
import { maskUrl } from '../../app/log.js';
import { decodeUrlPart } from '../url-parts.js';

export interface RedisTarget {
  /** ioredis options for this server (host/port, path, sentinels, tls, db, password). */
  options: RedisOptions;
  db: number;
  displayUrl: string;
}


function parseDb(raw: string, url: string): number {
  const s = raw.replace(/^\/+/, '').replace(/\/+$/, '');
  if (s === '') return 0;
  const n = Number(s);
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(n)) {
    throw new Error(`Invalid Redis database ${JSON.stringify(s)} in ${maskUrl(url)}: it must be a database number from 0 to the server's \`databases\` setting less one (0 to 15 by default), e.g. redis://localhost:6379/0`);
  }
  return n;
}

const CERT_REQS: Record<string, 'required' | 'optional' | 'none'> = {
  required: 'required', cert_required: 'required',
  optional: 'optional', cert_optional: 'optional',
  none: 'none', cert_none: 'none',
};

/** TLS options from `ssl_*` query parameters merged over broker_use_ssl / redis_backend_use_ssl. */
export function tlsOptions(query: URLSearchParams, ssl: SslOptions | boolean | null | undefined): Record<string, unknown> {
  const o: SslOptions = typeof ssl === 'object' && ssl ? { ...ssl } : {};
  for (const [k, v] of query) if (k.startsWith('ssl_')) (o as Record<string, unknown>)[k] = v;
  const tls: Record<string, unknown> = {};
  const reqs = CERT_REQS[String(o.ssl_cert_reqs ?? 'none').toLowerCase()] ?? 'none';
  tls.rejectUnauthorized = reqs === 'required';
  if (o.ssl_ca_certs) tls.ca = readFileSync(String(o.ssl_ca_certs));
  if (o.ssl_certfile) tls.cert = readFileSync(String(o.ssl_certfile));
  if (o.ssl_keyfile) tls.key = readFileSync(String(o.ssl_keyfile));
  const check = o.ssl_check_hostname;
  if (check === false || String(check) === 'false' || reqs !== 'required') tls.checkServerIdentity = () => undefined;
  return tls;
}

/** Parse one URL of the forms redis://, rediss://, redis+socket://, socket://, sentinel://h1;sentinel://h2. */
export function parseRedisUrl(url: string, transport: TransportOptions = {}, ssl?: SslOptions | boolean | null, role: 'broker' | 'backend' = 'broker'): RedisTarget {
  const trimmed = url.trim();
  const scheme = trimmed.slice(0, trimmed.indexOf(':')).toLowerCase();
  const displayUrl = maskUrl(trimmed);
  const timeouts: RedisOptions = {};
  if (transport.socket_connect_timeout != null) timeouts.connectTimeout = Number(transport.socket_connect_timeout) * 1000;
  if (scheme === 'sentinel') {
    const parts = trimmed.split(';').map((p) => p.trim()).filter(Boolean);
    let password: string | undefined;
    let username: string | undefined;
    let db = 0;
    const sentinels = parts.map((p) => {
      const u = new URL(p.replace(/^sentinel:/i, 'http:'));
      if (u.password) password = decodeUrlPart(u.password);
      if (u.username) username = decodeUrlPart(u.username);
      if (u.pathname && u.pathname !== '/') db = parseDb(u.pathname, trimmed);
      return { host: u.hostname || 'localhost', port: Number(u.port || 26379) };
    });
    const name = transport.master_name;
    if (!name) throw new Error(`A sentinel:// URL needs the master's name: set broker_transport_options = { master_name: 'mymaster' } (result_backend_transport_options for the result backend)`);
    const sk = (transport.sentinel_kwargs ?? {}) as Record<string, unknown>;
    const options: RedisOptions = {
      ...timeouts,
      sentinels,
      name: String(name),
      db,
      password,
      username,
      sentinelPassword: sk.password != null ? String(sk.password) : undefined,
      sentinelUsername: sk.username != null ? String(sk.username) : undefined,
    };
    if (ssl) {
      options.tls = tlsOptions(new URLSearchParams(), ssl) as RedisOptions['tls'];
      options.enableTLSForSentinelMode = true;
    }
    return { options, db, displayUrl };
  }
  if (scheme === 'redis+socket' || scheme === 'socket' || scheme === 'unix') {
    const rest = trimmed.replace(/^[a-z+]+:\/\//i, '');
    const q = rest.indexOf('?');
    const [beforeQuery, queryPart] = q >= 0 ? [rest.slice(0, q), rest.slice(q + 1)] : [rest, ''];
    // kombu's form redis+socket://[user][:password]@/path/to/redis.sock: the credentials end at the
    // '@' that comes before the path's first '/'.
    const at = beforeQuery.indexOf('@');
    const hasAuth = at >= 0 && !beforeQuery.slice(0, at).includes('/');
    const auth = hasAuth ? beforeQuery.slice(0, at) : '';
    const pathPart = hasAuth ? beforeQuery.slice(at + 1) : beforeQuery;
    const query = new URLSearchParams(queryPart);
    const db = parseDb(query.get('virtual_host') ?? query.get('db') ?? '0', trimmed);
    const path = pathPart.startsWith('/') ? pathPart : '/' + pathPart;
    if (path === '/') throw new Error(`No socket path in ${displayUrl}: expected redis+socket://[:password@]/path/to/redis.sock[?virtual_host=N]`);
    const options: RedisOptions = { ...timeouts, path: decodeUrlPart(path), db };
    const colon = auth.indexOf(':');
    const username = decodeUrlPart(colon >= 0 ? auth.slice(0, colon) : auth);
    const password = colon >= 0 ? decodeUrlPart(auth.slice(colon + 1)) : query.get('password');
    if (username) options.username = username;
    if (password) options.password = password;
    return { options, db, displayUrl };
  }
  if (scheme !== 'redis' && scheme !== 'rediss') throw new Error(`Not a Redis URL: ${displayUrl}`);
  let u: URL;
  try {
    u = new URL(trimmed);
  } catch {
    throw new Error(`Malformed Redis URL ${displayUrl}: expected redis://[:password@]host[:port][/db]`);
  }
  const db = parseDb(u.pathname, trimmed);
  const options: RedisOptions = {
    ...timeouts,
    host: u.hostname.replace(/^\[|\]$/g, '') || 'localhost',
    port: Number(u.port || 6379),
    db,
  };
  if (u.password) options.password = decodeUrlPart(u.password);
  if (u.username) options.username = decodeUrlPart(u.username);
  if (scheme === 'rediss' && role === 'backend' && !u.searchParams.has('ssl_cert_reqs') && !(typeof ssl === 'object' && ssl?.ssl_cert_reqs)) {
    // Celery refuses this too: a result backend over TLS must say whether it verifies the server.
    throw new Error(`A rediss:// result_backend needs ssl_cert_reqs: add ?ssl_cert_reqs=required (with ssl_ca_certs=/path/ca.pem), optional or none to ${displayUrl}, or set redis_backend_use_ssl = { ssl_cert_reqs: 'required', ... }`);
  }
  if (scheme === 'rediss' || ssl) options.tls = tlsOptions(u.searchParams, ssl) as RedisOptions['tls'];
  return { options, db, displayUrl };
}

/** Celery's result-backend key prefix rule: '_' is appended unless the prefix ends in one of ':_-.'. */
export function backendKeyPrefix(prefix: string | undefined): string {
  if (!prefix) return '';
  return /[:_\-.]$/.test(prefix) ? prefix : prefix + '_';
}
