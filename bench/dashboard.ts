// The dashboard's cost, on a private Redis (see docs/dashboard.md for the figures):
//  1. A `celeriac dashboard` watching 100,000 task events a minute (a producer paced at 556 tasks/s and a
//     -E worker: received, started, succeeded) while another worker drains S3's pre-filled queue (no-op
//     tasks, c=100, no -E): the drain with and without the dashboard attached, alternating, in the same
//     sitting (the load runs throughout); then the dashboard alone under the load for --seconds: its RSS.
//  2. Stress: the drain itself with -E, so the dashboard takes the drain's own events (far above
//     100,000 a minute): the drain with and without it, and how much of the burst it stored.
// The dashboard runs from dist/ (`npm run build` first), as a user runs it; the worker and producer
// from the sources.
//   node --import tsx bench/dashboard.ts [--port 6411] [--n 50000] [--runs 3] [--stress-runs 3] [--seconds 60] [--json out.json]
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Celeriac } from '../src/index.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const QUEUE = 'dashbench';
const EVENTS_PER_TASK = 3; // task-received, task-started, task-succeeded

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
}
function argText(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- children -------------------------------------------------------------------------------------

/** `--child drain|worker`: a -E worker on the queue; drain prints tasks/s once --n tasks are done. */
async function child(mode: string): Promise<void> {
  const broker = argText('broker')!;
  const app = new Celeriac('dashbench', { broker, task_ignore_result: true, task_default_queue: QUEUE });
  app.task('bench.noop', () => null);
  const n = arg('n', 0);
  const queue = argText('queue') ?? QUEUE;
  const worker = app.worker({ queues: [queue], concurrency: arg('c', 100), loglevel: 'warning', taskEvents: argText('events') !== 'off', hostname: `bench-${mode}-${queue}@dashbench` });
  let count = 0;
  let first = 0;
  let last = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  worker.on('taskPostrun', () => {
    const now = performance.now();
    if (count === 0) first = now;
    last = now;
    if (++count === n) done();
  });
  await worker.start();
  process.stdout.write('READY\n');
  if (mode === 'drain') {
    await finished;
    process.stdout.write(`RESULT ${JSON.stringify({ tasks: n, seconds: (last - first) / 1000, rate: n / ((last - first) / 1000) })}\n`);
    await worker.close();
    await app.close();
    process.exit(0);
  }
  process.on('SIGTERM', () => void worker.close().then(() => app.close()).then(() => process.exit(0)));
  await new Promise(() => undefined);
}

// ---- the parent -----------------------------------------------------------------------------------

interface Proc {
  child: ChildProcess;
  out: () => string;
}

function start(cmd: string, args: string[], env: Record<string, string> = {}): Proc {
  const c = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  c.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  c.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  return { child: c, out: () => out };
}

async function waitFor(p: Proc, re: RegExp, what: string, ms = 30_000): Promise<RegExpExecArray> {
  const end = Date.now() + ms;
  for (;;) {
    const m = re.exec(p.out());
    if (m) return m;
    if (p.child.exitCode !== null || Date.now() > end) throw new Error(`${what}: ${p.child.exitCode !== null ? `exited ${p.child.exitCode}` : 'timed out'}\n${p.out().slice(-2000)}`);
    await sleep(20);
  }
}

async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode !== null) return;
  const exited = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  await Promise.race([exited, sleep(10_000)]);
  if (p.child.exitCode === null) p.child.kill('SIGKILL');
}

