// Issue #15: the remote-control handler against 100,000 generated requests (fast-check). Whatever a
// client publishes on celery.pidbox — any method, any arguments, any destination, pattern, matcher,
// ticket, reply_to, headers or body bytes — the handler neither throws nor stalls, and the worker
// still answers a ping and runs tasks afterwards. Inputs that once failed are kept below as examples.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Celeriac } from '../../src/index.js';
import { WorkerControl } from '../../src/control/worker-control.js';
import { COMMANDS } from '../../src/control/commands.js';
import { WorkerControlTarget } from '../../src/worker/remote-control.js';
import { createLogger } from '../../src/app/log.js';
import type { Message } from '../../src/protocol/message.js';
import { uniqueName } from '../helpers/services.js';

const RUNS = Number(process.env.CELERIAC_FUZZ_RUNS ?? 100_000);
const HOST = 'fuzz@x';

const methods = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...Object.keys(COMMANDS), 'dump_active', 'dump_conf', 'hello', 'election', 'pool_restart') },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '') },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);
const argNames = fc.constantFrom('task_id', 'terminate', 'signal', 'task_name', 'rate_limit', 'soft', 'hard', 'n', 'max', 'min', 'queue', 'exchange',
  'exchange_type', 'routing_key', 'ids', 'taskinfoitems', 'builtins', 'with_defaults', 'safe', '__proto__', 'constructor');
const wireValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom('t.add', 'q', 'fuzzq', '10/s', '1/h', '0', 'SIGKILL', 'KILL', 9, -1, 0, 1, 2, 1e308, -1e308, 2 ** 53, 0.5, 'abc', '', true, null),
  fc.array(fc.constantFrom('t.add', 'id-1', 'q', 3, null), { maxLength: 4 }),
);
const args = fc.oneof(
  { weight: 8, arbitrary: fc.dictionary(fc.oneof(argNames, fc.string({ maxLength: 8 })), wireValue, { maxKeys: 5 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);
const destination = fc.oneof(fc.constant(null), fc.constant(undefined), fc.constant([HOST]), fc.constant(HOST), fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }), fc.jsonValue({ maxDepth: 1 }));
const pattern = fc.oneof(fc.constant(null), fc.constantFrom('(', '(a+)+$', 'fuzz@*', '*', '[', 'fuzz@x', '.*', '\\1', '(?=x)', 'a'.repeat(2000)), fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 1 }));
const matcher = fc.oneof(fc.constant(null), fc.constantFrom('glob', 'pcre', 'regex', ''), fc.jsonValue({ maxDepth: 1 }));
const replyTo = fc.oneof(fc.constant(undefined), fc.constant({ exchange: 'reply.celery.pidbox', routing_key: 'fuzz-client' }), fc.jsonValue({ maxDepth: 2 }));
const headers = fc.record({ clock: fc.jsonValue({ maxDepth: 1 }), expires: fc.oneof(fc.constant(0), fc.constant(Date.now() / 1000 + 3600), fc.jsonValue({ maxDepth: 1 })) }, { requiredKeys: [] });

interface Generated {
  body: Record<string, unknown> | null;
  raw: Uint8Array | null;
  contentType: string;
  headers: Record<string, unknown>;
}

const request: fc.Arbitrary<Generated> = fc.oneof(
  {
    weight: 20,
    arbitrary: fc.record({
      body: fc.record({ method: methods, arguments: args, destination, pattern, matcher, ticket: fc.oneof(fc.uuid(), fc.jsonValue({ maxDepth: 1 })), reply_to: replyTo }, { requiredKeys: ['method'] }),
      raw: fc.constant(null), contentType: fc.constant('application/json'), headers,
    }),
  },
  { weight: 1, arbitrary: fc.record({ body: fc.constant(null), raw: fc.uint8Array({ maxLength: 64 }), contentType: fc.constantFrom('application/json', 'application/x-msgpack', 'text/plain', ''), headers }) },
);

