// socket_connect_timeout (and redis_socket_connect_timeout, broker_connection_timeout for RabbitMQ)
// against an address that swallows every packet: a network namespace made for this test, where
// 10.77.0.2 has a fixed link-layer address on a veth pair and nothing answers. The client runs inside
// it (ip netns exec); the namespace is deleted afterwards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';

const NS = `celeriac-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
const BLACKHOLE = '10.77.0.2';

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function removeNamespace(): void {
  spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
}

before(() => {
  try {
    ip('netns', 'add', NS);
  } catch (err) {
    throw new Error(`Cannot create a network namespace (${(err as Error).message.split('\n')[0]}): this test needs root and iproute2 (apt-get install -y iproute2)`);
  }
  process.on('exit', removeNamespace);
  ip('-n', NS, 'link', 'set', 'lo', 'up');
  ip('-n', NS, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
  ip('-n', NS, 'addr', 'add', '10.77.0.1/24', 'dev', 'v0');
  ip('-n', NS, 'link', 'set', 'v0', 'up');
  ip('-n', NS, 'link', 'set', 'v1', 'up');
  // A fixed neighbour entry: no ARP, so frames leave and are dropped (not ours on v1): a silent peer.
  ip('-n', NS, 'neigh', 'add', BLACKHOLE, 'lladdr', '02:00:00:00:00:02', 'dev', 'v0', 'nud', 'permanent');
});

after(() => {
  removeNamespace();
  const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  assert.ok(!left.includes(NS), `namespace ${NS} was not removed`);
});

function probe(what: 'broker' | 'backend', settings: Record<string, unknown>): { elapsedMs: number; error: string | null } {
  const r = spawnSync('ip', ['netns', 'exec', NS, process.execPath, '--import', 'tsx', 'test/fixtures/connect-probe.ts'], {
    encoding: 'utf8', timeout: 60_000, env: { ...process.env, CELERIAC_PROBE_WHAT: what, CELERIAC_PROBE_SETTINGS: JSON.stringify(settings) },
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { elapsedMs: number; error: string | null };
}

test('the blackhole really swallows connections: without a short timeout a connect is still waiting after 3 s', () => {
  const r = spawnSync('ip', ['netns', 'exec', NS, 'timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${BLACKHOLE}/6379`], { encoding: 'utf8' });
  assert.equal(r.status, 124, `the connect ended on its own (status ${r.status}): ${r.stderr}`);
});

test('broker_transport_options.socket_connect_timeout bounds a Redis connect to a silent address', (t) => {
  const url = `redis://:pw@${BLACKHOLE}:6379/0`;
  const fast = probe('broker', { broker_url: url, broker_transport_options: { socket_connect_timeout: 1 } });
  const slower = probe('broker', { broker_url: url, broker_transport_options: { socket_connect_timeout: 3 } });
  t.diagnostic(`socket_connect_timeout 1 s: failed after ${fast.elapsedMs} ms; 3 s: after ${slower.elapsedMs} ms`);
  for (const r of [fast, slower]) {
    assert.match(r.error ?? '', new RegExp(`Cannot connect to redis://:\\*\\*@${BLACKHOLE.replace(/\./g, '\\.')}:6379/0: .*(ETIMEDOUT|timed out)`));
  }
  assert.ok(fast.elapsedMs >= 900 && fast.elapsedMs < 2500, `socket_connect_timeout 1: ${fast.elapsedMs} ms`);
  assert.ok(slower.elapsedMs >= 2900 && slower.elapsedMs < 5000, `socket_connect_timeout 3: ${slower.elapsedMs} ms`);
});

test('redis_socket_connect_timeout bounds the result backend connect the same way', (t) => {
  const r = probe('backend', { broker_url: 'memory://', result_backend: `redis://${BLACKHOLE}:6379/1`, redis_socket_connect_timeout: 1 });
  t.diagnostic(`redis_socket_connect_timeout 1 s: failed after ${r.elapsedMs} ms`);
  assert.match(r.error ?? '', /Cannot connect to redis:\/\/10\.77\.0\.2:6379\/1: .*(ETIMEDOUT|timed out)/);
  assert.ok(r.elapsedMs >= 900 && r.elapsedMs < 2500, `${r.elapsedMs} ms`);
});

test('broker_connection_timeout bounds a RabbitMQ connect to a silent address', (t) => {
  const r = probe('broker', { broker_url: `amqp://guest:guest@${BLACKHOLE}:5672//`, broker_connection_timeout: 1 });
  t.diagnostic(`broker_connection_timeout 1 s (amqp): failed after ${r.elapsedMs} ms`);
  assert.match(r.error ?? '', /Cannot connect to RabbitMQ at amqp:\/\/guest:\*\*@10\.77\.0\.2:5672\/\/: no answer within 1 s \(broker_connection_timeout\)/);
  assert.ok(r.elapsedMs >= 900 && r.elapsedMs < 2500, `${r.elapsedMs} ms`);
});
