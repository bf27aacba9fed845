// The package as a newcomer meets it: `npm pack`, a fresh project, README's install commands, then
// README's tasks.ts and producer.ts (extracted from README.md, not copied) run with README's commands,
// on the embedded default and on Redis. Also: require('celeriac') as README documents it, the package's
// contents, and the lean installs (optional packages left out or not built) with their one-line errors.
// test-timeout: 1200000 (npm installs that compile better-sqlite3, on a loaded machine)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { eventually, redisDb, requireRedis, sleep } from '../helpers/services.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const REDIS = redisDb(15); // this file's own database: flushed before use
const work = mkdtempSync(path.join(os.tmpdir(), 'celeriac-newcomer-'));
const started: ChildProcess[] = [];
let tarball = '';

/** The environment of a user's shell: none of the suite's own settings. */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' };
  for (const k of Object.keys(env)) if (/^(CELERY_|CELERIAC_|NODE_TEST|NODE_OPTIONS$|npm_(command|lifecycle|package))/.test(k)) delete env[k];
  return { ...env, ...extra };
}

/** The README's "Use it in your project" section: its bash and ts code blocks, in order. */
function readmeExample(): { install: string[]; files: Map<string, string>; run: string[] } {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('## Use it in your project');
  assert.ok(start >= 0, 'README.md has a "Use it in your project" section');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 3));
  const blocks = [...section.matchAll(/```(bash|ts)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, text: m[2]! }));
  const commands = (text: string) => text.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter(Boolean);
  const bash = blocks.filter((b) => b.lang === 'bash');
  assert.equal(bash.length, 2, 'an install block and a run block');
  const files = new Map<string, string>();
  for (const b of blocks.filter((x) => x.lang === 'ts')) {
    const name = /^\/\/ ([\w.-]+\.ts):/.exec(b.text)?.[1];
    assert.ok(name, `a ts block starts with "// <file>.ts:", got: ${b.text.split('\n')[0]}`);
    files.set(name, b.text);
  }
  return { install: commands(bash[0]!.text), files, run: commands(bash[1]!.text) };
}

function sh(cwd: string, command: string, env: NodeJS.ProcessEnv = userEnv(), timeout = 600_000): string {
  try {
    return execFileSync('bash', ['-c', command], { cwd, env, encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { status: number; stdout: string; stderr: string };
    throw new Error(`${command} failed (exit ${e.status}) in ${cwd}:\n${e.stdout}\n${e.stderr}`);
  }
}

interface Run { child: ChildProcess; out: () => string; exit: Promise<number | null> }

function start(cwd: string, command: string, env: NodeJS.ProcessEnv): Run {
  const child = spawn('bash', ['-c', `exec ${command}`], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  return { child, out: () => out, exit: new Promise((r) => child.once('exit', (code) => r(code))) };
}

/** A process's descendants (from /proc), deepest last. */
function descendants(pid: number): number[] {
  const kids = (() => {
    try {
      return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  })();
  return kids.flatMap((k) => [k, ...descendants(k)]);
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
const rssMb = (pid: number) => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

function newProject(name: string): string {
  const dir = path.join(work, name);
  mkdirSync(dir);
  sh(dir, 'npm init -y >/dev/null');
  return dir;
}

before(async () => {
  await requireRedis();
  const packed = JSON.parse(sh(ROOT, `npm pack --json --pack-destination '${work}'`, userEnv(), 600_000)) as { filename: string; files: { path: string }[] }[];
  tarball = path.join(work, packed[0]!.filename);
  const files = packed[0]!.files.map((f) => f.path);
  assert.ok(files.includes('dist/index.js') && files.includes('dist/require.cjs') && files.includes('bin/celeriac.js') && files.includes('LICENSE'), files.join(' '));
  assert.deepEqual(files.filter((f) => f.startsWith('src/') || f.endsWith('.map') || f.startsWith('test/')), [], 'no sources, source maps or tests ship');
});

after(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

test("README's example, installed from the packed tarball: tasks.ts and producer.ts on the embedded default and on Redis; require('celeriac')", { timeout: 900_000 }, async (t) => {
  const { install, files, run } = readmeExample();
  assert.deepEqual([...files.keys()], ['tasks.ts', 'producer.ts']);
  const project = newProject('app');
  for (const command of install) sh(project, command.replace(/^npm install celeriac$/, `npm install '${tarball}'`));
  for (const [name, text] of files) writeFileSync(path.join(project, name), text);
  const workerCommand = run.find((c) => / worker\b/.test(c))!;
  const producerCommand = run.find((c) => /producer\.ts/.test(c))!;
  assert.ok(workerCommand && producerCommand, `README's run block: ${run.join(' / ')}`);

  const redis = new Redis(REDIS);
  await redis.flushdb();
  redis.disconnect();
  const variants = [
    { name: 'embedded default', env: userEnv() },
    { name: 'Redis', env: userEnv({ CELERY_BROKER_URL: REDIS, CELERY_RESULT_BACKEND: REDIS }) },
  ];
  for (const v of variants) {
    const worker = start(project, workerCommand, v.env);
    await eventually(() => worker.out().includes('ready.'), `the worker (${v.name}) to be ready`, 60_000).catch((err) => {
      throw new Error(`${(err as Error).message}\n${worker.out()}`);
    });
    if (v.name === 'embedded default') {
      assert.ok(worker.out().includes(`.> transport:   sqlite:///celeriac.db (${path.join(project, 'celeriac.db')})  (embedded default: no broker configured)`), worker.out());
    } else {
      assert.match(worker.out(), /\.> transport:\s+redis:\/\/127\.0\.0\.1:\d+\/15/);
    }
    const node = descendants(worker.child.pid!).find((p) => /node_modules\/\.bin\/celeriac/.test(cmdline(p)));
    assert.ok(node, 'the worker runs the installed bin');
    t.diagnostic(`${v.name}: worker RSS ${rssMb(node).toFixed(0)} MB (a TypeScript app, so tsx is loaded)`);

    const producer = start(project, producerCommand, v.env);
    const code = await Promise.race([producer.exit, sleep(90_000).then(() => 'still running')]);
    assert.equal(code, 0, `${v.name}: the producer did not exit by itself with 0:\n${producer.out()}`);
    assert.deepEqual(producer.out().trim().split('\n'), ['5', '9'], producer.out());

    // A process manager stops npx: the worker must not stay behind as an orphan.
    worker.child.kill('SIGTERM');
    await eventually(() => !alive(node), `the worker (${v.name}) to exit after its npx parent`, 30_000).catch((err) => {
      throw new Error(`${(err as Error).message}\n${worker.out()}`);
    });
    assert.match(worker.out(), /Warm shutdown/);
  }

  writeFileSync(path.join(project, 'check.cjs'), "const { Celeriac } = require('celeriac');\nconsole.log(typeof Celeriac, new Celeriac('cjs').main);\n");
  assert.equal(sh(project, 'node check.cjs').trim(), 'function cjs');
  assert.throws(() => sh(project, 'node --no-experimental-require-module check.cjs'), /celeriac is an ES module and require\(\) of ES modules is turned off in this process .*: use const \{ Celeriac \} = await import\('celeriac'\)/);
});

