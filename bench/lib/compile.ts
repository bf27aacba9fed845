// Node children run as plain JavaScript, as they would in production: the tsx loader alone adds
// ~35–45 MB of RSS and start-up time to a process, which would distort S7 and every cold start.
// esbuild (installed with tsx) transpiles src/ and bench/ file by file, keeping the layout so that
// src/ still finds its .lua files next to it; the output lives under node_modules/.cache so npm
// packages resolve from there.
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { REPO_DIR } from './child.js';

// One directory per orchestrator process, so a concurrent run (e.g. the smoke test) never swaps files under it.
export const COMPILED_DIR = path.join(REPO_DIR, 'node_modules', '.cache', 'celeriac-bench', String(process.pid));

function walk(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

export function removeCompiledChildren(): void {
  fs.rmSync(COMPILED_DIR, { recursive: true, force: true });
}

export async function compileChildren(): Promise<void> {
  fs.rmSync(COMPILED_DIR, { recursive: true, force: true });
  const files = [...walk(path.join(REPO_DIR, 'src')), ...walk(path.join(REPO_DIR, 'bench', 'lib')), ...walk(path.join(REPO_DIR, 'bench', 'systems'))];
  await build({
    entryPoints: files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.endsWith('.test.ts')),
    outbase: REPO_DIR,
    outdir: COMPILED_DIR,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    keepNames: false,
    sourcemap: 'linked',
    logLevel: 'warning',
  });
  for (const f of files.filter((x) => !x.endsWith('.ts'))) {
    const dest = path.join(COMPILED_DIR, path.relative(REPO_DIR, f));
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(f, dest);
  }
  // ESM for the .js files; the version is what the Celeriac child reports from '../../package.json'.
  const { version } = JSON.parse(fs.readFileSync(path.join(REPO_DIR, 'package.json'), 'utf8')) as { version: string };
  fs.writeFileSync(path.join(COMPILED_DIR, 'package.json'), JSON.stringify({ type: 'module', private: true, version }) + '\n');
}
