// Issue #6, done-when: four worker processes share an embedded database while 20,000 tasks flow; one is
// SIGKILLed. Every task completes, none is lost, duplicates are bounded by what the killed worker held
// and every duplicate is logged (possible_duplicate) by the worker that picked it up again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import { eventually, sleep } from '../helpers/services.js';

const TASKS = 20_000;
const WORKERS = 4;
const CONCURRENCY = 8;
const PREFETCH_MULTIPLIER = 4;
const LEASE_S = 3;
const KILL_AT = 0.3;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const APP = path.join(root, 'test/faults/sqlite-kill-app.ts');
const CLI = path.join(root, 'src/cli/main.ts');

interface Worker {
  proc: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

function startWorker(url: string, env: NodeJS.ProcessEnv, n: number): Worker {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', CLI, '-A', APP, '-b', url, 'worker', '-c', String(CONCURRENCY), '--prefetch-multiplier', String(PREFETCH_MULTIPLIER), '-n', `w${n}@%h`, '-l', 'warning'],
    { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const w: Worker = { proc, stdout: '', stderr: '', exited: new Promise((r) => proc.on('exit', (code) => r(code))) };
  proc.stdout!.on('data', (d: Buffer) => { w.stdout += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { w.stderr += d.toString(); });
  return w;
}

function ledgerOf(dir: string, pid: number): number[] {
  try {
    return fs.readFileSync(path.join(dir, `ledger-${pid}.txt`), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test('SIGKILL one of four workers sharing an embedded database while 20,000 tasks flow', { timeout: 170_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-sqlite-kill-'));
  const file = path.join(dir, 'db', 'celeriac.db');
  const url = `sqlite:///${file}`;
  const env = { ...process.env, CELERIAC_LEDGER_DIR: dir, CELERIAC_FAULT_DB_URL: url, CELERIAC_FAULT_LEASE_S: String(LEASE_S) };
  Object.assign(process.env, { CELERIAC_LEDGER_DIR: dir, CELERIAC_FAULT_DB_URL: url, CELERIAC_FAULT_LEASE_S: String(LEASE_S) });
  const { app, record } = await import('./sqlite-kill-app.js');

  const workers = Array.from({ length: WORKERS }, (_, i) => startWorker(url, env, i));
  const t0 = Date.now();
  try {
    await eventually(() => workers.every((w) => w.stdout.includes('[tasks]')), 'every worker to print its banner', 30_000, 100);

    const executions = () => workers.flatMap((w) => ledgerOf(dir, w.proc.pid!));
    const victim = workers[0]!;
    let killedAt = 0;
    let victimRanAtKill = 0;
    const watcher = (async () => {
      await eventually(() => executions().length >= TASKS * KILL_AT, `${KILL_AT * 100}% of the tasks to run`, 120_000, 25);
      victim.proc.kill('SIGKILL');
      killedAt = Date.now();
      victimRanAtKill = ledgerOf(dir, victim.proc.pid!).length;
    })();

    const published = Date.now();
    const taskIds: string[] = [];
    for (let i = 0; i < TASKS; i += 500) {
      const sent = await Promise.all(Array.from({ length: Math.min(500, TASKS - i) }, (_, j) => record.delay(i + j)));
      for (const r of sent) taskIds.push(r.id);
    }
    const publishMs = Date.now() - published;
    await watcher;
    assert.equal(await victim.exited, null, 'the victim died of SIGKILL');

    await eventually(() => new Set(executions()).size >= TASKS, 'every task to run at least once', 120_000, 200);
    // Quiescence: the table is empty (nothing waiting, nothing held) and the ledgers stop growing.
    const raw = new BetterSqlite3(file, { readonly: true });
    let last = -1;
    await eventually(() => {
      const rows = (raw.prepare('SELECT count(*) AS n FROM celeriac_messages').get() as { n: number }).n;
      const n = executions().length;
      const stable = rows === 0 && n === last;
      last = n;
      return stable;
    }, 'the broker table to drain and the ledgers to settle', 30_000, 1000);
    const succeeded = (raw.prepare("SELECT count(*) AS n FROM celeriac_results WHERE status = 'SUCCESS'").get() as { n: number }).n;
    raw.close();
    const elapsed = Date.now() - t0;

    const survivors = workers.slice(1);
    for (const w of survivors) w.proc.kill('SIGTERM');
    const codes = await Promise.all(survivors.map((w) => w.exited));

    const all = executions();
    const counts = new Map<number, number>();
    for (const id of all) counts.set(id, (counts.get(id) ?? 0) + 1);
    const lost = Array.from({ length: TASKS }, (_, i) => i).filter((i) => !counts.has(i));
    const duplicated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
    const victimRan = new Set(ledgerOf(dir, victim.proc.pid!));
    const logs = survivors.map((w) => w.stderr).join('');
    const loggedTaskIds = [...logs.matchAll(/possible_duplicate: fault\.record\[([^\]]+)\]/g)].map((m) => m[1]!);
    const logged = new Set(loggedTaskIds);
    const unexpected = all.filter((id) => id < 0 || id >= TASKS);

    console.log(
      `sqlite-kill: ${TASKS} tasks, ${WORKERS} workers -c ${CONCURRENCY}, published in ${publishMs} ms, done in ${elapsed} ms ` +
        `(${Math.round(TASKS / (elapsed / 1000))} tasks/s incl. startup); victim ran ${victimRanAtKill} before SIGKILL; ` +
        `lost ${lost.length}, duplicated ${duplicated.length}, possible_duplicate logged for ${logged.size} task(s), ` +
        `killed at +${killedAt - t0} ms`,
    );

    assert.deepEqual(lost, [], 'no task may be lost');
    assert.deepEqual(unexpected, []);
    assert.equal(succeeded, TASKS, 'every task has a SUCCESS result');
    assert.deepEqual(codes, [0, 0, 0], `survivors shut down cleanly; stderr:\n${logs.slice(0, 4000)}`);
    assert.doesNotMatch(logs, /SQLITE_BUSY|database is locked/, 'no process may fail on SQLITE_BUSY');
    assert.doesNotMatch(logs, /ERROR\/|CRITICAL\//, `no errors in the survivors' logs:\n${logs.slice(0, 4000)}`);
    // Duplicates: only messages the killed worker held (at most its prefetch), each logged when reclaimed.
    const held = CONCURRENCY * PREFETCH_MULTIPLIER;
    assert.ok(duplicated.length <= held, `${duplicated.length} duplicates > the ${held} messages a worker can hold`);
    for (const id of duplicated) {
      assert.ok(victimRan.has(id), `task ${id} ran twice but the killed worker never ran it`);
      assert.equal(counts.get(id), 2, `task ${id} ran ${counts.get(id)} times`);
    }
    assert.ok(loggedTaskIds.length <= held, `${loggedTaskIds.length} reclaimed messages > the ${held} a worker can hold`);
    // Every duplicate was reclaimed after its lease and logged as such by the survivor that ran it again.
    for (const id of duplicated) assert.ok(logged.has(taskIds[id]!), `duplicate task ${id} (${taskIds[id]}) was not logged as possible_duplicate`);
  } finally {
    for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
    await app.close();
  }
});