test('a lean install (optional packages omitted) runs a JavaScript app on Redis from dist/; sqlite:// and amqp:// name the package to add; an unbuilt better-sqlite3 says how to build it', { timeout: 600_000 }, async (t) => {
  const project = newProject('lean');
  sh(project, `npm pkg set type=module && npm install --omit=optional '${tarball}'`);
  assert.ok(!existsSync(path.join(project, 'node_modules/better-sqlite3')) && !existsSync(path.join(project, 'node_modules/amqplib')));
  assert.ok(!existsSync(path.join(project, 'node_modules/tsx')), 'tsx is an optional peer, not installed');
  writeFileSync(path.join(project, 'tasks.js'), "import { Celeriac } from 'celeriac';\nexport const app = new Celeriac('lean');\nexport const mul = app.task('lean.mul', (x, y) => x * y);\n");
  writeFileSync(path.join(project, 'producer.js'), "import { mul } from './tasks.js';\nconsole.log(await (await mul.delay(6, 7)).get({ timeout: 20000 }));\n");
  const env = userEnv({ CELERY_BROKER_URL: REDIS, CELERY_RESULT_BACKEND: REDIS });
  const worker = start(project, 'node_modules/.bin/celeriac -A tasks worker -l info', env);
  try {
    await eventually(() => worker.out().includes('ready.'), 'the lean worker to be ready', 60_000);
    await sleep(2000);
    t.diagnostic(`lean install: worker RSS ${rssMb(worker.child.pid!).toFixed(0)} MB (a JavaScript app, the CLI from dist/, no tsx)`);
    assert.match(cmdline(worker.child.pid!), /^node \S*node_modules\/\.bin\/celeriac -A tasks worker/);
    const out = sh(project, 'node producer.js', env);
    assert.equal(out.trim(), '42');
  } finally {
    worker.child.kill('SIGTERM');
    assert.equal(await worker.exit, 0, worker.out());
  }
  writeFileSync(path.join(project, 'tasks.ts'), 'export {};\n');
  const tsRun = start(project, 'node_modules/.bin/celeriac -A tasks.ts worker', userEnv());
  assert.equal(await tsRun.exit, 2);
  assert.equal(tsRun.out().trim(), `Error: -A tasks.ts: tasks.ts is TypeScript, and Node ${process.version} cannot load it by itself: install tsx (npm install --save-dev tsx), use Node 22.18 or later, or compile it to JavaScript`);

  const sqlite = start(project, "node_modules/.bin/celeriac -b sqlite:///lean.db call lean.mul --args '[1, 2]'", userEnv());
  assert.equal(await sqlite.exit, 1);
  assert.match(sqlite.out(), /^Error: MissingDependencyError: The SQLite database \/\S*\/lean\/lean\.db needs the npm package better-sqlite3, which is not installed \(it is an optional dependency of celeriac\): npm install better-sqlite3@"~12\.11\.1"\n$/);
  const amqp = start(project, 'node_modules/.bin/celeriac -b amqp://guest:guest@127.0.0.1:5672// call lean.mul', userEnv());
  assert.equal(await amqp.exit, 1);
  assert.match(amqp.out(), /^Error: MissingDependencyError: The broker amqp:\/\/guest:\*\*@127\.0\.0\.1:5672\/\/ needs the npm package amqplib, which is not installed .*npm install amqplib@"\^2\.3\.1"\n$/);

  const denied = newProject('denied');
  sh(denied, `npm pkg set type=module && npm pkg set allowScripts.better-sqlite3=false --json && npm install '${tarball}'`);
  assert.ok(existsSync(path.join(denied, 'node_modules/better-sqlite3')) && !existsSync(path.join(denied, 'node_modules/better-sqlite3/build')), 'installed, not built');
  const unbuilt = start(denied, 'node_modules/.bin/celeriac call tasks.add', userEnv());
  assert.equal(await unbuilt.exit, 1);
  assert.match(unbuilt.out(), /^Error: MissingDependencyError: The SQLite database .*celeriac\.db needs better-sqlite3's native module, which is not built for Node v[\d.]+ .*: npm install-scripts approve better-sqlite3 && npm rebuild better-sqlite3\n$/);
});
