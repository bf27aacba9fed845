// Values keep their type through the thread and process pools: the structured clone between worker
// and child would turn Decimal, UUID, Float and the Python dates into plain objects.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { makeApp } from './worker-app.js';
import { tempDb } from './sqlite-fixtures.js';
import { CeleryDate, CeleryDateTime, CeleryTime, Decimal, Float, UUID, type Celeriac, type Worker } from '../../src/index.js';
import { dumps } from '../../src/protocol/json.js';
import { uniqueName } from '../helpers/services.js';

const MODULE = fileURLToPath(new URL('./worker-app.ts', import.meta.url));
const open: { app: Celeriac; worker: Worker }[] = [];
after(async () => {
  for (const o of open) {
    await o.worker.close().catch(() => undefined);
    await o.app.close().catch(() => undefined);
  }
});

const VALUES = () => [
  new Decimal('1.10'), new UUID('12345678123456781234567812345678'), new Float(2), new CeleryDate('2024-02-29'),
  new CeleryTime('03:04:05.000006'), CeleryDateTime.fromisoformat('2024-01-02T03:04:05.123456')!,
  CeleryDateTime.fromisoformat('2024-01-02T03:04:05.000001+05:30')!, Buffer.from('ff00', 'hex'), 2n ** 70n, -0,
  { nested: [new Decimal('-0'), { d: new CeleryDate('2000-01-01') }] },
];

for (const pool of ['thread', 'process'] as const) {
  test(`[${pool} pool] Decimal, UUID, Float, date, time and datetimes come back as the same Python values`, { timeout: 120_000 }, async () => {
    const { url } = tempDb();
    const queue = uniqueName('pool-values');
    const app = makeApp(url, url, { task_default_queue: queue });
    const worker = app.worker({ pool, concurrency: 1, module: MODULE, loglevel: 'critical', hostname: `${queue}@test` });
    open.push({ app, worker });
    await worker.start();
    for (const v of VALUES()) {
      const kind = await (await app.sendTask('w.kind', [v])).get({ timeout: 60_000 });
      assert.equal(kind, (v as object).constructor.name, `${pool}: the task saw ${kind} for ${dumps(v)}`);
      const got = await (await app.sendTask('w.echo', [v])).get({ timeout: 60_000 });
      // The client reads a float 2.0 as the number 2 (exactFloats is a task option): compare the JSON of the rest.
      if (!(v instanceof Float)) assert.equal(dumps(got), dumps(v), `${pool}: ${dumps(v)}`);
    }
  });
}
