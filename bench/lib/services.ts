// The servers the benchmark runs against: the bench's own Redis databases and RabbitMQ vhost.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import net from 'node:net';
import { Redis } from 'ioredis';
import amqp from 'amqplib';

const run = promisify(execFile);

export interface RedisCounters {
  commands: number;
  netIn: number;
  netOut: number;
  /** Redis server CPU (user + sys), milliseconds. */
  cpuMs: number;
}

export function diff(a: RedisCounters, b: RedisCounters): RedisCounters {
  return { commands: b.commands - a.commands, netIn: b.netIn - a.netIn, netOut: b.netOut - a.netOut, cpuMs: b.cpuMs - a.cpuMs };
}

function field(info: string, name: string): number {
  const m = new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info);
  return m ? Number(m[1]) : 0;
}

/** Admin access to the two databases the benchmark owns (broker and results). Never touches others. */
export class BenchRedis {
  private readonly broker: Redis;
  private readonly results: Redis;
  constructor(readonly baseUrl: string, readonly brokerDb: number, readonly resultsDb: number) {
    this.broker = new Redis(this.url(brokerDb), { lazyConnect: true, maxRetriesPerRequest: 2 });
    this.results = new Redis(this.url(resultsDb), { lazyConnect: true, maxRetriesPerRequest: 2 });
  }
  url(db: number): string {
    const u = new URL(this.baseUrl);
    u.pathname = `/${db}`;
    return u.toString();
  }
  async connect(): Promise<void> {
    await this.broker.connect();
    await this.results.connect();
  }
  /** FLUSHDB on the bench's own two databases only. */
  async flush(): Promise<void> {
    await this.broker.flushdb();
    await this.results.flushdb();
  }
  /** Server-wide INFO counters (commands from other clients are counted too). */
  async counters(): Promise<RedisCounters> {
    const info = await this.broker.info('all');
    return {
      commands: field(info, 'total_commands_processed'),
      netIn: field(info, 'total_net_input_bytes'),
      netOut: field(info, 'total_net_output_bytes'),
      cpuMs: (field(info, 'used_cpu_user') + field(info, 'used_cpu_sys')) * 1000,
    };
  }
  async version(): Promise<string> {
    return /redis_version:(\S+)/.exec(await this.broker.info('server'))?.[1] ?? '?';
  }
  async llen(key: string): Promise<number> {
    return this.broker.llen(key);
  }
  async resultKeys(): Promise<number> {
    return this.results.dbsize();
  }
  /** Commands per second other clients are sending right now (measured over `ms`). */
  async backgroundRate(ms = 1000): Promise<number> {
    const a = await this.counters();
    await new Promise((r) => setTimeout(r, ms));
    const b = await this.counters();
    return Math.max(0, ((b.commands - a.commands - 1) * 1000) / ms);
  }
  async close(): Promise<void> {
    this.broker.disconnect();
    this.results.disconnect();
  }
}

export function probe(host: string, port: number, timeoutMs = 1500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => { s.destroy(); resolve(ok); };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** A private redis-server (no persistence) for runs whose INFO counters must not include other clients. */
export async function startOwnRedis(port: number): Promise<ChildProcess> {
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    if (await probe('127.0.0.1', port)) return proc;
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill('SIGTERM');
  throw new Error(`redis-server did not start on port ${port}`);
}

/** The bench's RabbitMQ vhost: created once with rabbitmqctl, its queues deleted between runs. */
export class BenchRabbit {
  constructor(readonly baseUrl: string, readonly vhost: string) {}
  url(): string {
    const u = new URL(this.baseUrl);
    u.pathname = `/${encodeURIComponent(this.vhost)}`;
    return u.toString();
  }
  async ensureVhost(): Promise<void> {
    const { stdout } = await run('rabbitmqctl', ['-q', 'list_vhosts']);
    if (!stdout.split('\n').map((l) => l.trim()).includes(this.vhost)) {
      await run('rabbitmqctl', ['add_vhost', this.vhost]);
    }
    const user = decodeURIComponent(new URL(this.baseUrl).username || 'guest');
    await run('rabbitmqctl', ['set_permissions', '-p', this.vhost, user, '.*', '.*', '.*']);
  }
  async version(): Promise<string> {
    try {
      const conn = await amqp.connect(this.url());
      const v = String((conn as unknown as { connection: { serverProperties: { version?: string } } }).connection.serverProperties.version ?? '?');
      await conn.close();
      return v;
    } catch {
      return '?';
    }
  }
  /** Delete the queues a run may have declared (each on its own channel: a missing queue is not an error). */
  async reset(queues: string[]): Promise<void> {
    const conn = await amqp.connect(this.url());
    try {
      for (const q of queues) {
        const ch = await conn.createChannel();
        ch.on('error', () => {});
        try { await ch.deleteQueue(q); await ch.close(); } catch { /* channel closed by the broker */ }
      }
    } finally {
      await conn.close();
    }
  }
  async queueLength(queue: string): Promise<number> {
    const conn = await amqp.connect(this.url());
    try {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      const ok = await ch.checkQueue(queue).catch(() => ({ messageCount: 0 }));
      return ok.messageCount;
    } finally {
      await conn.close().catch(() => {});
    }
  }
}
