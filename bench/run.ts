// `npm run bench`: runs every system on the same Redis (and RabbitMQ), one after another, and prints
// medians, ranges, Redis cost per task and Celeriac's ratio to each peer. Issue #7.
// The orchestrator only spawns children, times them from the outside (INFO counters) and collects
// their JSON result lines; every system runs in its own process.
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { parseArgs, type BenchOptions } from './lib/cli.js';
import { buildPlan, type Case } from './lib/plan.js';
import { launch, REPO_DIR, SYSTEM_PYTHON, useCompiledChildren } from './lib/child.js';
import { compileChildren, removeCompiledChildren, COMPILED_DIR } from './lib/compile.js';
import { BenchRedis, BenchRabbit, diff, probe, startOwnRedis } from './lib/services.js';
import { summarize, summariesFromRaw, tableRows, textTable, TABLE_HEADER, checkTargets, type RunRecord, type Summary } from './lib/report.js';
import { throughputChart } from './lib/svg.js';
import { writeDocs, type Environment } from './lib/docs.js';
import type { ChildSpec } from './lib/spec.js';

const isTTY = process.stderr.isTTY;
function progress(line: string, done = false): void {
  if (isTTY) process.stderr.write(`\r\x1b[2K${line}${done ? '\n' : ''}`);
  else process.stderr.write(line + '\n');
}

function timeoutFor(spec: ChildSpec): number {
  // Pre-fills run at thousands of messages a second for every system; one that stalls (celery-node
  // publishing 20,000 messages to RabbitMQ does) fails its case instead of holding up the run.
  if (spec.role === 'prefill') return 30_000 + spec.n;
  const perTask = spec.role === 'latency' ? 700 : spec.task === 'io' || spec.role === 'canvas' ? 20 : 5;
  return Math.min(20 * 60_000, 60_000 + spec.n * perTask + spec.warmup * perTask);
}

