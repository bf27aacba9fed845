// Runs test files concurrently where they share no state, and prints one TAP stream with node's summary.
// Each file runs as `node --import tsx --test <file>`; two files never run at once when they hold the same
// lock. Locks come from the file and the test files it imports (helpers, fixtures):
//   redisDb(N) / openTestDb(N) / redisDb(NAME) with `const NAME = N`  ->  redis-db-N (one Redis database)
//   startRabbitNode(                                                  ->  rabbit-node (private node ports)
//   a comment `// test-locks: a, b` (`exclusive` = run alone)          ->  a, b
// A file may raise its timeout (node's --test-timeout, which also bounds the whole file) with a comment
// `// test-timeout: <ms>`.
// See docs/testing.md for the audit behind this.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const files = process.argv.slice(2);
const concurrency = Math.max(1, Number(process.env.CELERIAC_TEST_CONCURRENCY) || Math.max(2, os.availableParallelism() + 1));
const timeout = process.env.CELERIAC_TEST_TIMEOUT ?? '300000';
const timesFile = path.join(root, '.celeriac', 'test-times.json');

/** Locks of one file: what it declares and uses, plus what the local test modules it imports use. */
function locksOf(file, seen = new Set()) {
  const abs = path.resolve(root, file);
  if (seen.has(abs) || !existsSync(abs)) return new Set();
  seen.add(abs);
  const text = readFileSync(abs, 'utf8');
  const locks = new Set();
  const constants = new Map([...text.matchAll(/\bconst\s+([A-Z_][A-Z0-9_]*)\s*=\s*(\d+)\b/g)].map((m) => [m[1], m[2]]));
  for (const m of text.matchAll(/\b(?:redisDb|openTestDb)\(\s*([A-Za-z_0-9]+)\s*\)/g)) {
    const db = /^\d+$/.test(m[1]) ? m[1] : constants.get(m[1]);
    if (db !== undefined) locks.add(`redis-db-${db}`);
  }
  if (/\bstartRabbitNode\(/.test(text) && !/export async function startRabbitNode/.test(text)) locks.add('rabbit-node');
  for (const m of text.matchAll(/^\s*\/\/\s*test-locks:\s*(.+)$/gm)) {
    for (const l of m[1].split(',')) {
      const name = /^\s*([\w.-]+)/.exec(l)?.[1];
      if (name) locks.add(name);
    }
  }
  // Local imports inside test/ only (src/ holds no test state).
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    const dep = path.resolve(path.dirname(abs), m[1]).replace(/\.js$/, '.ts');
    if (dep.startsWith(path.join(root, 'test') + path.sep)) for (const l of locksOf(dep, seen)) locks.add(l);
  }
  return locks;
}

/** A file's own `// test-timeout: <ms>` (for files whose whole run is long, such as npm installs). */
function timeoutOf(file) {
  const m = /^\s*\/\/\s*test-timeout:\s*(\d+)/m.exec(readFileSync(path.resolve(root, file), 'utf8'));
  return m ? m[1] : undefined;
}

function loadTimes() {
  try {
    return JSON.parse(readFileSync(timesFile, 'utf8'));
  } catch {
    return {};
  }
}

if (process.env.CELERIAC_TEST_LIST_LOCKS) {
  for (const f of files) process.stdout.write(`${f}\t${[...locksOf(f)].join(', ') || '-'}\n`);
  process.exit(0);
}

const times = loadTimes();
// Longest first (from the last run), so a long file does not start last and run alone at the end.
const pending = files
  .map((file, i) => ({ file, i, locks: locksOf(file), timeout: timeoutOf(file), expected: times[file] ?? 0 }))
  .sort((a, b) => b.expected - a.expected || a.i - b.i);

const totals = { tests: 0, suites: 0, pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };
const SUMMARY = new RegExp(`^# (${Object.keys(totals).join('|')}) (\\d+)$`);
let number = 0;
let failedFiles = [];
const started = Date.now();
const running = new Set();

process.stdout.write('TAP version 13\n');

/** Print one file's TAP: its top-level results renumbered into the combined stream, its summary summed. */
function report(job, out, code, ms) {
  const counted = { ...totals };
  for (const k of Object.keys(counted)) counted[k] = 0;
  let sawSummary = false;
  const lines = [`# ${job.file} (${(ms / 1000).toFixed(1)} s${job.locks.size ? `; locks: ${[...job.locks].join(', ')}` : ''})`];
  for (const line of out.split('\n')) {
    if (line === 'TAP version 13' || /^1\.\.\d+$/.test(line) || /^# duration_ms /.test(line)) continue;
    const s = SUMMARY.exec(line);
    if (s) {
      counted[s[1]] = Number(s[2]);
      sawSummary = true;
      continue;
    }
    const top = /^(not ok|ok) \d+ (.*)$/.exec(line);
    lines.push(top ? `${top[1]} ${++number} ${top[2]}` : line);
  }
  if (!sawSummary || (code !== 0 && counted.fail === 0)) {
    // The runner died without a verdict (crash, kill): count the file as one failed test.
    lines.push(`not ok ${++number} - ${job.file}`, `  ---`, `  error: 'the test process exited with code ${code} without a passing summary'`, `  ...`);
    counted.tests++;
    counted.fail++;
  }
  for (const k of Object.keys(totals)) totals[k] += counted[k];
  if (counted.fail > 0 || code !== 0) failedFiles.push(job.file);
  process.stdout.write(lines.join('\n').replace(/\n+$/, '') + '\n');
}

function runOne(job) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT; // each file reports as a top-level run
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', `--test-timeout=${job.timeout ?? timeout}`, job.file], {
      cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { err += d; });
    child.on('close', (code, signal) => {
      const ms = Date.now() - t0;
      times[job.file] = ms;
      const errLines = err.split('\n').filter(Boolean).map((l) => `# stderr: ${l}`);
      report(job, [out, ...errLines].join('\n'), code ?? (signal ? 128 : 1), ms);
      resolve();
    });
  });
}

function conflicts(job) {
  if (running.size === 0) return false;
  if (job.locks.has('exclusive')) return true;
  for (const r of running) {
    if (r.locks.has('exclusive')) return true;
    for (const l of job.locks) if (r.locks.has(l)) return true;
  }
  return false;
}

await new Promise((done) => {
  const next = () => {
    if (pending.length === 0 && running.size === 0) return done();
    while (running.size < concurrency) {
      const idx = pending.findIndex((j) => !conflicts(j));
      if (idx < 0) break;
      const [job] = pending.splice(idx, 1);
      running.add(job);
      void runOne(job).then(() => {
        running.delete(job);
        next();
      });
    }
  };
  next();
});

mkdirSync(path.dirname(timesFile), { recursive: true });
writeFileSync(timesFile, JSON.stringify(times, null, 1) + '\n');
process.stdout.write(`1..${number}\n`);
for (const [k, v] of Object.entries(totals)) process.stdout.write(`# ${k} ${v}\n`);
process.stdout.write(`# duration_ms ${Date.now() - started}\n`);
process.stdout.write(`# files ${files.length}, run ${concurrency} at a time${failedFiles.length ? `; failed: ${failedFiles.join(' ')}` : ''}\n`);
process.exit(totals.fail > 0 || failedFiles.length > 0 ? 1 : 0);
