// get() that times out says the same on every result backend: which task, its state, and (PENDING) that
// no worker may be consuming its queue; on the embedded default, which database file the app uses. A
// get() the caller aborts rejects with the caller's reason on every backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Celeriac } from '../../src/index.js';
import { redisDb, requireRedis, uniqueName } from '../helpers/services.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'celeriac-timeout-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const BACKENDS = [
  { name: 'memory', url: () => 'memory://', check: async () => undefined },
  { name: 'sqlite', url: () => `sqlite:///${dir}/t.db`, check: async () => undefined },
  { name: 'redis', url: () => redisDb(6), check: requireRedis },
];

for (const b of BACKENDS) {
  test(`[${b.name}] a get() that times out names the task, its state and the queue no worker may be consuming`, async () => {
    await b.check();
    const queue = uniqueName('nobody');
    const app = new Celeriac('timeouts', { broker: b.url(), backend: b.url(), task_default_queue: queue });
    const add = app.task('tasks.add', (x: number, y: number) => x + y);
    try {
      const r = await add.delay(1, 2);
      await assert.rejects(r.get({ timeout: 300 }), (err: Error) => {
        assert.equal(err.name, 'TimeoutError');
        assert.equal(err.message, `The result of task tasks.add[${r.id}] was not ready within 0.3 s (state PENDING). No worker may be consuming queue "${queue}": start one (celeriac -A <your app module> worker -Q ${queue}) or check its -Q and broker URL.`);
        return true;
      });
      await assert.rejects(app.AsyncResult(r.id).get({ timeout: 200 }), /^TimeoutError: The result of task [0-9a-f-]{36} was not ready within 0\.2 s \(state PENDING\)\. No worker may be consuming the task's queue/);
      // A caller's abort ends the wait with the caller's reason, whether it comes before or during it.
      const stop = new AbortController();
      const waiting = r.get({ signal: stop.signal });
      setTimeout(() => stop.abort(new Error('the caller gave up')), 100);
      await assert.rejects(waiting, /^Error: the caller gave up$/);
      await assert.rejects(r.get({ signal: stop.signal }), /^Error: the caller gave up$/);
    } finally {
      await app.close();
    }
  });
}

test('on the embedded default, the timeout also names the database file (a worker in another directory uses another one)', async () => {
  const cwd = process.cwd();
  process.chdir(dir);
  const app = new Celeriac('embedded', { task_default_queue: uniqueName('nobody') });
  try {
    assert.ok(app.usesEmbeddedDefault);
    const r = await app.sendTask('tasks.add', [1, 2]);
    await assert.rejects(r.get({ timeout: 200 }), (err: Error) => {
      assert.ok(err.message.endsWith(`The embedded default is sqlite:///celeriac.db (${path.join(dir, 'celeriac.db')}): a worker started in another directory uses another file.`), err.message);
      return true;
    });
  } finally {
    await app.close();
    process.chdir(cwd);
  }
});
