// The typed canvas builder, compiled: a chain whose steps fit compiles, and one that does not fails
// where the fixture says it fails (test/fixtures/canvas-types/chains.ts, with the TypeScript compiler).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../../fixtures/canvas-types/chains.ts', import.meta.url));
const MARK = '// @ts-expect-error misfit:';

const config = ts.getParsedCommandLineOfConfigFile(`${ROOT}tsconfig.json`, { noEmit: true }, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined })!;
const host = ts.createCompilerHost(config.options);
const readSource = host.getSourceFile.bind(host);
let fixtureText = '';
host.getSourceFile = (name, lang, ...rest) => (name === FIXTURE ? ts.createSourceFile(name, fixtureText, lang) : readSource(name, lang, ...rest));
let last: ts.Program | undefined;

/** The fixture's diagnostics with `text` as its source (the second compile reuses the first's other files). */
function compile(text: string): ts.Diagnostic[] {
  fixtureText = text;
  last = ts.createProgram({ rootNames: [FIXTURE], options: config.options, host, oldProgram: last });
  const sf = last.getSourceFile(FIXTURE)!;
  return [...last.getSyntacticDiagnostics(sf), ...last.getSemanticDiagnostics(sf)];
}

function lineOf(d: ts.Diagnostic): number {
  return d.file!.getLineAndCharacterOfPosition(d.start!).line + 1;
}

test('chains, chords and groups whose steps fit compile; each marked misfit fails to compile, on its own line', () => {
  const text = fs.readFileSync(FIXTURE, 'utf8');
  const lines = text.split('\n');
  const marked = lines.flatMap((l, i) => (l.trim().startsWith(MARK) ? [i + 2] : []));
  assert.equal(marked.length, 8, 'the fixture marks eight misfits');
  const asIs = compile(text);
  assert.deepEqual(asIs.map((d) => `${lineOf(d)}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`), [], 'the fixture compiles: fits pass, misfits fail where marked');
  // Without the markers, the compiler must report exactly the marked lines.
  const bare = compile(lines.map((l) => (l.trim().startsWith(MARK) ? '' : l)).join('\n'));
  assert.deepEqual([...new Set(bare.map(lineOf))].sort((a, b) => a - b), marked, bare.map((d) => `${lineOf(d)}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`).join('\n'));
  const first = bare.find((d) => lineOf(d) === marked[0])!;
  assert.match(ts.flattenDiagnosticMessageText(first.messageText, ' '), /does not take the previous step's result/, 'a misfit names what is wrong');
});
