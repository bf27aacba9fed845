// A TS-produced Redis message compared field by field with what Python Celery writes for the same call:
// same keys, types and values in headers, properties and body (ids, origin and timestamps aside).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { Celeriac } from '../../src/index.js';
import { uniqueName } from '../helpers/services.js';
import { requirePythonCelery, runPythonProducer } from './harness.js';
import { openTestDb, readQueue, type QueuedItem } from './redis-tools.js';

const DB = 5;
let url: string;
let redis: Redis;
let app: Celeriac;

// Celery ≥5.3/5.4 header keys that Debian's 5.2.6 does not write yet; Celeriac writes the newer defaults.
const NEWER_HEADERS: Record<string, unknown> = { replaced_task_nesting: 0, stamped_headers: null, stamps: {} };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PY_ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/;

before(async () => {
  await requirePythonCelery();
  ({ url, redis } = await openTestDb(DB));
  app = new Celeriac('interop-compare', { broker: url, backend: url });
});

after(async () => {
  await app?.close();
  redis?.disconnect();
});

function typeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** Assert the two envelopes agree; `what` names the call in failure messages. */
function compareEnvelopes(py: QueuedItem, ts: QueuedItem, what: string): void {
  const P = py.envelope;
  const T = ts.envelope;
  assert.deepEqual(Object.keys(T), Object.keys(P), `${what}: envelope keys and order`);
  assert.equal(T['content-type'], P['content-type'], `${what}: content-type`);
  assert.equal(T['content-encoding'], P['content-encoding'], `${what}: content-encoding`);
  assert.equal(ts.step, py.step, `${what}: priority list`);

  // Body: no ids in it, so the decoded bytes must be identical (separators, escaping, embed keys).
  assert.equal(ts.bodyText, py.bodyText, `${what}: body bytes`);

  // Headers.
  const ph = P.headers;
  const th = T.headers;
  const extra = Object.keys(th).filter((k) => !(k in ph));
  for (const k of extra) {
    assert.ok(k in NEWER_HEADERS, `${what}: header ${JSON.stringify(k)} written by Celeriac but not by Python Celery (value ${JSON.stringify(th[k])})`);
    assert.deepEqual(th[k], NEWER_HEADERS[k], `${what}: header ${k} should carry Celery's default`);
  }
  const missing = Object.keys(ph).filter((k) => !(k in th));
  assert.deepEqual(missing, [], `${what}: headers Python writes that Celeriac does not`);
  assert.deepEqual(Object.keys(th).filter((k) => k in ph), Object.keys(ph), `${what}: header order`);
  for (const k of Object.keys(ph)) {
    const pv = ph[k];
    const tv = th[k];
    assert.equal(typeOf(tv), typeOf(pv), `${what}: type of header ${k} (py ${JSON.stringify(pv)}, ts ${JSON.stringify(tv)})`);
    switch (k) {
      case 'id':
        assert.match(String(tv), UUID, `${what}: id is a uuid`);
        break;
      case 'root_id':
        assert.equal(tv, th.id, `${what}: root_id equals id for a top-level call`);
        assert.equal(pv, ph.id);
        break;
      case 'origin':
        assert.match(String(tv), /^.+@.+$/, `${what}: origin is a node name`);
        break;
      case 'eta':
      case 'expires':
        if (pv !== null) assert.match(String(tv), PY_ISO, `${what}: ${k} in Python isoformat (py ${pv})`);
        break;
      default:
        assert.deepEqual(tv, pv, `${what}: header ${k}`);
    }
  }
  if (ph.eta && ph.expires) {
    const span = (h: Record<string, unknown>) => Date.parse(String(h.expires)) - Date.parse(String(h.eta));
    assert.ok(Math.abs(span(th) - span(ph)) < 1000, `${what}: expires - eta (py ${span(ph)} ms, ts ${span(th)} ms)`);
  }

  // Properties.
  const pp = P.properties;
  const tp = T.properties;
  assert.deepEqual(Object.keys(tp), Object.keys(pp), `${what}: property keys and order`);
  for (const k of Object.keys(pp)) {
    const pv = pp[k];
    const tv = tp[k];
    assert.equal(typeOf(tv), typeOf(pv), `${what}: type of property ${k} (py ${JSON.stringify(pv)}, ts ${JSON.stringify(tv)})`);
    switch (k) {
      case 'correlation_id':
        assert.equal(tv, th.id, `${what}: correlation_id equals the task id`);
        break;
      case 'reply_to':
        break; // the client's oid: an id, type checked above
      case 'delivery_tag':
        assert.match(String(tv), UUID, `${what}: delivery_tag is a uuid`);
        break;
      case 'delivery_info':
        assert.deepEqual(tv, { ...(pv as object), routing_key: T.properties.delivery_info.routing_key }, `${what}: delivery_info`);
        break;
      default:
        assert.deepEqual(tv, pv, `${what}: property ${k}`);
    }
  }
}

