// Who may use the dashboard: `celeriac dashboard` refuses a non-loopback --address without --basic-auth
// (exit 64, saying what to pass) unless --insecure; with --basic-auth every page and endpoint answers
// 401 without the credentials; the library call applies the same rule.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Celeriac, dashboard, createLogger } from '../../src/index.js';
import { CLI, runCli } from '../helpers/cli.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { eventually } from '../helpers/services.js';

let redis: RedisServer;
let dir: string;
const children: ChildProcess[] = [];

before(async () => {
  redis = await startRedisServer();
  dir = mkdtempSync(path.join(tmpdir(), 'celeriac-dash-security-'));
});

after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Start `celeriac dashboard` and resolve with its URL once it printed it. */
async function startCli(args: string[]): Promise<{ url: string; child: ChildProcess; out: () => string }> {
  const child = spawn(process.execPath, [...CLI, '-b', redis.url(0), 'dashboard', '--db', path.join(dir, `h-${children.length}.sqlite`), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const m = await eventually(() => /celeriac dashboard: (http:\/\/\S+)/.exec(out) ?? (child.exitCode !== null ? Promise.reject(new Error(out)) : null), 'the dashboard URL', 20_000, 50);
  return { url: m![1]!, child, out: () => out };
}

async function stop(child: ChildProcess): Promise<number | null> {
  child.kill('SIGTERM');
  return new Promise((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));
}

test('--address 0.0.0.0 without --basic-auth refuses to start: exit 64 and what to pass', async () => {
  const r = await runCli(['-b', redis.url(0), 'dashboard', '--address', '0.0.0.0', '--port', '0', '--db', path.join(dir, 'refused.sqlite')]);
  assert.equal(r.code, 64);
  assert.match(r.stderr, /Refusing to serve the dashboard on 0\.0\.0\.0 without authentication/);
  assert.match(r.stderr, /--basic-auth user:password/);
  assert.match(r.stderr, /--insecure/);
  const bad = await runCli(['-b', redis.url(0), 'dashboard', '--basic-auth', 'nocolon', '--port', '0']);
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /--basic-auth takes user:password/);
});

test('--address 0.0.0.0 --insecure starts, and answers without credentials', async () => {
  const port = await freePort();
  const { child } = await startCli(['--address', '0.0.0.0', '--port', String(port), '--insecure']);
  const res = await fetch(`http://127.0.0.1:${port}/healthcheck`);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'OK');
  assert.equal(await stop(child), 0, 'SIGTERM stops it cleanly');
});

test('--basic-auth: 401 with a WWW-Authenticate challenge without or with wrong credentials, on pages, APIs, the stream and /metrics', async () => {
  const port = await freePort();
  const { url, child } = await startCli(['--address', '0.0.0.0', '--port', String(port), '--basic-auth', 'admin:s3cr:et']);
  assert.equal(url, `http://0.0.0.0:${port}/`);
  const base = `http://127.0.0.1:${port}`;
  const good = { authorization: `Basic ${Buffer.from('admin:s3cr:et').toString('base64')}` };
  const wrong = { authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}` };
  for (const p of ['/', '/ui/app.js', '/api/workers', '/api/tasks', '/dashboard/api/tasks', '/api/stream', '/metrics', '/healthcheck']) {
    const none = await fetch(base + p);
    assert.equal(none.status, 401, `${p} without credentials`);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Basic realm="Celeriac dashboard"/);
    assert.equal((await fetch(base + p, { headers: wrong })).status, 401, `${p} with a wrong password`);
  }
  const revoke = await fetch(`${base}/api/task/revoke/some-id`, { method: 'POST' });
  assert.equal(revoke.status, 401, 'actions need the credentials too');
  for (const p of ['/', '/api/workers', '/dashboard/api/tasks', '/metrics', '/healthcheck']) {
    const res = await fetch(base + p, { headers: good });
    assert.equal(res.status, 200, `${p} with the credentials`);
    await res.arrayBuffer();
  }
  assert.equal(await stop(child), 0);
});

test('the library call applies the same rule; listen: false builds the app to mount, and its fetch serves the API', async () => {
  const app = new Celeriac('security', { broker: redis.url(0), logger: createLogger('critical') });
  try {
    await assert.rejects(dashboard(app, { address: '0.0.0.0', port: 0, db: path.join(dir, 'lib.sqlite') }), { name: 'DashboardUsageError', message: /without authentication/ });
    const d = await dashboard(app, { listen: false, db: path.join(dir, 'lib.sqlite'), basicAuth: 'u:p' });
    try {
      assert.equal(d.url, '');
      assert.equal((await d.fetch(new Request('http://mounted/healthcheck'))).status, 401);
      const res = await d.fetch(new Request('http://mounted/healthcheck', { headers: { authorization: `Basic ${Buffer.from('u:p').toString('base64')}` } }));
      assert.equal(await res.text(), 'OK');
    } finally {
      await d.close();
    }
  } finally {
    await app.close();
  }
});
