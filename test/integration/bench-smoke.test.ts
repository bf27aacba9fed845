// The benchmark harness in smoke mode (issue #7): it must complete for Celeriac and BullMQ and print
// a table with a row per system and scenario. Not a timed test: no figures are asserted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { REDIS_URL, requireRedis } from '../helpers/services.js';

// test-locks: redis-db-12, redis-db-13 (the bench FLUSHDBs them; see --dbs below)

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function runBench(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(repo, 'bench', 'run.ts'), ...args], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('npm run bench -- --smoke completes for Celeriac and BullMQ and prints the table', { timeout: 150_000 }, async () => {
  await requireRedis();
  // Databases 12 and 13 so a concurrent manual `npm run bench` (14, 15) is not flushed under it.
  const { code, stdout, stderr } = await runBench(['--smoke', '--systems', 'celeriac,bullmq', '--only', 'S1,S2,S3,S4,S6', '--dbs', '12,13', '--redis-url', REDIS_URL, '--no-amqp'], 140_000);
  assert.equal(code, 0, `bench exited with ${code}\nstdout:\n${stdout.slice(-3000)}\nstderr:\n${stderr.slice(-3000)}`);
  assert.match(stdout, /Scenario\s+Variant\s+System\s+Median/, 'table header printed');
  for (const scenario of ['S1', 'S2', 'S3', 'S4', 'S6']) {
    for (const system of ['Celeriac', 'BullMQ']) {
      const row = stdout.split('\n').find((l) => l.startsWith(scenario + ' ') && l.includes(` ${system} `));
      assert.ok(row, `no ${scenario} row for ${system} in:\n${stdout}`);
      assert.doesNotMatch(row, /FAILED/, `${scenario} ${system} failed`);
    }
  }
  assert.match(stdout, /Issue #7 targets:/);
  assert.match(stderr, /\[\s*\d+\/\d+\] S1 /, 'progress lines printed');
});

test('npm run bench -- --smoke --only S9 runs the canvas case (a group and a chord) for Celeriac and Python Celery side by side', { timeout: 240_000 }, async () => {
  await requireRedis();
  const { code, stdout, stderr } = await runBench(['--smoke', '--systems', 'celeriac,celery', '--only', 'S9', '--dbs', '12,13', '--no-amqp'], 230_000);
  assert.equal(code, 0, `bench exited with ${code}\nstdout:\n${stdout.slice(-3000)}\nstderr:\n${stderr.slice(-3000)}`);
  for (const kind of ['group of 1,000', 'chord of 1,000']) {
    for (const system of ['Celeriac', 'Celery (threads)']) {
      const row = stdout.split('\n').find((l) => l.startsWith('S9 ') && l.includes(kind) && l.includes(` ${system} `));
      assert.ok(row, `no S9 ${kind} row for ${system} in:\n${stdout}`);
      assert.doesNotMatch(row, /FAILED/, `S9 ${kind} ${system} failed`);
    }
  }
});
