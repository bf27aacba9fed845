// Private redis-server and redis-sentinel processes for tests: own ports, own temp dir, own PIDs.
// Nothing here touches the shared Redis at 6379; stop() ends exactly the processes it started.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const INSTALL_HINT = 'install them with: apt-get install -y redis-server redis-sentinel redis-tools openssl';

function requireBinary(name: string): void {
  const r = spawnSync(name, ['--version'], { encoding: 'utf8' });
  if (r.error) throw new Error(`${name} is not installed or not on PATH (${r.error.message}); ${INSTALL_HINT}`);
}

// Every process this module started, so a crashed test run still ends them (and nothing else).
const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of started) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
});

/** A TCP port nobody listens on right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** A self-signed certificate for 127.0.0.1/localhost, made by openssl in dir. */
export function makeTlsFiles(dir: string): TlsFiles {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  if (!existsSync(cert)) {
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert], { encoding: 'utf8' });
    if (r.error || r.status !== 0) throw new Error(`openssl could not make a test certificate: ${r.error?.message ?? r.stderr}; ${INSTALL_HINT}`);
  }
  return { ca: cert, cert, key };
}

export interface RedisServerOptions {
  /** Also listen on a unix socket in the temp dir. */
  unixSocket?: boolean;
  /** Also listen for TLS on another port (self-signed certificate; clients need not present one). */
  tls?: boolean;
  /** requirepass (and masterauth, for replicas). */
  password?: string;
  /** Start as a replica of this port on 127.0.0.1. */
  replicaOf?: number;
  /** Extra `--name value` arguments, e.g. ['--maxmemory-policy', 'allkeys-lru']. */
  args?: string[];
}

abstract class Managed {
  protected child: ChildProcess | undefined;
  exited: Promise<void> = Promise.resolve();
  protected out = '';

  protected launch(bin: string, args: string[], cwd: string): void {
    const child = spawn(bin, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    started.add(child);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { this.out = (this.out + d).slice(-20_000); });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { this.out = (this.out + d).slice(-20_000); });
    this.exited = new Promise((resolve) => child.once('exit', () => { started.delete(child); resolve(); }));
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  get logs(): string {
    return this.out;
  }

  /** SIGKILL: the process gets no chance to clean up. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** SIGSTOP: the process keeps its sockets open but answers nothing (a hung server). */
  pause(): void {
    if (this.running) this.child!.kill('SIGSTOP');
  }

  resume(): void {
    if (this.running) this.child!.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.resume();
    this.child!.kill('SIGTERM');
    await Promise.race([this.exited, sleep(5000)]);
    await this.kill();
  }
}

export class RedisServer extends Managed {
  readonly dir: string;
  port = 0;
  tlsPort = 0;
  socketPath: string | undefined;
  tlsFiles: TlsFiles | undefined;

  constructor(readonly options: RedisServerOptions = {}, dir?: string) {
    super();
    requireBinary('redis-server');
    this.dir = dir ?? mkdtempSync(path.join(os.tmpdir(), 'celeriac-redis-'));
  }

  async start(): Promise<this> {
    const o = this.options;
    this.port ||= await freePort();
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--daemonize', 'no'];
    if (o.unixSocket) {
      this.socketPath = path.join(this.dir, 'redis.sock');
      args.push('--unixsocket', this.socketPath, '--unixsocketperm', '700');
    }
    if (o.tls) {
      this.tlsFiles = makeTlsFiles(this.dir);
      this.tlsPort ||= await freePort();
      args.push('--tls-port', String(this.tlsPort), '--tls-cert-file', this.tlsFiles.cert, '--tls-key-file', this.tlsFiles.key,
        '--tls-ca-cert-file', this.tlsFiles.ca, '--tls-auth-clients', 'no');
    }
    if (o.password) args.push('--requirepass', o.password, '--masterauth', o.password);
    if (o.replicaOf) args.push('--replicaof', '127.0.0.1', String(o.replicaOf));
    args.push(...(o.args ?? []));
    this.launch('redis-server', args, this.dir);
    await this.waitReady();
    return this;
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`redis-server on port ${this.port} exited at start:\n${this.out}`);
      const r = this.cli('PING');
      if (r.trim() === 'PONG') return;
      await sleep(50);
    }
    throw new Error(`redis-server on port ${this.port} did not answer PING within 10 s:\n${this.out}`);
  }

  /** Run a command with redis-cli against this server; returns its stdout. */
  cli(...command: string[]): string {
    const auth = this.options.password ? ['-a', this.options.password, '--no-auth-warning'] : [];
    const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(this.port), ...auth, ...command], { encoding: 'utf8', timeout: 5000 });
    if (r.error) throw new Error(`redis-cli failed: ${r.error.message}; ${INSTALL_HINT}`);
    return r.stdout;
  }

  /** redis://[:password@]127.0.0.1:port/db */
  url(db = 0): string {
    const auth = this.options.password ? `:${encodeURIComponent(this.options.password)}@` : '';
    return `redis://${auth}127.0.0.1:${this.port}/${db}`;
  }

  override async stop(): Promise<void> {
    if (this.running) {
      this.resume();
      this.cli('SHUTDOWN', 'NOSAVE');
    }
    await Promise.race([this.exited, sleep(3000)]);
    await super.stop();
  }

  /** Stop the server and remove its temp dir. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Start a private redis-server; remember to destroy() it. */
