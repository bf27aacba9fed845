// `npm run demo`: start a worker on the embedded default, send a batch of tasks, show progress,
// print the results, stop cleanly. Needs no server.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const workdir = mkdtempSync(path.join(os.tmpdir(), 'celeriac-demo-'));
process.chdir(workdir); // the embedded database is ./celeriac.db, here
const { app, add, slowSquare, flaky, boom } = await import('./tasks.js');

const say = (s: string) => process.stdout.write(s + '\n');
say(`Celeriac demo — working directory ${workdir}\n`);

const worker = spawn(process.execPath, [path.join(root, 'bin/celeriac.js'), '-A', path.join(root, 'examples/tasks.ts'), 'worker', '-c', '8', '-l', 'info', '-n', 'demo@%h'], {
  cwd: workdir,
  stdio: ['ignore', 'pipe', 'pipe'],
});
let workerLog = '';
worker.stdout.on('data', (d) => process.stdout.write(d));
worker.stderr.on('data', (d) => (workerLog += d));
await new Promise<void>((resolve, reject) => {
  const t = setTimeout(() => reject(new Error(`The worker did not become ready:\n${workerLog}`)), 30_000);
  worker.stderr.on('data', () => {
    if (workerLog.includes('ready.')) {
      clearTimeout(t);
      resolve();
    }
  });
  worker.once('exit', (code) => reject(new Error(`The worker exited with ${code}:\n${workerLog}`)));
});

const started = Date.now();
const adds = await Promise.all(Array.from({ length: 20 }, (_, i) => add.delay(i, i)));
const squares = await Promise.all(Array.from({ length: 10 }, (_, i) => slowSquare.delay(i)));
const later = await add.applyAsync([40, 2], {}, { countdown: 2 });
const retried = await flaky.delay('flaky task');
const failed = await boom.delay('this task always fails');
const all = [...adds, ...squares, later, retried, failed];
say(`Sent ${all.length} tasks (20 adds, 10 slow squares, one with a 2 s countdown, one that retries, one that fails).`);

let done = 0;
const tty = process.stdout.isTTY && !process.env.CI;
const outcomes = await Promise.all(
  all.map((r) =>
    r.get({ timeout: 60_000 }).then(
      (value) => ({ ok: true as const, value }),
      (error: Error) => ({ ok: false as const, error }),
    ).finally(() => {
      done++;
      if (tty) process.stdout.write(`\rprogress: ${done}/${all.length}`);
    }),
  ),
);
if (tty) process.stdout.write('\r\x1b[K');
say(`All ${all.length} tasks finished in ${((Date.now() - started) / 1000).toFixed(1)} s:\n`);
const show = (label: string, i: number) => {
  const o = outcomes[i]!;
  say(`  ${label.padEnd(28)} ${o.ok ? JSON.stringify(o.value) : `${o.error.name}: ${o.error.message}`}`);
};
say(`  adds 0+0 … 19+19             ${JSON.stringify(outcomes.slice(0, 20).map((o) => (o.ok ? o.value : o.error.name)))}`);
say(`  squares 0 … 9                ${JSON.stringify(outcomes.slice(20, 30).map((o) => (o.ok ? o.value : o.error.name)))}`);
show('40 + 2 after a 2 s countdown', 30);
show('flaky (retries twice)', 31);
show('boom (always fails)', 32);

say('\nStopping the worker (warm shutdown)…');
worker.kill('SIGTERM');
const code = await new Promise<number | null>((r) => worker.once('exit', (c) => r(c)));
await app.close();
const retryLines = workerLog.split('\n').filter((l) => l.includes(' retry: ')).length;
say(`Worker exited with code ${code}; it logged ${retryLines} retries. Full worker log: ${path.join(workdir, 'worker.log')}`);
(await import('node:fs')).writeFileSync(path.join(workdir, 'worker.log'), workerLog);
const allGood = outcomes.slice(0, 32).every((o) => o.ok) && !outcomes[32]!.ok && code === 0;
if (!process.env.CELERIAC_DEMO_KEEP) rmSync(path.join(workdir, 'celeriac.db'), { force: true });
process.exit(allGood ? 0 : 1);