function toMessage(g: Generated): Message {
  return {
    headers: g.headers,
    properties: { delivery_mode: 2, priority: 0 },
    body: g.raw ? Buffer.from(g.raw) : Buffer.from(JSON.stringify(g.body ?? null), 'utf8'),
    contentType: g.contentType,
    contentEncoding: 'utf-8',
  };
}

/** Inputs that broke a handler once (or would break a naive one): run first on every run. */
const REGRESSIONS: Generated[] = [
  { body: { method: 'ping', pattern: '(', matcher: 'pcre' }, raw: null, contentType: 'application/json', headers: {} },
  { body: { method: 'pool_grow', arguments: { n: 1e308 } }, raw: null, contentType: 'application/json', headers: {} },
  { body: { method: 'pool_shrink', arguments: { n: 2 ** 53 } }, raw: null, contentType: 'application/json', headers: {} },
  { body: { method: '__proto__', arguments: [] }, raw: null, contentType: 'application/json', headers: {} },
  { body: { method: 'rate_limit', arguments: { task_name: 't.add', rate_limit: { a: 1 } } }, raw: null, contentType: 'application/json', headers: {} },
  { body: { method: 'add_consumer', arguments: { queue: 'x'.repeat(5000) } }, raw: null, contentType: 'application/json', headers: {} },
  { body: { method: 'query_task', arguments: { ids: { nested: ['x'] } } }, raw: null, contentType: 'application/json', headers: {} },
  { body: { method: 'ping', reply_to: { exchange: 1, routing_key: [] }, ticket: {} }, raw: null, contentType: 'application/json', headers: { clock: 1e300 } },
  { body: { method: 'autoscale', arguments: { max: -5, min: 'x' } }, raw: null, contentType: 'application/json', headers: {} },
];

test(`remote control: ${RUNS.toLocaleString('en')} generated requests neither throw nor stall the worker`, { timeout: 900_000 }, async () => {
  const url = `memory://${uniqueName('fuzz')}`;
  const app = new Celeriac('fuzz', { broker: url, backend: url, task_default_queue: 'q' });
  app.task('t.add', (x: number, y: number) => x + y);
  const worker = app.worker({ hostname: HOST, concurrency: 2, logger: createLogger('critical'), taskEvents: true, mingle: false });
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  process.on('unhandledRejection', onUnhandled);
  try {
    await worker.start();
    const broker = await app.broker();
    const handler = new WorkerControl(broker, new WorkerControlTarget(worker.runtime), createLogger('critical'));
    let slowest = 0;
    // Count what gets past parsing and filtering, so the fuzz is known to reach the commands.
    let dispatched = 0;
    const dispatch = handler.dispatch.bind(handler);
    handler.dispatch = (req) => {
      dispatched++;
      return dispatch(req);
    };
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(request, async (g) => {
        runs++;
        const started = performance.now();
        await handler.onMessage(toMessage(g)); // must resolve, whatever the input
        slowest = Math.max(slowest, performance.now() - started);
      }),
      { numRuns: RUNS, examples: REGRESSIONS.map((r) => [r] as [Generated]) },
    );
    assert.ok(runs >= RUNS, `ran ${runs}`);
    assert.ok(dispatched > RUNS / 2, `only ${dispatched} of ${runs} requests reached a command`);
    assert.ok(slowest < 5000, `the slowest request took ${slowest.toFixed(0)} ms (a stall)`);
    assert.deepEqual(unhandled, [], 'no promise rejected unhandled');

    // The worker is still whole: undo what the fuzz changed, then it answers and runs tasks.
    await app.control.broadcast('add_consumer', { queue: 'q' }, { destination: [HOST] });
    await app.control.rateLimit('t.add', null, { destination: [HOST] });
    await app.control.timeLimit('t.add', { soft: null, hard: null }, { destination: [HOST] });
    const pong = await app.control.ping({ destination: [HOST], timeout: 10 });
    assert.deepEqual(pong, [{ [HOST]: { ok: 'pong' } }]);
    const r = await app.sendTask('t.add', [20, 22]);
    assert.equal(await r.get({ timeout: 20_000 }), 42);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await worker.close();
    await app.close();
  }
});
