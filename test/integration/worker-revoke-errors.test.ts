// Revoke never fails in silence: a result backend that cannot be read or written, and a --statedb
// that cannot be saved or read, are each said once with what to do, and the worker keeps serving
// (and keeps honouring the revoke). The result backend is a private redis-server with an ACL user.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Celeriac, type TaskEvent, type Worker } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { eventually, uniqueName } from '../helpers/services.js';

let redis: RedisServer;
const open: { app: Celeriac; worker?: Worker }[] = [];
const dirs: string[] = [];
before(async () => {
  redis = await startRedisServer();
  // May read results but not write them (%R~): every store of a result is refused.
  redis.cli('ACL', 'SETUSER', 'reader', 'on', '>pw', 'resetkeys', '%R~celery-task-meta-*', '&*', '+@all');
});
after(async () => {
  for (const o of open) {
    await o.worker?.close().catch(() => undefined);
    await o.app.close().catch(() => undefined);
  }
  await redis?.destroy();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'celeriac-statedb-'));
  dirs.push(d);
  return d;
}

test('revoke with a result backend that refuses writes, a result it cannot read, and a --statedb it cannot save: each said with what to do; the worker serves on', async () => {
  const broker = `memory://${uniqueName('revoke')}`;
  const backend = `redis://reader:pw@127.0.0.1:${redis.port}/0`;
  const lines: string[] = [];
  const logger = createLogger('warning', (l) => void lines.push(l));
  const app = new Celeriac('revoke-errors', {
    broker, backend, logger, task_ignore_result: true, result_backend_transport_options: { retry_policy: { max_retries: 1 } },
  });
  app.task('r.add', (x: number, y: number) => x + y);
  const dir = tempDir();
  const worker = app.worker({ concurrency: 1, logger, statedb: path.join(dir, 'worker.state'), hostname: 'revoke@test' });
  open.push({ app, worker });
  const done: string[] = [];
  const revoked: string[] = [];
  worker.on('taskSuccess', (e: TaskEvent) => done.push(e.id));
  worker.on('taskRevoked', (e: TaskEvent) => revoked.push(e.id));
  await worker.start();

  // 1. Storing REVOKED is refused (NOPERM).
  const unstored = randomUUID();
  await app.control.revoke(unstored);
  await eventually(() => lines.some((l) => l.includes(`could not store REVOKED for task ${unstored}`)), 'the refused store said');
  assert.match(lines.find((l) => l.includes(unstored))!, /NOPERM.*The worker still discards the task if it arrives.*check that the result backend answers \(result_backend\) and revoke again/);

  // 2. Reading the state fails (the key holds a list: WRONGTYPE).
  const unreadable = randomUUID();
  redis.cli('RPUSH', `celery-task-meta-${unreadable}`, 'not a result');
  await app.control.revoke(unreadable);
  await eventually(() => lines.some((l) => l.includes(`could not read the state of task ${unreadable}`)), 'the failed read said');
  assert.match(lines.find((l) => l.includes(unreadable))!, /WRONGTYPE.*check that the result backend answers \(result_backend\)/);

  // 3. --statedb's directory is gone: the save fails (it used to throw from a timer and kill the worker).
  rmSync(dir, { recursive: true, force: true });
  const third = randomUUID();
  await app.control.revoke(third);
  await eventually(() => lines.some((l) => l.includes('Could not save the revoked task ids to --statedb')), 'the failed save said');
  assert.match(lines.find((l) => l.includes('Could not save the revoked'))!, /ENOENT.*They still apply in this worker but a restart forgets them; make the directory writable/);

  // Still serving, and the revokes still apply.
  await app.sendTask('r.add', [1, 2], {}, { taskId: third });
  const ok = await app.sendTask('r.add', [2, 3]);
  await eventually(() => done.includes(ok.id) && revoked.includes(third), 'a task run and the revoked one discarded');
  assert.ok(!done.includes(third));
  assert.equal(worker.failure, undefined);
});

test('a --statedb file that is not a state file: the worker refuses to start, naming the file and what to do', async () => {
  const file = path.join(tempDir(), 'worker.state');
  writeFileSync(file, 'this is not JSON');
  const app = new Celeriac('statedb', { broker: `memory://${uniqueName('statedb')}`, backend: 'memory://' });
  const worker = app.worker({ statedb: file, loglevel: 'critical' });
  open.push({ app, worker });
  await assert.rejects(worker.start(), (e: Error) => {
    assert.ok(e.message.startsWith(`The --statedb file ${file} (worker_state_db) is not a Celeriac state file: `), e.message);
    assert.match(e.message, /Move it aside \(the revoked ids it kept are then forgotten\) or point --statedb elsewhere\.$/);
    return true;
  });
});
