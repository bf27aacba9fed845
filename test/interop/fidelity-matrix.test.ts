// The fidelity matrix (docs/interop.md): about 40 values each way, Python → TS echo → Python and
// TS → Python echo → TS, with Celery 5.2.6 and 5.6.3, over JSON and msgpack, on Redis and RabbitMQ.
// One Python worker per (transport, Celery version, serializer) serves every row; each row is a subtest
// that fails on any change the table does not document.
import { test, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, EncodeError, type Worker } from '../../src/index.js';
import { AMQP_URL, redisDb, requireRabbit, requireRedis, uniqueName } from '../helpers/services.js';
import { PYTHON, PYTHON56, requireCelery56, requirePythonCelery, runPythonScript, startPythonWorker, type ManagedProcess } from './harness.js';
import { expectFromPython, same, TS_ROWS, tsType, type ProfileKey } from './fidelity-rows.js';

const BACKEND = redisDb(7);
const TRANSPORTS = [
  { name: 'redis', broker: redisDb(6), check: requireRedis },
  { name: 'amqp', broker: AMQP_URL, check: async () => { await requireRabbit(); await requireRedis(); } },
];
const VERSIONS = [
  { version: '5.2', python: PYTHON, check: () => requirePythonCelery(true) },
  { version: '5.6', python: PYTHON56, check: requireCelery56 },
];
const SERIALIZERS = ['json', 'msgpack'] as const;

interface Combo {
  app: Celeriac;
  worker: Worker;
  python: ManagedProcess;
  tsQueue: string;
  pyQueue: string;
  /** The TS type the echo task saw, by task id. */
  seen: Map<string, string>;
  env: Record<string, string>;
}

const combos = new Map<string, Promise<Combo>>();
after(async () => {
  for (const c of combos.values()) {
    const combo = await c.catch(() => null);
    if (!combo) continue;
    await combo.python.stop(5000);
    await combo.worker.close().catch(() => undefined);
    await combo.app.close().catch(() => undefined);
  }
});

function combo(broker: string, python: string, version: string, serializer: string): Promise<Combo> {
  const key = `${broker} ${python} ${serializer}`;
  let c = combos.get(key);
  if (!c) {
    c = (async () => {
      const tsQueue = uniqueName('fid-ts');
      const pyQueue = uniqueName('fid-py');
      const app = new Celeriac('fidelity', {
        broker, backend: BACKEND, task_serializer: serializer, result_serializer: serializer,
        accept_content: ['json', 'msgpack'], celery_peer_version: version, task_default_queue: tsQueue,
      });
      const seen = new Map<string, string>();
      app.task('fid.ts_echo', (task, value: unknown) => {
        seen.set(task.request.id, tsType(value));
        return value;
      }, { bind: true, exactFloats: true });
      const worker = app.worker({ queues: [tsQueue], concurrency: 8, loglevel: 'critical', hostname: `${tsQueue}@fidelity` });
      await worker.start();
      const env = { CELERIAC_FID_BROKER: broker, CELERIAC_FID_BACKEND: BACKEND, CELERIAC_FID_SERIALIZER: serializer };
      const py = await startPythonWorker({ broker, python, app: 'fidelity', env, queues: [pyQueue], concurrency: 4, readyTimeoutMs: 60_000 })
        .catch(async (err) => { await worker.close(); await app.close(); throw err; });
      return { app, worker, python: py, tsQueue, pyQueue, seen, env };
    })();
    combos.set(key, c);
  }
  return c;
}

interface PyReport { row: string; id: string | null; outcome: string; detail: string }

for (const transport of TRANSPORTS) {
  for (const { version, python, check } of VERSIONS) {
    for (const serializer of SERIALIZERS) {
      const profile = `${serializer} ${version}` as ProfileKey;
      const label = `[${transport.name} ${serializer} Celery ${version}]`;

      test(`${label} Python → TS echo → Python: every row exact or as documented`, { timeout: 240_000 }, async (t: TestContext) => {
        await transport.check();
        await check();
        const c = await combo(transport.broker, python, version, serializer);
        const report = await runPythonScript<PyReport[]>(python, 'fidelity.py', { queue: c.tsQueue, timeout: 60 }, c.env);
        assert.ok(report.length >= 38, `${report.length} rows`);
        for (const r of report) {
          await t.test(r.row, () => {
            const want = expectFromPython(r.row, profile);
            assert.equal(r.outcome, want.outcome, `${r.row}: ${r.outcome} (${r.detail})`);
            if (want.outcome === 'failed') assert.equal(r.detail, want.value);
            if (want.outcome === 'changed') assert.equal(r.detail, want.value);
            if (want.ts && r.id) assert.equal(c.seen.get(r.id), want.ts, `${r.row}: the TS task saw ${c.seen.get(r.id)}`);
          });
        }
      });

      test(`${label} TS → Python echo → TS: every row exact or as documented`, { timeout: 240_000 }, async (t: TestContext) => {
        await transport.check();
        await check();
        const c = await combo(transport.broker, python, version, serializer);
        const sent = await Promise.all(TS_ROWS.map(async (row) => {
          try {
            return { row, result: await c.app.sendTask('fid.py_echo', [row.value()], {}, { queue: c.pyQueue }), refused: null };
          } catch (err) {
            return { row, result: null, refused: err as Error };
          }
        }));
        for (const { row, result, refused } of sent) {
          await t.test(row.row, async () => {
            const want = row.expect(profile);
            if (want.outcome === 'refused') {
              assert.ok(refused instanceof EncodeError, `${row.row}: expected EncodeError at send, got ${refused ?? 'a sent task'}`);
              return;
            }
            assert.equal(refused, null, `${row.row}: refused with ${refused}`);
            const got = await result!.get({ timeout: 60_000 });
            if (want.outcome === 'exact') assert.ok(same(row.value(), got), `${row.row}: got ${tsType(got)} ${String(got).slice(0, 80)}`);
            else {
              assert.equal(tsType(got), want.ts, `${row.row}: read back as ${tsType(got)}`);
              assert.ok(same(want.value, got), `${row.row}: got ${String(got).slice(0, 80)}`);
            }
          });
        }
      });
    }
  }
}
