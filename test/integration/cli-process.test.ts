// The CLI under process managers. As PID 1 of a container (here a PID namespace made with unshare), where
// the kernel drops signals that have no handler: a one-shot command ends on SIGTERM, and a worker shuts
// down warm and reaps the pool children it replaces. Under npx / npm exec: a worker whose npm parent is
// gone shuts down warm instead of consuming on as an orphan.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { Celeriac } from '../../src/index.js';
import { eventually, redisDb, requireRedis, sleep, uniqueName } from '../helpers/services.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts')];
const BROKER = redisDb(6);
const dir = mkdtempSync(path.join(os.tmpdir(), 'celeriac-pid1-'));
const started: ChildProcess[] = [];
const inner: number[] = []; // PID-1 processes outlive a killed unshare: killed by their own pid

before(async () => {
  await requireRedis();
  const probe = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']);
  if (probe.error || probe.status !== 0) {
    throw new Error(`These tests make a PID namespace with unshare(1), which needs root: ${probe.error?.message ?? probe.stderr.toString().trim()} (run the suite as root, as CI does)`);
  }
});
after(() => {
  for (const pid of inner) if (state(pid) !== 'gone') process.kill(pid, 'SIGKILL');
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** The direct children of a process (from /proc). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Whether the process has a handler for the signal (SigCgt in /proc): before that, PID 1 drops it. */
function catches(pid: number, signal: number): boolean {
  try {
    const mask = BigInt(`0x${/^SigCgt:\s+([0-9a-f]+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]}`);
    return ((mask >> BigInt(signal - 1)) & 1n) === 1n;
  } catch {
    return false;
  }
}

function state(pid: number): string {
  try {
    return /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
  } catch {
    return 'gone';
  }
}

interface Pid1 { unshare: ChildProcess; pid: number; log: () => string; exit: Promise<number | null> }

/** Run the CLI as PID 1 of a fresh PID namespace; `pid` is its id seen from here. */
async function asPid1(args: string[]): Promise<Pid1> {
  const unshare = spawn('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, ...CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(unshare);
  let log = '';
  unshare.stdout!.setEncoding('utf8').on('data', (d: string) => { log += d; });
  unshare.stderr!.setEncoding('utf8').on('data', (d: string) => { log += d; });
  const exit = new Promise<number | null>((r) => unshare.once('exit', (code) => r(code)));
  const pid = await eventually(() => childrenOf(unshare.pid!)[0], 'the CLI to start inside the namespace');
  inner.push(pid);
  const nspid = /^NSpid:\s+\d+\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  assert.equal(nspid, '1', 'the CLI is PID 1 in its namespace');
  return { unshare, pid, log: () => log, exit };
}

test('as PID 1, a one-shot command (result, waiting) ends on SIGTERM with exit 143', async () => {
  const ID = '00000000-0000-4000-8000-000000000000';
  const run = await asPid1(['-b', BROKER, '--result-backend', BROKER, 'result', ID, '--timeout', '600']);
  // Waiting for real: subscribed to the result's channel (and long past installing its signal handlers).
  const redis = new Redis(BROKER);
  try {
    await eventually(async () => (await redis.pubsub('CHANNELS', `*${ID}*`) as string[]).length > 0, 'the command to wait for the result', 30_000);
  } finally {
    redis.disconnect();
  }
  assert.ok(catches(run.pid, 15), 'SIGTERM has a handler');
  process.kill(run.pid, 'SIGTERM');
  const code = await Promise.race([run.exit, sleep(15_000).then(() => 'still running')]);
  assert.equal(code, 143, `SIGTERM did not end the command:\n${run.log()}`);
});

test('as PID 1, a process-pool worker reaps the children it replaces and shuts down warm on SIGTERM', async () => {
  const queue = uniqueName('pid1');
  const run = await asPid1(['-A', 'test/fixtures/cli-app.ts', '-b', BROKER, '--result-backend', BROKER, 'worker', '-P', 'process', '-c', '2', '--max-tasks-per-child', '1', '-Q', queue, '-l', 'info']);
  await eventually(() => run.log().includes('ready.'), 'the worker to be ready', 30_000);
  const app = new Celeriac('pid1-producer', { broker: BROKER, backend: BROKER, task_default_queue: queue });
  try {
    const results = await Promise.all([1, 2, 3, 4].map(async (i) => (await app.sendTask('tasks.add', [i, i])).get({ timeout: 30_000 })));
    assert.deepEqual(results, [2, 4, 6, 8]);
    // Each child ran one task and was replaced: none of the old ones may linger as a zombie.
    await eventually(() => childrenOf(run.pid).length === 2 && childrenOf(run.pid).every((c) => state(c) !== 'Z'), 'two live children and no zombie', 20_000);
  } finally {
    await app.close();
  }
  process.kill(run.pid, 'SIGTERM');
  const code = await Promise.race([run.exit, sleep(30_000).then(() => 'still running')]);
  assert.equal(code, 0, `the worker did not shut down warm:\n${run.log()}`);
  assert.match(run.log(), /Warm shutdown/);
});

test('under npm exec, a worker whose npm parent exited shuts down warm instead of running on as an orphan', async () => {
  const queue = uniqueName('npx');
  const logFile = path.join(dir, 'npx-worker.log');
  const cmd = [process.execPath, ...CLI, '-b', BROKER, 'worker', '-Q', queue, '-l', 'info'].map((a) => `'${a}'`).join(' ');
  // The shell stands in for npm exec's process tree (npm sets npm_command=exec for the command it runs).
  const parent = spawn('sh', ['-c', `${cmd} > '${logFile}' 2>&1; true`], { cwd: ROOT, env: { ...process.env, npm_command: 'exec', npm_lifecycle_event: 'npx' }, stdio: 'ignore' });
  started.push(parent);
  const worker = await eventually(() => childrenOf(parent.pid!)[0], 'the worker to start');
  await eventually(() => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('ready.'), 'the worker to be ready', 30_000);
  parent.kill('SIGKILL'); // npm gone without passing anything on
  await eventually(() => state(worker) === 'gone', 'the orphaned worker to exit', 20_000);
  const log = readFileSync(logFile, 'utf8');
  assert.match(log, /The process that started this worker under npx \/ npm exec \(pid \d+\) has exited: warm shutdown/);
  assert.match(log, /Warm shutdown/);
  assert.ok(!readdirSync('/proc').includes(String(worker)));
});
