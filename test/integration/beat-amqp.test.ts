// Beat with a RabbitMQ broker keeps its lease and schedule in the result backend (Redis here) and sends
// through RabbitMQ; a leader stopped with SIGTERM gives the lease up, so the standby takes over at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Celeriac } from '../../src/app/celeriac.js';
import { AMQP_URL, eventually, redisDb, requireRabbit, requireRedis, sleep, uniqueName } from '../helpers/services.js';
import { startBeats, startLedger, type CliProcess, type LedgerRow } from './beat-harness.js';

const BACKEND = redisDb(12);

before(async () => {
  await requireRedis();
  await requireRabbit();
});

after(async () => {
  const r = new Redis(BACKEND);
  const keys = await r.keys('_celeriac.beat.*');
  if (keys.length) await r.del(...keys);
  r.disconnect();
});

test('AMQP broker, Redis result backend: runs go through RabbitMQ once each; a SIGTERMed leader hands over within a tick', async () => {
  const queue = uniqueName('beat-amqp');
  const app = new Celeriac('beat-amqp', { broker: AMQP_URL, backend: BACKEND });
  const ledger = await startLedger(app, queue);
  let beats: CliProcess[] = [];
  try {
    beats = await startBeats(2, { broker: AMQP_URL, backend: BACKEND, queue });
    await eventually(() => ledger.rows.length >= 3, 'three runs through RabbitMQ', 15_000);
    const leader = await app.beat.leader();
    const first = beats.find((b) => leader && leader.id.split(':')[1] === String(b.pid))!;
    assert.ok(first, `the leader in the result backend is one of the beats: ${JSON.stringify(leader)}`);
    const stopAt = Date.now();
    assert.equal(await first.stop(), 0, first.output);
    const exitedAt = Date.now();
    // It gave the lease up on its way out: no waiting for it to lapse (beat_lease_timeout, 5 s).
    const after = await app.beat.leader();
    assert.ok(after === null || after.id !== leader!.id, `the stopped leader still holds the lease: ${JSON.stringify(after)}`);
    const other = beats.find((b) => b !== first)!;
    // The standby takes it at its next tick (1 s here) and sends the next due run through RabbitMQ.
    const took = await other.waitFor(/is the leader now/, 10_000, stopAt);
    const next = await eventually<LedgerRow | undefined>(() => ledger.rows.find((r) => r.pid === other.pid), 'the standby to send', 10_000);
    console.log(`amqp: SIGTERM to exit ${exitedAt - stopAt} ms, standby leader ${took.at - stopAt} ms, its first run received ${next!.receivedAt - stopAt} ms after SIGTERM`);
    assert.ok(took.at - exitedAt < 1_000 + 2_000, `the standby took the lease ${took.at - exitedAt} ms after the leader exited (one tick, 1 s, expected)`);
    await sleep(2_000);
    const due = ledger.rows.map((r) => r.dueAt);
    assert.equal(new Set(due).size, due.length, `a run was sent twice: ${JSON.stringify(ledger.rows)}`);
    assert.equal((await app.beat.leader())?.id.split(':')[1], String(other.pid));
  } finally {
    await Promise.all(beats.map((b) => b.stop()));
    await ledger.stop();
    await app.close();
  }
});
