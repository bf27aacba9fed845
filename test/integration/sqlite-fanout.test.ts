// Remote-control fanout on the embedded transports: sqlite:// across processes, memory:// in one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBroker } from '../../src/brokers/sqlite/index.js';
import { createBroker as createMemoryBroker } from '../../src/brokers/memory/index.js';
import type { Message } from '../../src/protocol/message.js';
import { Celeriac } from '../../src/app/celeriac.js';
import { createLogger } from '../../src/app/log.js';
import { eventually, sleep, uniqueName } from '../helpers/services.js';
import { ctx, spawnChild, tempDb, testMessage } from './sqlite-fixtures.js';

const ids = (ms: Message[]) => ms.map((m) => String(m.headers.id));

test('sqlite broadcast reaches every subscriber, in this process at once and from another process by polling', async () => {
  const { url } = tempDb();
  const a = createBroker(url, ctx());
  const b = createBroker(url, ctx());
  await a.connect();
  await b.connect();
  await a.broadcast!('celery.pidbox', testMessage('before'));
  const gotA: Message[] = [];
  const gotB: Message[] = [];
  const other: Message[] = [];
  const subA = await a.subscribeBroadcast!('celery.pidbox', 'a.celery.pidbox', (m) => gotA.push(m));
  await b.subscribeBroadcast!('celery.pidbox', 'b.celery.pidbox', (m) => gotB.push(m));
  await b.subscribeBroadcast!('other', 'b.other', (m) => other.push(m));
  await a.broadcast!('celery.pidbox', testMessage('local'));
  await eventually(() => gotA.length === 1 && gotB.length === 1, 'the local broadcast', 2000, 5);
  const child = spawnChild(['broadcast', url, 'celery.pidbox', 'remote']);
  assert.equal(await child.exited, 0, child.stderr);
  await eventually(() => gotA.length === 2 && gotB.length === 2, 'the broadcast from another process', 3000);
  assert.deepEqual(ids(gotA), ['local', 'remote'], 'nothing from before subscribing, in order');
  assert.deepEqual(ids(gotB), ['local', 'remote']);
  assert.deepEqual(other, [], 'other exchanges are separate');
  await subA.close();
  await b.broadcast!('celery.pidbox', testMessage('after'));
  await eventually(() => gotB.length === 3, 'b still subscribed');
  await sleep(300);
  assert.equal(gotA.length, 2, 'a closed subscription receives nothing');
  await a.close();
  await b.close();
});

test('memory broadcast reaches every subscriber of the URL with its own copy', async () => {
  const url = `memory://${uniqueName('fan')}`;
  const a = createMemoryBroker(url, ctx());
  const b = createMemoryBroker(url, ctx());
  const got: Message[] = [];
  await a.subscribeBroadcast!('celery.pidbox', 'x', (m) => got.push(m));
  await b.subscribeBroadcast!('celery.pidbox', 'y', (m) => got.push(m));
  await a.broadcast!('celery.pidbox', testMessage('m'));
  await sleep(10);
  assert.deepEqual(ids(got), ['m', 'm']);
  assert.notEqual(got[0], got[1]);
  await b.close();
  await a.broadcast!('celery.pidbox', testMessage('n'));
  await sleep(10);
  assert.deepEqual(ids(got), ['m', 'm', 'n'], 'a closed broker no longer receives');
});

test('app.control.revoke over the embedded database stops a revoked task from running in a worker', async () => {
  const { url } = tempDb();
  const quiet = createLogger('critical');
  const app = new Celeriac('revoke', { broker: url, backend: url, logger: quiet });
  let ran = 0;
  const t = app.task('tasks.later', () => { ran++; return 1; });
  const worker = app.worker({ concurrency: 1, logger: quiet });
  try {
    await worker.start();
    await sleep(300); // let the worker subscribe to celery.pidbox
    const r = await t.applyAsync([], {}, { countdown: 1.5 });
    await app.control.revoke(r.id);
    const meta = await (await app.backend())!.wait(r.id, { timeout: 5000 });
    assert.equal(meta.status, 'REVOKED');
    assert.equal(ran, 0);
  } finally {
    await worker.close();
    await app.close();
  }
});
