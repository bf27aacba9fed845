// Python Celery's app.control.broadcast(..., pattern=, matcher=) against a Celeriac worker process on Redis.
// A pattern that is not a valid regular expression, or one that would backtrack for ever, is refused
// with one log line: the worker keeps running, answers the next ping and runs tasks.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ManagedProcess, PY_DIR, PYTHON, pyEnv, requirePythonCelery, runPythonProducer, startTsWorker, type PyAppConfig } from './harness.js';
import { redisDb, requireRedis, uniqueName } from '../helpers/services.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
});

/** Run Python code with pyapp's `app`; returns the last stdout line parsed as JSON. */
async function python(cfg: PyAppConfig, code: string): Promise<unknown> {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'celeriac-py-')), 'script.py');
  writeFileSync(file, `import json\nfrom pyapp import app\n${code}`);
  const p = new ManagedProcess('python script', PYTHON, [file], { cwd: PY_DIR, env: { ...process.env, PYTHONPATH: PY_DIR, ...pyEnv(cfg) } });
  const exit = await new Promise<number | null>((r) => p.child.once('exit', (c) => r(c)));
  assert.equal(exit, 0, `python script failed:\n${p.tail()}`);
  const lines = p.logs.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!);
}

const broadcast = (method: string, pattern: string, matcher: string) =>
  `print(json.dumps(app.control.broadcast(${JSON.stringify(method)}, pattern=${JSON.stringify(pattern)}, matcher=${JSON.stringify(matcher)}, reply=True, timeout=2)))\n`;

test('[redis] a bad or catastrophic broadcast pattern from Python is refused; the worker keeps answering and running tasks', async () => {
  await requireRedis();
  await requirePythonCelery();
  const url = redisDb(12);
  const queue = uniqueName('ctl-pattern');
  // A hostname on which (a+)+$ backtracks for ever in a backtracking engine.
  const hostname = `${'a'.repeat(40)}-${queue}@x`;
  const worker = await startTsWorker({ broker: url, backend: url, queues: [queue], hostname, concurrency: 2 });
  cleanup.push(() => worker.stop());
  const cfg: PyAppConfig = { broker: url, backend: url, queue };

  // The crash of #15 item 1: new RegExp('(') threw outside any try and the process exited.
  await python(cfg, `app.control.broadcast('ping', pattern='(', matcher='pcre')\nprint('[]')\n`);
  // ReDoS: Python's re.match would spin; a linear-time matcher answers at once.
  const started = Date.now();
  const redos = (await python(cfg, broadcast('ping', '(a+)+$', 'pcre'))) as Record<string, unknown>[];
  assert.ok(Date.now() - started < 15_000, 'the catastrophic pattern did not stall the worker');
  assert.deepEqual(redos, [], 'the pattern does not match this hostname, so no reply');
  assert.ok(worker.running, `the worker is still running after a bad pattern:\n${worker.tail()}`);
  await worker.waitForOutput(/pattern '\('.*refused/i, 10_000, 'one log line naming the refused pattern');
  assert.equal(worker.count(/pattern '\('/), 1, 'the bad pattern is logged once');

  // Celery's semantics: pcre is re.match (anchored at the start only), glob is fnmatch (the whole name).
  const pcre = (await python(cfg, broadcast('ping', 'a{40}-ctl', 'pcre'))) as Record<string, unknown>[];
  assert.deepEqual(pcre, [{ [hostname]: { ok: 'pong' } }]);
  const glob = (await python(cfg, broadcast('ping', `*-${queue}@?`, 'glob'))) as Record<string, unknown>[];
  assert.deepEqual(glob, [{ [hostname]: { ok: 'pong' } }]);
  const noGlob = (await python(cfg, broadcast('ping', `*-${queue}`, 'glob'))) as Record<string, unknown>[];
  assert.deepEqual(noGlob, [], 'a glob must match the whole hostname');
  const unknown = (await python(cfg, broadcast('ping', '*', 'nosuchmatcher'))) as Record<string, unknown>[];
  assert.deepEqual(unknown, [], 'an unknown matcher selects no worker');

  const [r] = await runPythonProducer(cfg, [{ task: 'ts.add', args: [20, 22] }]);
  assert.equal(r!.result, 42, 'the worker still runs tasks');
  assert.ok(worker.running);
});
