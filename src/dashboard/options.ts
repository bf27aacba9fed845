// The dashboard's options, checked once: where it listens, who may use it, where its history goes.

export interface DashboardOptions {
  /** TCP port (default 5555, Flower's); 0 picks a free one. */
  port?: number;
  /** Address to bind (default 127.0.0.1). Anything but loopback needs basicAuth, or insecure. */
  address?: string;
  /** 'user:password': HTTP basic auth on every page and endpoint. */
  basicAuth?: string;
  /** The history file (default the dashboard_db setting, `.celeriac/dashboard.sqlite`). */
  db?: string;
  /** Hours of history kept (default 168, a week). */
  retention?: number;
  /** Listen on a non-loopback address without auth. */
  insecure?: boolean;
  /** false: build the app without listening (mount `fetch` in your own server). */
  listen?: boolean;
}

export interface ResolvedOptions {
  port: number;
  address: string;
  auth: { username: string; password: string } | null;
  db: string;
  retentionHours: number;
  listen: boolean;
}

/** A refused option: the CLI prints the message and exits 64 (EX_USAGE). */
export class DashboardUsageError extends Error {
  override name = 'DashboardUsageError';
  readonly exitCode = 64;
}

export function isLoopback(address: string): boolean {
  const a = address.replace(/^\[|\]$/g, '');
  return a === 'localhost' || a === '::1' || /^127\.\d+\.\d+\.\d+$/.test(a) || a === '::ffff:127.0.0.1';
}

export function resolveOptions(o: DashboardOptions, defaultDb: string): ResolvedOptions {
  const port = o.port ?? 5555;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new DashboardUsageError(`The dashboard port must be a whole number from 0 to 65535, got ${JSON.stringify(o.port)}.`);
  const address = o.address ?? '127.0.0.1';
  let auth: ResolvedOptions['auth'] = null;
  if (o.basicAuth !== undefined) {
    const i = o.basicAuth.indexOf(':');
    if (i <= 0 || i === o.basicAuth.length - 1) throw new DashboardUsageError('--basic-auth takes user:password (both non-empty), e.g. --basic-auth admin:s3cret');
    auth = { username: o.basicAuth.slice(0, i), password: o.basicAuth.slice(i + 1) };
  }
  const listen = o.listen !== false;
  if (listen && !isLoopback(address) && !auth && !o.insecure) {
    throw new DashboardUsageError(`Refusing to serve the dashboard on ${address} without authentication: anyone who can reach it could revoke tasks and shut workers down. Pass --basic-auth user:password, or --insecure if the network is yours alone.`);
  }
  const retentionHours = o.retention ?? 168;
  if (!Number.isFinite(retentionHours) || retentionHours <= 0) throw new DashboardUsageError(`--retention takes a number of hours above 0, got ${JSON.stringify(o.retention)}.`);
  return { port, address, auth, db: o.db ?? defaultDb, retentionHours, listen };
}