/** CPU seconds (user + system) a process has used. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Resident set of a process now and its peak (VmHWM), in MB. */
function rss(pid: number): { now: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { now: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function parent(): Promise<void> {
  const built = path.join(ROOT, 'dist', '.built');
  if (!existsSync(built) || statSync(built).mtimeMs < statSync(path.join(ROOT, 'src', 'dashboard', 'server.ts')).mtimeMs) {
    throw new Error('dist/ is missing or older than src/dashboard: run `npm run build` first (the dashboard runs from dist/, as users run it).');
  }
  const port = arg('port', 6411);
  const n = arg('n', 50_000);
  const runs = arg('runs', 3);
  const seconds = arg('seconds', 60);
  const stressRuns = arg('stress-runs', runs);
  const load1 = [loadavg()[0]!];
  const redisProc = start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  await waitFor(redisProc, /Ready to accept connections/, 'redis-server');
  const broker = `redis://127.0.0.1:${port}/0`;
  const redis = new Redis(port, '127.0.0.1');
  const dir = mkdtempSync(path.join(tmpdir(), 'celeriac-dashbench-'));
  const app = new Celeriac('dashbench', { broker, task_ignore_result: true, task_default_queue: QUEUE });
  const noop = app.task('bench.noop', () => null);

  const startDashboard = async (): Promise<Proc & { url: string }> => {
    const p = start(process.execPath, ['bin/celeriac.js', '-A', 'bench/dashboard-app.mjs', '-b', broker, 'dashboard', '--port', '0', '--db', path.join(dir, 'history.sqlite')]);
    const m = await waitFor(p, /celeriac dashboard: (http:\/\/\S+)/, 'the dashboard');
    return Object.assign(p, { url: m[1]! });
  };
  const stored = async (url: string): Promise<number> => ((await (await fetch(`${url}dashboard/api/tasks?limit=0`)).json()) as { total: number }).total;

  try {
    const drainOnce = async (queue: string, events: boolean): Promise<number> => {
      await redis.del(queue);
      for (let i = 0; i < n; i += 1000) await noop.applyBulk(Array.from({ length: Math.min(1000, n - i) }, () => ({ args: [], options: { queue } })));
      const w = start(process.execPath, ['--import', 'tsx', 'bench/dashboard.ts', '--child', 'drain', '--broker', broker, '--queue', queue, '--n', String(n), '--c', '100', '--events', events ? 'on' : 'off']);
      const m = await waitFor(w, /RESULT (.*)/, 'the drain', 300_000);
      return (JSON.parse(m[1]!) as { rate: number }).rate;
    };

    // 1. The dashboard watching 100,000 events a minute (a paced producer and a -E worker on queue
    //    'load', running throughout), while a worker drains S3's pre-filled queue (no -E, c=100):
    //    the drain with and without the dashboard attached, alternating which goes first.
    const loadWorker = start(process.execPath, ['--import', 'tsx', 'bench/dashboard.ts', '--child', 'worker', '--broker', broker, '--queue', 'load', '--c', '10']);
    await waitFor(loadWorker, /READY/, 'the load worker');
    const perSecond = Math.ceil(100_000 / 60 / EVENTS_PER_TASK);
    let loading = true;
    let sent = 0;
    const loadT0 = Date.now();
    const load = (async () => {
      for (let tick = 0; loading; tick++) {
        // Ten slices a second, so the load is even rather than one burst per second.
        const k = Math.floor(perSecond / 10) + (tick % 10 < perSecond % 10 ? 1 : 0);
        await noop.applyBulk(Array.from({ length: k }, () => ({ args: [], options: { queue: 'load' } })));
        sent += k;
        const due = loadT0 + (tick + 1) * 100;
        if (Date.now() < due) await sleep(due - Date.now());
      }
    })();
    let dashNow: (Proc & { url: string }) | undefined = await startDashboard();
    let attached = true;
    const samples: number[] = [];
    const sampler = setInterval(() => {
      try {
        if (attached && dashNow) samples.push(rss(dashNow.child.pid!).now);
      } catch {
        // it is being stopped
      }
    }, 1000);
    const rates: Record<'without' | 'with', number[]> = { without: [], with: [] };
    await sleep(5000); // the dashboard at its steady load before the first drain
    for (let run = 0; run < runs; run++) {
      for (const mode of run % 2 === 0 ? (['without', 'with'] as const) : (['with', 'without'] as const)) {
        if (mode === 'without' && attached) {
          attached = false;
          await stop(dashNow!);
          attached = false;
        } else if (mode === 'with' && !attached) {
          dashNow = await startDashboard();
          attached = true;
          await sleep(2000);
        }
        const rate = await drainOnce(QUEUE, false);
        rates[mode].push(rate);
        process.stdout.write(`drain run ${run + 1} ${mode.padEnd(7)} ${Math.round(rate).toLocaleString('en')} tasks/s (load average ${loadavg()[0]!.toFixed(1)})\n`);
      }
    }
    // The watch: the last attached dashboard runs on for `seconds` under the load alone.
    if (!attached) {
      dashNow = await startDashboard();
      attached = true;
    }
    const storedAtWatch = await stored(dashNow!.url);
    const cpuAtWatch = cpuSeconds(dashNow!.child.pid!);
    const watchStart = Date.now();
    const sentAtWatch = sent;
    const samplesAtWatch = samples.length;
    await sleep(seconds * 1000);
    const cpuShare = (cpuSeconds(dashNow!.child.pid!) - cpuAtWatch) / ((Date.now() - watchStart) / 1000);
    const watchSamples = samples.slice(samplesAtWatch);
    loading = false;
    await load;
    const elapsed = (Date.now() - loadT0) / 1000;
    const eventsPerMinute = Math.round(((sent - sentAtWatch) * EVENTS_PER_TASK) / ((Date.now() - watchStart) / 60_000));
    clearInterval(sampler);
    // Every task sent during the watch is in its history: how long after the load stopped (at most 30 s)?
    const sentInWatch = sent - sentAtWatch;
    const stopAt = Date.now();
    let storedInWatch = 0;
    while (Date.now() - stopAt < 30_000 && (storedInWatch = (await stored(dashNow!.url)) - storedAtWatch) < sentInWatch) await sleep(50);
    const catchUpSeconds = (Date.now() - stopAt) / 1000;
    const metrics = await (await fetch(`${dashNow!.url}metrics`)).text();
    const succeededEvents = [...metrics.matchAll(/^flower_events_total\{[^}]*type="task-succeeded"[^}]*\} (\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
    const mem = rss(dashNow!.child.pid!);
    await stop(dashNow!);
    await stop(loadWorker);
    const ratio = median(rates.with) / median(rates.without);
    // Each run's pair ran back to back: its ratio cancels slow drifts of the machine's load.
    const paired = rates.with.map((w, i) => w / rates.without[i]!);

    // 2. The stress case: the drain itself with -E, so the dashboard takes the drain's own events
    //    (three per task, at the drain's rate: far above 100,000 a minute).
    const stress: Record<'without' | 'with', number[]> = { without: [], with: [] };
    const kept: number[] = [];
    const stressRss: number[] = [];
    load1.push(loadavg()[0]!);
    for (let run = 0; run < stressRuns; run++) {
      for (const mode of run % 2 === 0 ? (['without', 'with'] as const) : (['with', 'without'] as const)) {
        const d = mode === 'with' ? await startDashboard() : undefined;
        if (d) await sleep(1000);
        const before = d ? await stored(d.url) : 0;
        const rate = await drainOnce('stress', true);
        stress[mode].push(rate);
        let line = `stress run ${run + 1} ${mode.padEnd(7)} ${Math.round(rate).toLocaleString('en')} tasks/s`;
        if (d) {
          const end = Date.now() + 60_000;
          let got = 0;
          while (Date.now() < end && (got = (await stored(d.url)) - before) < n) await sleep(250);
          kept.push(got / n);
          stressRss.push(rss(d.child.pid!).peak);
          line += `; the dashboard stored ${got.toLocaleString('en')}/${n.toLocaleString('en')}, RSS peak ${rss(d.child.pid!).peak.toFixed(0)} MB`;
          await stop(d);
        }
        process.stdout.write(line + '\n');
      }
    }

    load1.push(loadavg()[0]!);
    const result = {
      date: new Date().toISOString(),
      machine: { cpus: availableParallelism(), loadAverage1m: load1 },
      drain: { tasks: n, concurrency: 100, runs, without: rates.without, with: rates.with, ratio, pairedRatios: paired, medianPairedRatio: median(paired) },
      watch: {
        eventsPerMinute, cpuShareOfOneCpu: cpuShare, loadSeconds: elapsed, tasksSentInWatch: sentInWatch, storedInWatch, catchUpSeconds, succeededEvents,
        rssMb: { medianDuringDrains: samples.length ? median(samples) : null, medianWatch: median(watchSamples), last: mem.now, peak: mem.peak },
      },
      stress: stressRuns ? { without: stress.without, with: stress.with, ratio: median(stress.with) / median(stress.without), storedFraction: kept, rssPeakMb: stressRss } : null,
    };
    process.stdout.write(`\ndrain (S3: n=${n}, c=100) beside a dashboard watching ${eventsPerMinute.toLocaleString('en')} events/min: without ${Math.round(median(rates.without)).toLocaleString('en')} tasks/s, with ${Math.round(median(rates.with)).toLocaleString('en')} tasks/s: ratio ${ratio.toFixed(3)} (median of the runs' paired ratios ${median(paired).toFixed(3)})\n`);
    process.stdout.write(`dashboard CPU while watching: ${(cpuShare * 100).toFixed(1)} % of one CPU\n`);
    process.stdout.write(`dashboard RSS: median ${result.watch.rssMb.medianWatch.toFixed(0)} MB, peak ${mem.peak.toFixed(0)} MB; stored ${storedInWatch.toLocaleString('en')} of the ${sentInWatch.toLocaleString('en')} tasks sent in the last ${seconds} s, ${catchUpSeconds.toFixed(2)} s after the load stopped\n`);
    if (result.stress) process.stdout.write(`stress (the drain with -E, its events to the dashboard): without ${Math.round(median(stress.without)).toLocaleString('en')} tasks/s, with ${Math.round(median(stress.with)).toLocaleString('en')}: ratio ${result.stress.ratio.toFixed(3)}\n`);
    process.stdout.write(`load average (1 min) along the way: ${load1.map((l) => l.toFixed(1)).join(', ')} on ${availableParallelism()} CPUs\n`);
    const out = argText('json');
    if (out) writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  } finally {
    await app.close();
    redis.disconnect();
    await stop(redisProc);
    rmSync(dir, { recursive: true, force: true });
  }
}

const mode = argText('child');
if (mode) await child(mode);
else await parent();