function pkgVersion(name: string): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(REPO_DIR, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

function pythonVersions(): string {
  try {
    return execFileSync(SYSTEM_PYTHON, ['-c', 'import sys, celery, kombu; print("Python %d.%d.%d, Celery %s, kombu %s" % (sys.version_info[:3] + (celery.__version__, kombu.__version__)))'], { encoding: 'utf8' }).trim();
  } catch {
    return 'Python Celery not importable with ' + SYSTEM_PYTHON;
  }
}

async function main(): Promise<number> {
  const opts: BenchOptions = parseArgs(process.argv.slice(2));
  if (opts.fromJson) return rerender(opts.fromJson, opts.writeDocs);
  let ownRedis: ChildProcess | null = null;
  if (opts.ownRedisPort) {
    ownRedis = await startOwnRedis(opts.ownRedisPort);
    opts.redisUrl = `redis://127.0.0.1:${opts.ownRedisPort}`;
  }
  const redisHost = new URL(opts.redisUrl);
  if (!(await probe(redisHost.hostname, Number(redisHost.port || 6379)))) {
    throw new Error(`Redis is not answering at ${redisHost.host}; start it with: redis-server --save "" --appendonly no (or pass --redis-url)`);
  }
  const redis = new BenchRedis(opts.redisUrl, opts.brokerDb, opts.resultsDb);
  await redis.connect();

  let rabbit: BenchRabbit | null = null;
  if (opts.amqpUrl && opts.scenarios.includes('S8')) {
    const u = new URL(opts.amqpUrl);
    if (await probe(u.hostname, Number(u.port || 5672))) {
      rabbit = new BenchRabbit(opts.amqpUrl, opts.vhost);
      try {
        await rabbit.ensureVhost();
      } catch (err) {
        process.stderr.write(`warning: could not create vhost ${opts.vhost} with rabbitmqctl (${String(err).split('\n')[0]}); trying it as is\n`);
      }
    } else {
      process.stderr.write(`warning: RabbitMQ is not answering at ${u.host}; S8 skipped (start it with: rabbitmq-server -detached)\n`);
    }
  }

  const background = await redis.backgroundRate(1000);
  if (background > 5) process.stderr.write(`note: other clients are sending ~${Math.round(background)} commands/s to this Redis; INFO-based per-task figures include them (use --own-redis PORT for exact counts)\n`);

  const env: Environment = {
    date: new Date().toISOString(),
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.type()} ${os.release()}`,
    loadavgAtStart: os.loadavg().map((x) => x.toFixed(2)).join(' '),
    node: process.version,
    redis: `${await redis.version()} at ${redisHost.host}${ownRedis ? ' (private instance, --save "" --appendonly no)' : ' (shared server, bench databases ' + opts.brokerDb + ',' + opts.resultsDb + ')'}`,
    rabbitmq: rabbit ? `${await rabbit.version()} (vhost ${opts.vhost})` : 'not used',
    bullmq: pkgVersion('bullmq'),
    celeryNode: pkgVersion('celery-node'),
    python: pythonVersions(),
    celeriac: (JSON.parse(fs.readFileSync(path.join(REPO_DIR, 'package.json'), 'utf8')) as { version: string }).version,
    runs: opts.runs,
    smoke: opts.smoke,
    backgroundCommandsPerSec: Math.round(background),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
  };

  const cases = buildPlan({
    smoke: opts.smoke, scenarios: opts.scenarios, systems: opts.systems,
    redisBroker: redis.url(opts.brokerDb), redisBackend: redis.url(opts.resultsDb), amqpBroker: rabbit ? rabbit.url() : null,
    events: opts.events,
    concurrencies: opts.concurrencies,
    drainTasks: opts.drainTasks,
  });
  if (cases.length === 0) throw new Error('nothing to run: check --only and --systems');

  if (!opts.tsx) {
    await compileChildren();
    useCompiledChildren(COMPILED_DIR);
  }
  env.nodeChildren = opts.tsx ? 'TypeScript through tsx' : 'JavaScript compiled by esbuild (no loader)';

  const profileDir = path.join(os.tmpdir(), 'celeriac-bench-profiles');
  if (opts.profile) fs.mkdirSync(profileDir, { recursive: true });

  // Interleave systems inside each run so drift on a shared machine spreads over all of them.
  const groups: Case[][] = [];
  for (const c of cases) {
    const g = groups.find((x) => x[0]!.scenario === c.scenario && x[0]!.variant === c.variant && x[0]!.broker === c.broker);
    if (g) g.push(c); else groups.push([c]);
  }
  const records = new Map<Case, RunRecord[]>(cases.map((c) => [c, []]));
  const total = cases.length * opts.runs;
  let step = 0;
  const started = Date.now();
  const partialFile = path.join(os.tmpdir(), `celeriac-bench-partial-${process.pid}.json`);
  process.stderr.write(`raw results so far are kept in ${partialFile}\n`);

  for (const group of groups) {
    for (let run = 1; run <= opts.runs; run++) {
      for (const c of group) {
        step++;
        const head = `[${String(step).padStart(String(total).length)}/${total}] ${c.scenario} ${c.variant} · ${c.label} · run ${run}/${opts.runs}`;
        progress(`${head} …`);
        const rec = await runCase(c, redis, rabbit, opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []);
        records.get(c)!.push(rec);
        // Keep what was measured so far: a long run stopped half-way still leaves its raw numbers.
        fs.writeFileSync(partialFile, JSON.stringify({ env, runs: cases.map((x) => ({ case: x, runs: records.get(x)!.map((r) => ({ ...r, result: { ...r.result, latenciesMs: undefined } })) })) }));
        const r = rec.result;
        const shown = !r.ok ? 'FAILED' : c.metric === 'latency' ? `p50 ${(r.latenciesMs?.[Math.floor((r.latenciesMs.length - 1) / 2)] ?? 0).toFixed(2)} ms` : c.metric === 'rss' ? `${(r.maxRssBytes / 2 ** 20).toFixed(0)} MB` : `${Math.round(r.rate).toLocaleString('en-US')} tasks/s`;
        progress(`${head} → ${shown}  (${Math.round((Date.now() - started) / 1000)} s)`, !r.ok || !isTTY);
        if (!r.ok) process.stderr.write(`  ${(r.error ?? '').split('\n').slice(0, 8).join('\n  ')}\n`);
      }
    }
  }
  progress(`done in ${Math.round((Date.now() - started) / 1000)} s`, true);

  const summaries: Summary[] = cases.map((c) => summarize(c, records.get(c)!));
  const rows = tableRows(summaries);
  console.log(`\nCeleriac benchmarks (${opts.smoke ? 'smoke' : 'full'}; ${opts.runs} run${opts.runs > 1 ? 's' : ''} per case; median, min – max)\n`);
  console.log(textTable(TABLE_HEADER, rows));
  const targets = checkTargets(summaries);
  if (targets.length) {
    console.log('\nIssue #7 targets:');
    for (const t of targets) console.log(`  ${t.met ? 'met    ' : 'MISSED '} ${t.target}: ${t.measured}`);
  }
  console.log('\nCeleriac × = Celeriac / peer for throughput, peer / Celeriac for latency and RSS (above 1: Celeriac is better).');

  const raw = { env, summaries, runs: cases.map((c) => ({ case: c, runs: records.get(c)!.map((r) => ({ ...r, result: { ...r.result, latenciesMs: undefined } })) })) };
  if (opts.jsonOut) fs.writeFileSync(opts.jsonOut, JSON.stringify(raw, null, 2));
  if (opts.writeDocs) {
    const dir = path.join(REPO_DIR, 'docs', 'benchmarks');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'latest.json'), JSON.stringify(raw, null, 2) + '\n');
    fs.writeFileSync(path.join(dir, 'throughput.svg'), throughputChart(summaries, `Celeriac vs peers, ${env.date.slice(0, 10)}, ${os.cpus().length} cores`));
    writeDocs(path.join(REPO_DIR, 'docs', 'benchmarks.md'), env, summaries, targets, rows);
    console.log(`\nwrote docs/benchmarks.md, docs/benchmarks/throughput.svg, docs/benchmarks/latest.json`);
  }
  if (opts.profile) console.log(`CPU profiles: ${profileDir}`);
  fs.rmSync(partialFile, { force: true });

  await redis.close();
  if (ownRedis) ownRedis.kill('SIGTERM');
  if (!opts.tsx) removeCompiledChildren();
  return reportFailures(summaries);
}

function reportFailures(summaries: Summary[]): number {
  const failed = summaries.filter((s) => s.failedRuns > 0);
  if (failed.length) console.log(`\n${failed.length} case(s) had failed runs: ${failed.map((s) => `${s.scenario} ${s.variant} ${s.label} (${s.failedRuns} of ${s.runs})`).join('; ')}`);
  return failed.length ? 1 : 0;
}

/** `--from-json PATH`: print the table and targets of a saved run again, and write the docs from it. */
function rerender(file: string, writeDocsToo: boolean): number {
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as { env: Environment; summaries: Summary[]; runs: unknown[] };
  const summaries = summariesFromRaw(raw);
  const rows = tableRows(summaries);
  console.log(textTable(TABLE_HEADER, rows));
  const targets = checkTargets(summaries);
  for (const t of targets) console.log(`  ${t.met ? 'met    ' : 'MISSED '} ${t.target}: ${t.measured}`);
  if (writeDocsToo) {
    const dir = path.join(REPO_DIR, 'docs', 'benchmarks');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'latest.json'), JSON.stringify({ ...raw, summaries }, null, 2) + '\n');
    fs.writeFileSync(path.join(dir, 'throughput.svg'), throughputChart(summaries, `Celeriac vs peers, ${raw.env.date.slice(0, 10)}, ${raw.env.machine.split(' ')[0]} cores`));
    writeDocs(path.join(REPO_DIR, 'docs', 'benchmarks.md'), raw.env, summaries, targets, rows);
    console.log(`\nwrote docs/benchmarks.md, docs/benchmarks/throughput.svg, docs/benchmarks/latest.json from ${file}`);
  }
  return reportFailures(summaries);
}

async function runCase(c: Case, redis: BenchRedis, rabbit: BenchRabbit | null, profileFlags: string[]): Promise<RunRecord> {
  await redis.flush();
  if (c.broker === 'amqp' && rabbit) await rabbit.reset([c.spec.queue]);
  const rec: RunRecord = { result: { ok: false, count: 0, elapsedMs: 0, rate: 0, maxRssBytes: 0, cpuMs: 0 } };
  if (c.prefill) {
    const a = await redis.counters();
    const p = await launch(c.system, c.prefill, { timeoutMs: timeoutFor(c.prefill) }).result;
    rec.prefillRedis = diff(a, await redis.counters());
    rec.prefillCount = p.count;
    if (!p.ok) {
      rec.result = { ...p, error: `prefill failed: ${p.error ?? ''}` };
      return rec;
    }
  }
  const worker = c.worker ? launch(c.system, c.worker, { timeoutMs: 30 * 60_000 }) : null;
  try {
    if (worker) {
      const ready = await Promise.race([worker.ready.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 60_000)), worker.result.then(() => false)]);
      if (!ready) {
        const w = await Promise.race([worker.result, Promise.resolve(undefined)]);
        rec.result = { ok: false, error: `worker did not become ready: ${w?.error ?? 'no READY line within 60 s'}`, count: 0, elapsedMs: 0, rate: 0, maxRssBytes: 0, cpuMs: 0 };
        return rec;
      }
    }
    const flags = c.system === 'celeriac' && c.metric !== 'latency' ? profileFlags : [];
    const a = await redis.counters();
    rec.result = await launch(c.system, c.spec, { timeoutMs: timeoutFor(c.spec), nodeFlags: flags }).result;
    rec.redis = diff(a, await redis.counters());
    if (c.spec.role === 'drain' && c.broker === 'redis' && c.system !== 'bullmq') rec.leftInQueue = await redis.llen(c.spec.queue);
  } finally {
    await worker?.stop();
  }
  return rec;
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`\nbench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
