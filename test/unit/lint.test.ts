// The linter (eslint.config.js: typescript-eslint, naming and line length) passes on the code base,
// and fails on a fixture that breaks its rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('src/, test/, bench/ and examples/ pass the lint rules', async () => {
  const eslint = new ESLint({ cwd: ROOT });
  const results = await eslint.lintFiles(['.']);
  const problems = results.flatMap((r) => r.messages.map((m) => `${r.filePath.slice(ROOT.length)}:${m.line} ${m.ruleId}: ${m.message}`));
  assert.deepEqual(problems, []);
  assert.ok(results.length > 100, `linted ${results.length} files`);
});

test('a file that breaks the rules fails, naming each rule', async () => {
  const eslint = new ESLint({ cwd: ROOT, ignore: false });
  const [result] = await eslint.lintFiles(['test/fixtures/lint/bad.ts']);
  const rules = result!.messages.map((m) => `${m.line} ${m.ruleId}`).sort();
  assert.deepEqual(rules, ['2 @typescript-eslint/naming-convention', '3 @typescript-eslint/naming-convention', '4 max-len']);
});
