#!/usr/bin/env node
// The celeriac command. It runs the compiled CLI in dist/ (what the published package ships); only a
// checkout that was never built runs the TypeScript sources, through tsx (a dev dependency there).
import { existsSync } from 'node:fs';

const built = new URL('../dist/cli/main.js', import.meta.url);
const source = new URL('../src/cli/main.ts', import.meta.url);
let cli;
if (existsSync(built)) {
  cli = await import(built.href);
} else if (existsSync(source)) {
  try {
    (await import('tsx/esm/api')).register();
  } catch {
    process.stderr.write('Error: celeriac is not built and tsx is missing: run npm install, then npm run build\n');
    process.exit(2);
  }
  cli = await import(source.href);
} else {
  process.stderr.write('Error: celeriac is incomplete (no dist/cli/main.js): reinstall the package\n');
  process.exit(2);
}
await cli.main(process.argv);