/** Which case a Python message came from: its args are unique per case. */
function pyOrder(item: QueuedItem): number {
  const args = JSON.stringify((JSON.parse(item.bodyText) as unknown[])[0]);
  return CASES.findIndex((c) => JSON.stringify(c.args) === args);
}

interface Case {
  what: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  py: Record<string, unknown>;
  ts: Record<string, unknown>;
}

const CASES: Case[] = [
  { what: 'add(2, 2)', args: [2, 2], kwargs: {}, py: {}, ts: {} },
  {
    what: 'kwargs, non-ASCII and floats',
    args: ['é', 1.5, [1, null, true]],
    kwargs: { y: 'é😀', z: { nested: [1, 2] }, f: 0.1 },
    py: {},
    ts: {},
  },
  {
    what: 'countdown, expires, priority, time limits, shadow, custom header',
    args: [2, 3],
    kwargs: {},
    py: { countdown: 10, expires: 60, priority: 5, time_limit: 30, soft_time_limit: 20, shadow: 'alias.add', headers: { 'x-custom': 'v' } },
    ts: { countdown: 10, expires: 60, priority: 5, timeLimit: 30, softTimeLimit: 20, shadow: 'alias.add', headers: { 'x-custom': 'v' } },
  },
  { what: 'priority 9', args: [1], kwargs: {}, py: { priority: 9 }, ts: { priority: 9 } },
];

test('TS-produced messages match what Python Celery writes for the same calls', async () => {
  const pyQ = uniqueName('cmp-py');
  const tsQ = uniqueName('cmp-ts');
  await runPythonProducer({ broker: url, queue: pyQ }, CASES.map((c) => ({ task: 'cmp.task', args: c.args, kwargs: c.kwargs, options: c.py, wait: false })));
  for (const c of CASES) await app.sendTask('cmp.task', c.args, c.kwargs, { ...c.ts, queue: tsQ });

  const pyItems = await readQueue(redis, pyQ);
  const tsItems = await readQueue(redis, tsQ);
  assert.equal(pyItems.length, CASES.length, 'Python wrote one message per call');
  assert.equal(tsItems.length, CASES.length, 'Celeriac wrote one message per call');
  // Both sides sent the same calls in the same order, and readQueue orders by priority list then arrival.
  pyItems.forEach((p, i) => {
    const c = CASES[pyOrder(p)];
    compareEnvelopes(p, tsItems[i], c.what);
    assert.equal(tsItems[i].envelope.properties.delivery_info.routing_key, tsQ);
  });
});

test('a TS message that names the default exchange routes the way kombu does (exchange "" and routing key = queue)', async () => {
  const q = uniqueName('cmp-route');
  await app.sendTask('cmp.task', [1], {}, { queue: q });
  const [item] = await readQueue(redis, q);
  assert.ok(item, 'the message is in the list named by the queue');
  assert.deepEqual(item.envelope.properties.delivery_info, { exchange: '', routing_key: q });
});
