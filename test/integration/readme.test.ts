// The README's first two commands, run as written in a fresh clone of the repository.
// test-timeout: 1200000 (npm installs that compile better-sqlite3, on a loaded machine)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');

function readmeCommands(): string[] {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  const block = /```bash\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, 'README.md starts with a bash block');
  return block[1]!.split('\n').map((l) => l.replace(/#.*$/, '').trim()).filter(Boolean);
}

test('README: exactly two commands at the top, demo then tests, both succeed in a fresh clone', { timeout: 900_000 }, () => {
  const commands = readmeCommands();
  assert.deepEqual(commands, ['npm run demo', 'npm test']);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'celeriac-clone-'));
  try {
    execFileSync('git', ['clone', '-q', root, dir]);
    const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true' };
    delete env.NODE_TEST_CONTEXT; // let the nested run report as a top-level run
    const demo = spawnSync('bash', ['-c', commands[0]!], { cwd: dir, env, encoding: 'utf8', timeout: 600_000 });
    assert.equal(demo.status, 0, `npm run demo failed:\n${demo.stdout}\n${demo.stderr}`);
    assert.match(demo.stdout, /embedded default: no broker configured/);
    assert.match(demo.stdout, /All 33 tasks finished/);
    assert.match(demo.stdout, /flaky \(retries twice\)\s+"flaky task succeeded after 2 retries"/);
    assert.match(demo.stdout, /Worker exited with code 0/);
    // The nested run is limited to the unit tests so the suite does not run itself again.
    const tests = spawnSync('bash', ['-c', commands[1]!], { cwd: dir, env: { ...env, CELERIAC_TEST_SUBSET: 'unit' }, encoding: 'utf8', timeout: 600_000 });
    assert.equal(tests.status, 0, `npm test failed:\n${tests.stdout}\n${tests.stderr}`);
    assert.match(tests.stdout, /# fail 0/);
    assert.match(tests.stdout, /# pass [1-9]/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