export function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  return new RedisServer(options).start();
}

export interface SentinelOptions {
  masterName: string;
  masterPort: number;
  /** Password of the master and its replicas (sentinel auth-pass). */
  masterPassword?: string;
  /** requirepass of the sentinel itself (what sentinel_kwargs.password authenticates to). */
  password?: string;
  quorum?: number;
  downAfterMs?: number;
  failoverTimeoutMs?: number;
}

export class SentinelServer extends Managed {
  readonly dir: string;
  port = 0;

  constructor(readonly options: SentinelOptions) {
    super();
    requireBinary('redis-sentinel');
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'celeriac-sentinel-'));
  }

  async start(): Promise<this> {
    const o = this.options;
    this.port ||= await freePort();
    const conf = [
      `port ${this.port}`,
      'bind 127.0.0.1',
      `dir ${this.dir}`,
      'daemonize no',
      `sentinel monitor ${o.masterName} 127.0.0.1 ${o.masterPort} ${o.quorum ?? 2}`,
      `sentinel down-after-milliseconds ${o.masterName} ${o.downAfterMs ?? 1000}`,
      `sentinel failover-timeout ${o.masterName} ${o.failoverTimeoutMs ?? 10_000}`,
      `sentinel parallel-syncs ${o.masterName} 1`,
      ...(o.masterPassword ? [`sentinel auth-pass ${o.masterName} ${o.masterPassword}`] : []),
      ...(o.password ? [`requirepass ${o.password}`, `sentinel sentinel-pass ${o.password}`] : []),
    ];
    const file = path.join(this.dir, 'sentinel.conf');
    writeFileSync(file, conf.join('\n') + '\n');
    this.launch('redis-sentinel', [file], this.dir);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`redis-sentinel on port ${this.port} exited at start:\n${this.out}`);
      if (this.cli('PING').trim() === 'PONG') return this;
      await sleep(50);
    }
    throw new Error(`redis-sentinel on port ${this.port} did not answer PING within 10 s:\n${this.out}`);
  }

  cli(...command: string[]): string {
    const auth = this.options.password ? ['-a', this.options.password, '--no-auth-warning'] : [];
    const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(this.port), ...auth, ...command], { encoding: 'utf8', timeout: 5000 });
    if (r.error) throw new Error(`redis-cli failed: ${r.error.message}; ${INSTALL_HINT}`);
    return r.stdout;
  }

  /** The port of the master this sentinel currently believes in. */
  masterPort(): number {
    const lines = this.cli('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.options.masterName).trim().split('\n');
    return Number(lines[1]);
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function startSentinel(options: SentinelOptions): Promise<SentinelServer> {
  return new SentinelServer(options).start();
}

export interface SentinelDeployment {
  master: RedisServer;
  replica: RedisServer;
  sentinels: SentinelServer[];
  destroy(): Promise<void>;
}

/**
 * A master, one replica and three sentinels (quorum 2) that know each other, ready for a failover.
 * `serverArgs` go to both servers (e.g. min-replicas-to-write).
 */
export async function startSentinelDeployment(o: { masterName: string; password?: string; sentinelPassword?: string; serverArgs?: string[] }): Promise<SentinelDeployment> {
  const master = await startRedisServer({ password: o.password, args: o.serverArgs });
  const replica = await startRedisServer({ password: o.password, replicaOf: master.port, args: o.serverArgs });
  const sentinels: SentinelServer[] = [];
  const destroy = async () => {
    await Promise.all(sentinels.map((s) => s.destroy()));
    await Promise.all([master.destroy(), replica.destroy()]);
  };
  try {
    await waitFor('the replica to sync', () => /master_link_status:up/.test(replica.cli('INFO', 'replication')), 10_000);
    sentinels.push(...await Promise.all([0, 1, 2].map(() => startSentinel({
      masterName: o.masterName, masterPort: master.port, masterPassword: o.password, password: o.sentinelPassword, quorum: 2, downAfterMs: 1000, failoverTimeoutMs: 5000,
    }))));
    // Sentinels find the replica through INFO and each other through hello messages (every ~2 s).
    await waitFor('the sentinels to know the replica and each other', () => sentinels.every((s) =>
      /flags\s+slave\b/.test(s.cli('SENTINEL', 'REPLICAS', o.masterName).replace(/\n/g, ' ')) && /num-other-sentinels\s+2\b/.test(s.cli('SENTINEL', 'MASTER', o.masterName).replace(/\n/g, ' '))), 20_000);
  } catch (err) {
    await destroy();
    throw err;
  }
  return { master, replica, sentinels, destroy };
}

async function waitFor(what: string, fn: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}
