// The type checker passes on src/, test/, bench/ and examples/ (tsconfig.json): the tests run through tsx, which
// strips types without checking them, and the build checks src/ only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('tsc --noEmit -p tsconfig.json reports no type error', () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json', '--noEmit', '--pretty', 'false'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.error, undefined);
  assert.equal(r.status, 0, `type errors:\n${r.stdout}${r.stderr}`);
});
