// Micro-benchmark of protocol/ (json.ts's loads/dumps, and a whole task message encoded and decoded)
// against another commit's (default: the one before the lossless JSON layer), on ordinary task messages,
// envelopes and result metas, and on the texts that need the full parser (a datetime tag, NaN, a big integer).
//   node --import tsx bench/json-micro.ts [--baseline <git ref>] [--rounds 7] [--ms 300]
// Old and new run interleaved in one process; each figure is the median of the rounds, in operations/s.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as current from '../src/protocol/json.js';
import * as currentEnvelope from '../src/protocol/envelope.js';
import * as currentMessage from '../src/protocol/message.js';

const { encodeEnvelope } = currentEnvelope;
const { encodeTaskV2 } = currentMessage;

interface Protocol {
  dumps: (v: unknown) => string;
  loads: (s: string) => unknown;
  encodeEnvelope: typeof currentEnvelope.encodeEnvelope;
  decodeEnvelope: typeof currentEnvelope.decodeEnvelope;
  encodeTaskV2: typeof currentMessage.encodeTaskV2;
  decodeTask: typeof currentMessage.decodeTask;
}
type Json = Protocol;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const BASELINE = arg('--baseline', '4a74302');
const ROUNDS = Number(arg('--rounds', '7'));
const MS = Number(arg('--ms', '300'));

/** The baseline's src/protocol (it imports nothing else of ours), written to a temp directory and imported. */
async function baseline(): Promise<Protocol> {
  const dir = mkdtempSync(path.join(tmpdir(), 'celeriac-protocol-baseline-'));
  const files = execFileSync('git', ['ls-tree', '--name-only', `${BASELINE}:src/protocol`], { encoding: 'utf8' }).trim().split('\n');
  for (const f of files) writeFileSync(path.join(dir, f), execFileSync('git', ['show', `${BASELINE}:src/protocol/${f}`], { encoding: 'utf8' }));
  const json = await import(pathToFileURL(path.join(dir, 'json.ts')).href);
  const envelope = await import(pathToFileURL(path.join(dir, 'envelope.ts')).href);
  const message = await import(pathToFileURL(path.join(dir, 'message.ts')).href);
  return { ...json, ...envelope, ...message } as Protocol;
}

function opsPerSecond(fn: () => unknown): number {
  let n = 0;
  const end = process.hrtime.bigint() + BigInt(MS) * 1_000_000n;
  const start = process.hrtime.bigint();
  let now = start;
  while (now < end) {
    for (let i = 0; i < 100; i++) fn();
    n += 100;
    now = process.hrtime.bigint();
  }
  return (n * 1e9) / Number(now - start);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const message = encodeTaskV2('tasks.add', [2, 2], {}, { id: '11111111-2222-3333-4444-555555555555', replyTo: '860b69a0-c619-3fa1-9ba7-e0694f601fa8', now: new Date('2026-11-24T18:30:47.235Z') });
const envelope = encodeEnvelope(message, { exchange: '', routing_key: 'celery' }, '913f26ba-e0af-4e5d-a0d2-d91d868490dd');
const body = [[2, 2], {}, { callbacks: null, errbacks: null, chain: null, chord: null }];
const bodyText = '[[2, 2], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]';
const meta = { status: 'SUCCESS', result: { id: 42, name: 'caf\u00e9', tags: ['a', 'b'], score: 0.5 }, traceback: null, children: [], date_done: '2026-11-24T18:30:57.235000+00:00', task_id: '11111111-2222-3333-4444-555555555555' };
const metaText = current.dumps(meta);
const dateText = '[[{"__type__": "datetime", "__value__": "2024-01-02T03:04:05.123456"}], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]';
const nanText = '[[1.5, NaN, Infinity], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]';
const bigText = '[[12345678901234567890], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]';

const DI = { exchange: '', routing_key: 'celery' };
const cases: [string, (j: Json) => unknown][] = [
  ['encode a task message (body, headers, envelope)', (j) => j.encodeEnvelope(j.encodeTaskV2('tasks.add', [2, 2], {}, { id: 'x' }), DI, 'tag')],
  ['decode a task message (envelope, body, request)', (j) => j.decodeTask(j.decodeEnvelope(envelope).message)],
  ['a worker\'s share per task: decode a message, encode its result meta', (j) => {
    const req = j.decodeTask(j.decodeEnvelope(envelope).message);
    return j.dumps({ ...meta, result: (req.args[0] as number) + (req.args[1] as number) });
  }],
  ['dumps task body', (j) => j.dumps(body)],
  ['dumps result meta', (j) => j.dumps(meta)],
  ['dumps envelope (headers + base64 body)', (j) => j.dumps({ body: message.body.toString('base64'), 'content-encoding': 'utf-8', 'content-type': 'application/json', headers: message.headers, properties: { correlation_id: 'x', reply_to: 'y', delivery_mode: 2, delivery_info: { exchange: '', routing_key: 'celery' }, priority: 0, body_encoding: 'base64', delivery_tag: 'z' } })],
  ['loads envelope', (j) => j.loads(envelope)],
  ['loads task body', (j) => j.loads(bodyText)],
  ['loads result meta', (j) => j.loads(metaText)],
  ['loads body with a datetime tag', (j) => j.loads(dateText)],
  ['loads body with NaN/Infinity', (j) => j.loads(nanText)],
  ['loads body with a 20-digit integer', (j) => j.loads(bigText)],
];

const before = await baseline();
const after: Protocol = { dumps: (v) => current.dumps(v), loads: (s) => current.loads(s), ...currentEnvelope, ...currentMessage };
console.log(`json micro-benchmark: baseline ${BASELINE} vs this tree; Node ${process.version}; median of ${ROUNDS} rounds of ${MS} ms each`);
console.log('| case | baseline ops/s | now ops/s | now / baseline |');
console.log('|---|---:|---:|---:|');
for (const [name, fn] of cases) {
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    a.push(opsPerSecond(() => fn(before)));
    b.push(opsPerSecond(() => fn(after)));
  }
  const [ma, mb] = [median(a), median(b)];
  console.log(`| ${name} | ${Math.round(ma).toLocaleString('en')} | ${Math.round(mb).toLocaleString('en')} | ${(mb / ma).toFixed(2)} |`);
}
