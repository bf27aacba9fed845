// The layering rules of ARCHITECTURE.md, checked with dependency-cruiser (.dependency-cruiser.cjs):
// src/ must pass, and a fixture tree breaking each rule must fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../fixtures/layering/', import.meta.url));
const CRUISER = `${ROOT}node_modules/.bin/depcruise`;

interface Violation { rule: { name: string }; from: string; to: string }

function cruise(cwd: string): Violation[] {
  const r = spawnSync(CRUISER, ['src', '--config', `${ROOT}.dependency-cruiser.cjs`, '--output-type', 'json'], { cwd, encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  assert.ok(r.stdout, `dependency-cruiser printed nothing (exit ${r.status}): ${r.stderr}`);
  return (JSON.parse(r.stdout) as { summary: { violations: Violation[] } }).summary.violations;
}

test('src/ keeps the layering rules: pure protocol, transports without the worker, a worker without transports, no cycles', () => {
  const violations = cruise(ROOT);
  assert.deepEqual(violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`), []);
});

test('a tree that breaks each rule fails the check, naming the rule and the import', () => {
  const found = cruise(FIXTURE).map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`).sort();
  assert.deepEqual(found, [
    'no-cycles: src/brokers/redis/consumer.ts -> src/worker/worker.ts',
    'protocol-is-pure: src/protocol/message.ts -> src/worker/worker.ts',
    'transports-know-not-the-worker: src/brokers/redis/consumer.ts -> src/worker/worker.ts',
    'worker-knows-no-transport: src/worker/worker.ts -> src/app/celeriac.ts',
    'worker-knows-no-transport: src/worker/worker.ts -> src/brokers/redis/consumer.ts',
  ]);
});
