// Result stores batched in one turn: each key gets its own meta; what cannot be encoded fails alone;
// a permanent Redis error is not retried as if it were transient.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBackend as redisBackend, type RedisBackend } from '../../src/backends/redis.js';
import { createBackend as sqliteBackend } from '../../src/backends/sqlite.js';
import { createBackend as memoryBackend } from '../../src/backends/memory.js';
import type { ResultBackend, ResultMeta } from '../../src/backends/types.js';
import { EncodeError } from '../../src/protocol/errors.js';
import { redisDb, requireRedis, uniqueName } from '../helpers/services.js';
import { ctx, tempDb } from './sqlite-fixtures.js';

function meta(taskId: string, status: string, result: unknown): ResultMeta {
  return { status, result, traceback: null, children: [], date_done: null, task_id: taskId };
}

const BACKENDS: { name: string; open: () => Promise<ResultBackend> }[] = [
  { name: 'redis', open: async () => { await requireRedis(); const b = redisBackend(redisDb(13), ctx()); await b.connect(); return b; } },
  { name: 'sqlite', open: async () => { const b = sqliteBackend(tempDb().url, ctx()); await b.connect(); return b; } },
  { name: 'memory', open: async () => { const b = memoryBackend(`memory://${uniqueName('rs')}`, ctx()); await b.connect(); return b; } },
];

for (const { name, open } of BACKENDS) {
  test(`[${name}] stores of one turn with an unencodable SUCCESS in the middle: every other key keeps its own meta`, async () => {
    const b = await open();
    const ids = Array.from({ length: 6 }, () => uniqueName('t'));
    const circular: Record<string, unknown> = {};
    circular.me = circular;
    const stores = ids.map((id, i) => b.store(meta(id, 'SUCCESS', i === 2 ? circular : { i })));
    await Promise.all(stores);
    for (const [i, id] of ids.entries()) {
      const got = await b.get(id);
      if (i === 2) {
        assert.equal(got.status, 'FAILURE');
        assert.deepEqual(got.result, { exc_type: 'EncodeError', exc_message: ["ValueError('Circular reference detected')"], exc_module: 'kombu.exceptions' });
      } else {
        assert.equal(got.status, 'SUCCESS');
        assert.deepEqual(got.result, { i });
      }
      assert.equal(got.task_id, id);
    }
    await b.close();
  });

  test(`[${name}] an unencodable progress state is refused with EncodeError and stores nothing; the SUCCESS beside it is stored`, async () => {
    const b = await open();
    const [a, c] = [uniqueName('t'), uniqueName('t')];
    const bad = b.store(meta(a, 'PROGRESS', { when: new Date(NaN) }));
    const good = b.store(meta(c, 'SUCCESS', 42));
    await assert.rejects(bad, (err: Error) => err instanceof EncodeError && /Invalid Date/.test(err.message));
    await good;
    assert.equal((await b.get(a)).status, 'PENDING');
    assert.equal((await b.get(c)).result, 42);
    await b.close();
  });
}

test('[redis] a permanent error reply (WRONGTYPE) fails the store at once instead of being retried for 19 s', async () => {
  await requireRedis();
  const b = redisBackend(redisDb(13), ctx()) as RedisBackend;
  await b.connect();
  const id = uniqueName('t');
  const client = await b.commandClient();
  await client.lpush(b.key(id), 'not a meta');
  const t0 = Date.now();
  await assert.rejects(b.store(meta(id, 'SUCCESS', 1)), (err: Error) => /WRONGTYPE/.test(err.message) && err.name !== 'BackendUnavailable');
  assert.ok(Date.now() - t0 < 5000, `gave up after ${Date.now() - t0} ms`);
  await client.del(b.key(id));
  await b.close();
});

for (const { name, open } of BACKENDS) {
  test(`[${name}] write-once reads the stored status field: a progress meta holding {status: 'SUCCESS'} does not block the real SUCCESS`, async () => {
    const b = await open();
    const id = uniqueName('t');
    await b.store(meta(id, 'PROGRESS', { status: 'SUCCESS', done: 1 }));
    await b.store(meta(id, 'SUCCESS', 42));
    assert.equal((await b.get(id)).result, 42);
    await b.store(meta(id, 'FAILURE', { exc_type: 'ValueError', exc_message: ['late'], exc_module: 'builtins' }));
    assert.equal((await b.get(id)).status, 'SUCCESS', 'a stored SUCCESS stays');
    await b.close();
  });
}

test('[redis] a SUCCESS written by another client with its keys in another order is still never overwritten', async () => {
  await requireRedis();
  const b = redisBackend(redisDb(13), ctx()) as RedisBackend;
  await b.connect();
  const client = await b.commandClient();
  const id = uniqueName('t');
  await client.set(b.key(id), JSON.stringify({ result: { status: 'PENDING' }, task_id: id, status: 'SUCCESS' }));
  await b.store(meta(id, 'FAILURE', null));
  assert.equal((await b.get(id)).status, 'SUCCESS');
  const other = uniqueName('t');
  await client.set(b.key(other), JSON.stringify({ result: { status: 'SUCCESS' }, task_id: other, status: 'PROGRESS' }));
  await b.store(meta(other, 'SUCCESS', 5));
  assert.equal((await b.get(other)).result, 5);
  await b.close();
});

for (const { name, open } of BACKENDS) {
  test(`[${name}] a FAILURE whose exception arguments cannot be encoded is stored as FAILURE/EncodeError`, async () => {
    const b = await open();
    const id = uniqueName('t');
    const arg: Record<string, unknown> = {};
    arg.self = arg;
    await b.store(meta(id, 'FAILURE', { exc_type: 'ValueError', exc_message: [arg], exc_module: 'builtins' }));
    const got = await b.get(id);
    assert.equal(got.status, 'FAILURE');
    assert.equal((got.result as { exc_type: string }).exc_type, 'EncodeError');
    await b.close();
  });
}
