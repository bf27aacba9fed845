// Beat on the embedded SQLite broker: three beat processes sharing one file through a SIGKILL and a
// SIGSTOP of their leader, and a runtime change seen by all of them within one tick.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Celeriac } from '../../src/app/celeriac.js';
import { eventually, uniqueName } from '../helpers/services.js';
import { failoverScenario, startBeats, startLedger, type CliProcess } from './beat-harness.js';

function tempDb(): { dir: string; url: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-beat-'));
  return { dir, url: `sqlite:///${path.join(dir, 'beat.db')}` };
}

test('three beats sharing one SQLite file, 1 s schedule, 30 s: SIGKILL at 10 s, SIGSTOP at 20 s; each due run sent once, takeover within 10 s, the stale leader fenced', async () => {
  const { dir, url } = tempDb();
  try {
    const r = await failoverScenario(url);
    console.log(`sqlite: takeover after SIGKILL ${r.afterKillMs} ms, after SIGSTOP ${r.afterStopMs} ms, ${r.sent} runs sent`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a runtime upsert on the SQLite file is seen by every beat within one tick and sent by the leader', async () => {
  const { dir, url } = tempDb();
  const queue = uniqueName('beat-rt');
  const app = new Celeriac('beat-runtime', { broker: url });
  const ledger = await startLedger(app, queue);
  let beats: CliProcess[] = [];
  try {
    beats = await startBeats(3, { broker: url, queue, every: 'none' });
    const upsertAt = Date.now();
    await app.beat.upsert('added-at-runtime', { task: 'beat.tick', schedule: 1, options: { queue } });
    const seen = await Promise.all(beats.map((b) => b.waitFor(/schedule changed \(version \d+\): added added-at-runtime/, 10_000, upsertAt)));
    const latest = Math.max(...seen.map((l) => l.at)) - upsertAt;
    console.log(`sqlite: upsert seen by all three beats after ${seen.map((l) => l.at - upsertAt).join(', ')} ms`);
    assert.ok(latest < 1_000 + 1_500, `seen after ${latest} ms`);
    await eventually(() => ledger.rows.length >= 2, 'the leader to send the new entry', 10_000);
    const [entry] = await app.beat.list();
    assert.equal(entry!.name, 'added-at-runtime');
    assert.ok(entry!.totalRunCount >= 2);
  } finally {
    await Promise.all(beats.map((b) => b.stop()));
    await ledger.stop();
    await app.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
