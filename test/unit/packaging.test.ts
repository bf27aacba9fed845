// Pure pieces of the package as a user meets it: -A module lookup, "did you mean", the errors for
// missing optional packages and TypeScript loaders, URLs as banners show them, the process hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findAppModule } from '../../src/cli/load-app.js';
import { closest } from '../../src/cli/suggest.js';
import { isMissingPackage, missingDependency, unbuiltDependency } from '../../src/brokers/optional.js';
import { describeUrl } from '../../src/brokers/registry.js';
import { holdDuringCalls, holdProcess, whileRunning } from '../../src/app/keep-alive.js';
import { typeScriptMissing, typeScriptSupport, isTypeScriptFile } from '../../src/app/typescript.js';
import { exitOnSignalsAsPid1 } from '../../src/cli/process.js';
import { noTasksWarning, unregisteredTaskWarning } from '../../src/cli/warnings.js';
import { Celeriac } from '../../src/index.js';

test('-A finds a module as given, then with .ts/.mts/.js/.mjs, then as a dotted path; a miss lists what it tried', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'celeriac-find-'));
  try {
    mkdirSync(path.join(dir, 'proj'));
    for (const f of ['tasks.js', 'tasks.ts', 'proj/jobs.mjs', 'plain']) writeFileSync(path.join(dir, f), '');
    assert.equal(findAppModule('tasks', dir).file, path.join(dir, 'tasks.ts'), '.ts comes before .js');
    assert.equal(findAppModule('tasks.js', dir).file, path.join(dir, 'tasks.js'));
    assert.equal(findAppModule('proj/jobs', dir).file, path.join(dir, 'proj/jobs.mjs'));
    assert.equal(findAppModule('proj.jobs', dir).file, path.join(dir, 'proj/jobs.mjs'), "Celery's dotted module path");
    assert.equal(findAppModule('plain', dir).file, path.join(dir, 'plain'));
    assert.equal(findAppModule('proj', dir).file, null, 'a directory is not a module');
    const miss = findAppModule('nope', dir);
    assert.equal(miss.file, null);
    assert.deepEqual(miss.tried.map((t) => path.relative(dir, t)), ['nope', 'nope.ts', 'nope.mts', 'nope.js', 'nope.mjs']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('"did you mean": the closest registered name when it is a likely typo, nothing otherwise', () => {
  const names = ['tasks.add', 'tasks.mul', 'proj.send_email'];
  assert.equal(closest('tasks.ad', names), 'tasks.add');
  assert.equal(closest('Tasks.Mull', names), 'tasks.mul');
  assert.equal(closest('proj.send_mail', names), 'proj.send_email');
  assert.equal(closest('py.only', names), undefined);
  assert.equal(closest('x', []), undefined);
  const app = new Celeriac('proj');
  app.task('tasks.add', (x: number, y: number) => x + y);
  assert.match(unregisteredTaskWarning(app, 'tasks.ad', 'tasks.ts')!, /tasks\.ad is not a task of app proj \(-A tasks\.ts\); did you mean tasks\.add\? Sending it anyway/);
  assert.equal(unregisteredTaskWarning(app, 'tasks.add', 'tasks.ts'), undefined);
  assert.equal(unregisteredTaskWarning(app, 'tasks.ad', undefined), undefined, 'no -A: nothing is known');
  assert.equal(noTasksWarning(app, 'tasks.ts'), undefined);
  assert.match(noTasksWarning(new Celeriac('empty'), 'tasks.ts')!, /registers no tasks/);
  assert.match(noTasksWarning(new Celeriac('empty'), undefined)!, /No app module given \(-A\)/);
});

test('a missing optional package is one error naming it and the range celeriac declares; an unbuilt one says how to build it', () => {
  const manifest = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { optionalDependencies: Record<string, string> };
  const e = missingDependency('better-sqlite3', 'The broker sqlite:///x.db');
  assert.equal(e.name, 'MissingDependencyError');
  assert.equal(e.message, `The broker sqlite:///x.db needs the npm package better-sqlite3, which is not installed (it is an optional dependency of celeriac): npm install better-sqlite3@"${manifest.optionalDependencies['better-sqlite3']}"`);
  assert.ok(isMissingPackage(Object.assign(new Error("Cannot find package 'amqplib' imported from /x/y.js"), { code: 'ERR_MODULE_NOT_FOUND' }), 'amqplib'));
  assert.ok(isMissingPackage(Object.assign(new Error("Cannot find module 'amqplib'\nRequire stack:"), { code: 'MODULE_NOT_FOUND' }), 'amqplib'));
  assert.ok(!isMissingPackage(Object.assign(new Error("Cannot find module './lib/x.js'"), { code: 'MODULE_NOT_FOUND' }), 'amqplib'), 'a broken package is not a missing one');
  assert.ok(!isMissingPackage(new Error("Cannot find package 'amqplib'"), 'amqplib'), 'only module-not-found errors');
  const unbuilt = unbuiltDependency('better-sqlite3', 'The broker sqlite:///x.db', new Error('Could not locate the bindings file. Tried:\n → /a'));
  assert.match(unbuilt!.message, /native module, which is not built .*npm install-scripts approve better-sqlite3 && npm rebuild better-sqlite3$/);
  assert.equal(unbuiltDependency('better-sqlite3', 'x', new Error('disk I/O error')), undefined);
});

test('URLs as banners and errors show them: passwords masked, sqlite:// with its absolute file', () => {
  assert.equal(describeUrl('sqlite:///celeriac.db'), `sqlite:///celeriac.db (${path.resolve('celeriac.db')})`);
  assert.equal(describeUrl('sqlite:////var/lib/q.db'), 'sqlite:////var/lib/q.db (/var/lib/q.db)');
  assert.equal(describeUrl('redis://:secret@host:6379/0'), 'redis://:**@host:6379/0');
  assert.equal(describeUrl('amqp://u:p@h//'), 'amqp://u:**@h//');
});

test('TypeScript modules: tsx (a dev dependency here) is found; without a loader the error is one line saying what to install', () => {
  assert.ok(isTypeScriptFile('/a/tasks.ts') && isTypeScriptFile('x.mts') && isTypeScriptFile('x.cts'));
  assert.ok(!isTypeScriptFile('x.d.ts') && !isTypeScriptFile('x.js'));
  const support = typeScriptSupport(path.resolve('tasks.ts'));
  assert.equal(support.kind, 'tsx');
  assert.match(typeScriptMissing('tasks.ts'), /^tasks\.ts is TypeScript, and Node v[\d.]+ cannot load it by itself: install tsx \(npm install --save-dev tsx\), use Node 22\.18 or later, or compile it to JavaScript$/);
});

test('the process hold: counted, released once per holder, and released when a promise settles', async () => {
  const active = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const base = active();
  const a = holdProcess();
  const b = holdProcess();
  assert.equal(active(), base + 1, 'one shared timer');
  a();
  a();
  assert.equal(active(), base + 1, 'a second release of the same hold changes nothing');
  b();
  assert.equal(active(), base);
  let settle!: () => void;
  const p = whileRunning(new Promise<void>((r) => (settle = r)));
  assert.equal(active(), base + 1);
  settle();
  await p;
  await new Promise((r) => setImmediate(r));
  assert.equal(active(), base);
  await assert.rejects(whileRunning(Promise.reject(new Error('boom'))), /boom/);
  await new Promise((r) => setImmediate(r));
  assert.equal(active(), base, 'released after a rejection too');
});

test('signal handlers for PID 1 are installed only when the process is PID 1', () => {
  const before = process.listenerCount('SIGTERM');
  exitOnSignalsAsPid1(4242);
  assert.equal(process.listenerCount('SIGTERM'), before);
});

test('holdDuringCalls: the named async methods hold the process until they settle; the others are left alone', async () => {
  const active = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const base = active();
  let settle!: (v: number) => void;
  const transport = { calls: 0, publish(): Promise<number> { this.calls++; return new Promise((r) => (settle = r)); }, connect(): Promise<void> { return new Promise(() => undefined); }, sync(): number { return 1; } };
  assert.equal(holdDuringCalls(transport, ['publish', 'sync']), transport, 'wrapped in place');
  const p = transport.publish();
  assert.equal(transport.calls, 1, 'the original runs, with its this');
  assert.equal(active(), base + 1, 'held while the publish is pending');
  void transport.connect();
  assert.equal(active(), base + 1, 'an unnamed method does not hold');
  assert.equal(transport.sync(), 1, 'a method returning no promise returns its value');
  settle(7);
  assert.equal(await p, 7);
  await new Promise((r) => setImmediate(r));
  assert.equal(active(), base);
});
