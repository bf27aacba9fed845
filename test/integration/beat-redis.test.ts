// Beat on a real Redis: three beat processes through a SIGKILL and a SIGSTOP of their leader, runtime
// schedule changes seen by every beat within one tick, and `worker -B`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Celeriac } from '../../src/app/celeriac.js';
import { eventually, redisDb, requireRedis, uniqueName } from '../helpers/services.js';
import { cli, failoverScenario, startBeats, startLedger, type CliProcess } from './beat-harness.js';

const BROKER = redisDb(11);
const prefixes: string[] = [];

function prefix(): string {
  const p = `${uniqueName('beat')}:`;
  prefixes.push(p);
  return p;
}

before(requireRedis);

after(async () => {
  const r = new Redis(BROKER);
  for (const p of prefixes) {
    const keys = await r.keys(`${p}*`);
    if (keys.length) await r.del(...keys);
  }
  r.disconnect();
});

test('three beats, 1 s schedule, 30 s: leader SIGKILLed at 10 s, next one SIGSTOPped at 20 s; each due run sent once, takeover within 10 s, the stale leader fenced', async () => {
  const r = await failoverScenario(BROKER, prefix());
  console.log(`redis: takeover after SIGKILL ${r.afterKillMs} ms, after SIGSTOP ${r.afterStopMs} ms, ${r.sent} runs sent`);
});

test('a runtime change (app.beat.upsert, celeriac beat add/remove) is seen by every beat within one tick; beat list shows it', async () => {
  const queue = uniqueName('beat-rt');
  const p = prefix();
  const env = { broker: BROKER, queue, prefix: p, every: 'none' as const };
  const app = new Celeriac('beat-runtime', { broker: BROKER, broker_transport_options: { global_keyprefix: p } });
  const ledger = await startLedger(app, queue);
  let beats: CliProcess[] = [];
  try {
    beats = await startBeats(3, env);
    const upsertAt = Date.now();
    await app.beat.upsert('added-at-runtime', { task: 'beat.tick', schedule: 1, options: { queue } });
    const seen = await Promise.all(beats.map((b) => b.waitFor(/schedule changed \(version \d+\): added added-at-runtime/, 10_000, upsertAt)));
    const latest = Math.max(...seen.map((l) => l.at)) - upsertAt;
    console.log(`redis: upsert seen by all three beats after ${seen.map((l) => l.at - upsertAt).join(', ')} ms`);
    // One tick is beat_lease_timeout / 5 = 1 s; allow for a loaded machine.
    assert.ok(latest < 1_000 + 1_500, `seen after ${latest} ms`);
    await eventually(() => ledger.rows.filter((r) => r.name === 'added-at-runtime').length >= 2, 'the leader to send the new entry', 10_000);

    const add = cli('beat add', env, ['beat', 'add', 'from-cli', '-t', 'beat.tick', '--crontab', '*/5 * * * *', '-Q', queue, '--args', '[1, 2]']);
    assert.equal(await add.exited, 0, add.output);
    assert.match(add.output, /from-cli: saved/);
    const addedAt = add.lines.at(-1)!.at;
    await Promise.all(beats.map((b) => b.waitFor(/added from-cli/, 2_500, addedAt - 500)));

    const list = cli('beat list', env, ['beat', 'list']);
    assert.equal(await list.exited, 0, list.output);
    assert.match(list.output, /^leader: \S+:\d+:[0-9a-f]+ \(lease epoch \d+, [\d.]+ s left\)$/m);
    assert.match(list.output, /^added-at-runtime: beat\.tick <freq: 1\.00 second> next=\S+ last=\S+ runs=\d+ \(runtime\)$/m);
    assert.match(list.output, /^from-cli: beat\.tick args=\[1, 2\] kwargs=\{\} <crontab: \*\/5 \* \* \* \* \(m\/h\/dM\/MY\/d\)> next=\S+:[0-5][05]:00\.000Z/m);

    const remove = cli('beat remove', env, ['beat', 'remove', 'added-at-runtime']);
    assert.equal(await remove.exited, 0, remove.output);
    const removedAt = remove.lines.at(-1)!.at;
    await Promise.all(beats.map((b) => b.waitFor(/removed added-at-runtime/, 2_500, removedAt - 500)));
    const missing = cli('beat remove', env, ['beat', 'remove', 'added-at-runtime']);
    assert.equal(await missing.exited, 1);
    assert.match(missing.output, /added-at-runtime: no such entry/);
    const bad = cli('beat add', env, ['beat', 'add', 'bad', '-t', 'beat.tick', '--crontab', '61 * * * *']);
    assert.equal(await bad.exited, 2);
    assert.match(bad.output, /Error: crontab minute="61": 61 is above the highest value 59/);
  } finally {
    await Promise.all(beats.map((b) => b.stop()));
    await ledger.stop();
    await app.close();
  }
});

test('worker -B runs beat beside the worker: the scheduled task runs there, and a warm shutdown exits 0', async () => {
  const queue = uniqueName('beat-wb');
  const p = prefix();
  const worker = cli('worker -B', { broker: BROKER, queue, prefix: p, backend: BROKER }, ['worker', '-B', '-Q', queue, '-l', 'info', '-n', 'beatw@test']);
  try {
    await worker.waitFor(/is the leader now/, 60_000);
    await worker.waitFor(/Task beat\.tick\[[0-9a-f-]+\] succeeded in .*: 'tock'/, 10_000);
    const ids = [...worker.output.matchAll(/Task beat\.tick\[([0-9a-f-]+)\] succeeded/g)].map((m) => m[1]!);
    const app = new Celeriac('beat-wb', { broker: BROKER, backend: BROKER, broker_transport_options: { global_keyprefix: p } });
    try {
      assert.equal(await app.AsyncResult(ids[0]!).get({ timeout: 5_000 }), 'tock');
      assert.equal((await app.beat.leader())?.id.split(':')[1], String(worker.pid));
    } finally {
      await app.close();
    }
  } finally {
    assert.equal(await worker.stop(), 0, worker.output);
  }
});
