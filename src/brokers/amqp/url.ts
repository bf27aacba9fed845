// amqp:// URLs as kombu reads them: amqp://user:pass@host:port/vhost, where the vhost is everything after the
// first slash, percent-decoded, and an empty path, "/" or "//" all mean the "/" vhost.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { Options } from 'amqplib';
import type { Settings, SslOptions } from '../../app/settings.js';
import { maskUrl } from '../../app/log.js';
import { decodeUrlPart } from '../url-parts.js';

export interface AmqpEndpoint {
  tls: boolean;
  hostname: string;
  port: number;
  username: string;
  password: string;
  vhost: string;
  /** Seconds; 0 turns heartbeats off. */
  heartbeat: number;
  /** Seconds to wait for the TCP/TLS connection and the AMQP handshake. */
  connectTimeout: number;
  displayUrl: string;
  tlsOptions: ConnectionOptions;
}


function num(v: string | null | undefined): number | undefined {
  if (v == null || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

function sslOptions(ssl: SslOptions | boolean | null | undefined): ConnectionOptions {
  if (!ssl || ssl === true) return {};
  const out: ConnectionOptions = {};
  const reqs = String(ssl.ssl_cert_reqs ?? ssl.cert_reqs ?? '').toLowerCase();
  if (reqs === 'none' || reqs === 'cert_none') out.rejectUnauthorized = false;
  const ca = ssl.ssl_ca_certs ?? ssl.ca_certs;
  const cert = ssl.ssl_certfile ?? ssl.certfile;
  const key = ssl.ssl_keyfile ?? ssl.keyfile;
  if (typeof ca === 'string') out.ca = readFileSync(ca);
  if (typeof cert === 'string') out.cert = readFileSync(cert);
  if (typeof key === 'string') out.key = readFileSync(key);
  if (ssl.ssl_check_hostname === false || ssl.check_hostname === false) out.checkServerIdentity = () => undefined;
  if (typeof ssl.server_hostname === 'string') out.servername = ssl.server_hostname;
  return out;
}

export function parseAmqpUrl(url: string, settings: Settings): AmqpEndpoint {
  const m = /^(amqps?|pyamqp):\/\/([^/?#]*)(\/[^?#]*)?(\?[^#]*)?/i.exec(url.trim());
  if (!m) throw new Error(`Not an AMQP URL: ${maskUrl(url)} (expected amqp://user:password@host:5672/vhost)`);
  const scheme = m[1]!.toLowerCase();
  const authority = m[2]!;
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at) : '';
  const hostport = at >= 0 ? authority.slice(at + 1) : authority;
  const colon = userinfo.indexOf(':');
  const username = userinfo ? decodeUrlPart(colon >= 0 ? userinfo.slice(0, colon) : userinfo) : 'guest';
  const password = userinfo ? decodeUrlPart(colon >= 0 ? userinfo.slice(colon + 1) : '') : 'guest';
  const hp = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(hostport);
  const hostname = (hp?.[1] || 'localhost').replace(/^\[|\]$/g, '');
  const tls = scheme === 'amqps' || (settings.broker_use_ssl != null && settings.broker_use_ssl !== false);
  const port = hp?.[2] ? Number(hp[2]) : tls ? 5671 : 5672;
  const rawPath = m[3] ?? '';
  const vhost = rawPath.length <= 1 ? '/' : decodeUrlPart(rawPath.slice(1));
  const query = new URLSearchParams(m[4] ?? '');
  const heartbeat = num(query.get('heartbeat')) ?? settings.broker_heartbeat ?? 0;
  const connectTimeout = num(query.get('connect_timeout')) ?? settings.broker_connection_timeout ?? 4;
  return {
    tls,
    hostname,
    port,
    username,
    password,
    vhost,
    heartbeat,
    connectTimeout,
    displayUrl: maskUrl(url.trim()),
    tlsOptions: tls ? sslOptions(settings.broker_use_ssl) : {},
  };
}

/** What amqplib.connect takes: the parts, not the URL, so the vhost is ours to parse. */
export function connectOptions(ep: AmqpEndpoint): Options.Connect {
  return {
    protocol: ep.tls ? 'amqps' : 'amqp',
    hostname: ep.hostname,
    port: ep.port,
    username: ep.username,
    password: ep.password,
    vhost: encodeURIComponent(ep.vhost), // amqplib unescapes it again
    heartbeat: Math.max(0, Math.round(ep.heartbeat)),
    frameMax: 131072,
  };
}
