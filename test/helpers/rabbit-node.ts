// RabbitMQ for tests: the seed user/vhost on the shared server, and a private node for fault tests.
// The private node has its own name, ports, config, data and log directories, and is only ever stopped
// through `rabbitmqctl -n <its node name>` or by its own recorded PID. Never pkill/killall.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync, chownSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import amqplib from '../../src/brokers/amqp/amqplib.js';
import { requireRabbit, AMQP_URL, sleep } from './services.js';
import { freePort, makeTlsFiles, type TlsFiles } from './redis-server.js';

const run = promisify(execFile);

/** The seed guide's account: amqp://myuser:mypassword@localhost:5672/myvhost. */
export const SEED = { user: 'myuser', password: 'mypassword', vhost: 'myvhost', tag: 'mytag' };
export const SEED_URL = `amqp://${SEED.user}:${SEED.password}@localhost:${new URL(AMQP_URL).port || 5672}/${SEED.vhost}`;

export async function rabbitmqctl(args: string[], node?: string): Promise<string> {
  const full = node ? ['-n', node, ...args] : args;
  const { stdout } = await run('rabbitmqctl', full, { timeout: 60_000 });
  return stdout;
}

async function canUse(url: string): Promise<boolean> {
  try {
    const c = await amqplib.connect(url, { timeout: 3000 });
    await c.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Exactly the seed's setup (add_user, add_vhost, set_user_tags, set_permissions), idempotent:
 * skipped when the account already works, "already exists" is not an error.
 */
export async function ensureSeedAccount(): Promise<string> {
  await requireRabbit();
  if (await canUse(SEED_URL)) return SEED_URL;
  const tolerate = async (args: string[]) => {
    try {
      await rabbitmqctl(args);
    } catch (err) {
      if (!/already exists|already_exists/i.test(String((err as { stderr?: string }).stderr ?? err))) throw err;
    }
  };
  await tolerate(['add_user', SEED.user, SEED.password]);
  await rabbitmqctl(['change_password', SEED.user, SEED.password]);
  await tolerate(['add_vhost', SEED.vhost]);
  await rabbitmqctl(['set_user_tags', SEED.user, SEED.tag]);
  await rabbitmqctl(['set_permissions', '-p', SEED.vhost, SEED.user, '.*', '.*', '.*']);
  if (!(await canUse(SEED_URL))) throw new Error(`Set up ${SEED.user}/${SEED.vhost} with rabbitmqctl but still cannot connect to ${SEED_URL.replace(SEED.password, '**')}`);
  return SEED_URL;
}

/** A user that exists but has no permissions on the seed vhost (for the error-message tests). */
export async function ensureUserWithoutPermission(user: string, password: string): Promise<void> {
  try {
    await rabbitmqctl(['add_user', user, password]);
  } catch (err) {
    if (!/already exists|already_exists/i.test(String((err as { stderr?: string }).stderr ?? err))) throw err;
    await rabbitmqctl(['change_password', user, password]);
  }
  await rabbitmqctl(['clear_permissions', '-p', SEED.vhost, user]).catch(() => undefined);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function freePortPair(from: number): Promise<number> {
  for (let p = from; p < from + 200; p++) {
    if ((await portFree(p)) && (await portFree(p + 10000))) return p;
  }
  throw new Error(`No free port pair found from ${from}`);
}

export interface RabbitNode {
  node: string;
  port: number;
  url: string;
  pid: number;
  dir: string;
  /** The TLS listener's port and its certificate files (with { tls: true }). */
  tlsPort?: number;
  tlsFiles?: TlsFiles;
  /** SIGSTOP the Erlang VM: sockets stay open, nothing answers (a hung broker). */
  pause(): void;
  resume(): void;
  stopApp(): Promise<void>;
  startApp(): Promise<void>;
  /** Stop this node (rabbitmqctl -n node stop, then its own PID if still alive) and remove its files. */
  stop(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface RabbitNodeOptions {
  /** Also listen for AMQPS on another port, with a self-signed certificate for 127.0.0.1/localhost. */
  tls?: boolean;
}

/** Start a private RabbitMQ node (own name, ports, config, data and logs) and wait until it accepts AMQP. */
export async function startRabbitNode(name = `celeriac-fault-${process.pid}`, options: RabbitNodeOptions = {}): Promise<RabbitNode> {
  const port = await freePortPair(25700 + (process.pid % 100) * 2);
  const node = `${name}@localhost`;
  const dir = mkdtempSync(path.join(tmpdir(), 'celeriac-rabbit-'));
  for (const sub of ['mnesia', 'log']) mkdirSync(path.join(dir, sub));
  const config = [`listeners.tcp.local = 127.0.0.1:${port}`];
  let tlsPort: number | undefined;
  let tlsFiles: TlsFiles | undefined;
  if (options.tls) {
    tlsPort = await freePort();
    tlsFiles = makeTlsFiles(dir);
    config.push(`listeners.ssl.default = 127.0.0.1:${tlsPort}`, `ssl_options.cacertfile = ${tlsFiles.ca}`, `ssl_options.certfile = ${tlsFiles.cert}`,
      `ssl_options.keyfile = ${tlsFiles.key}`, 'ssl_options.verify = verify_none', 'ssl_options.fail_if_no_peer_cert = false');
  }
  writeFileSync(path.join(dir, 'rabbitmq.conf'), config.join('\n') + '\n');
  writeFileSync(path.join(dir, 'enabled_plugins'), '[].\n');
  writeFileSync(path.join(dir, 'rabbitmq-env.conf'), '');
  const { uid, gid } = await rabbitIds();
  for (const p of [dir, path.join(dir, 'mnesia'), path.join(dir, 'log'), path.join(dir, 'rabbitmq.conf'), path.join(dir, 'enabled_plugins'), path.join(dir, 'rabbitmq-env.conf'),
    ...(tlsFiles ? [tlsFiles.cert, tlsFiles.key] : [])]) chownSync(p, uid, gid);
  const env = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/var/lib/rabbitmq',
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
    RABBITMQ_DIST_PORT: String(port + 10000),
    ERL_EPMD_ADDRESS: '127.0.0.1',
    RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq.conf'),
    RABBITMQ_CONF_ENV_FILE: path.join(dir, 'rabbitmq-env.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(dir, 'log'),
    RABBITMQ_PID_FILE: path.join(dir, 'node.pid'),
    RABBITMQ_SERVER_ERL_ARGS: '+S 1:1 +A 4',
  };
  const child: ChildProcess = spawn('/usr/lib/rabbitmq/bin/rabbitmq-server', [], { env, uid, gid, cwd: dir, stdio: 'ignore', detached: true });
  child.unref();
  const pid = child.pid!;
  const url = `amqp://guest:guest@127.0.0.1:${port}//`;
  const deadline = Date.now() + 60_000;
  while (!(await canUse(url))) {
    if (!alive(pid)) throw new Error(`Private RabbitMQ node ${node} exited during startup; see ${dir}/log`);
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
      throw new Error(`Private RabbitMQ node ${node} did not accept AMQP on port ${port} within 60 s; see ${dir}/log`);
    }
    await sleep(250);
  }
  const ctl = (args: string[]) => rabbitmqctl(args, node);
  // The script we started runs the Erlang VM as its child; the VM writes its own PID to the pid file.
  const vmPid = Number(readFileSync(path.join(dir, 'node.pid'), 'utf8').trim());
  const signalVm = (signal: NodeJS.Signals) => {
    if (vmPid > 0 && alive(vmPid)) process.kill(vmPid, signal);
  };
  return {
    node, port, url, pid, dir, tlsPort, tlsFiles,
    pause: () => signalVm('SIGSTOP'),
    resume: () => signalVm('SIGCONT'),
    stopApp: async () => { await ctl(['stop_app']); },
    startApp: async () => { await ctl(['start_app']); },
    stop: async () => {
      signalVm('SIGCONT');
      await ctl(['stop']).catch(() => undefined);
      const until = Date.now() + 15_000;
      while (alive(pid) && Date.now() < until) await sleep(200);
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function rabbitIds(): Promise<{ uid: number; gid: number }> {
  const [{ stdout: u }, { stdout: g }] = await Promise.all([run('id', ['-u', 'rabbitmq']), run('id', ['-g', 'rabbitmq'])]);
  return { uid: Number(u.trim()), gid: Number(g.trim()) };
}
