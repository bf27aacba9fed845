#!/usr/bin/env node
// The celeriac command. Registers tsx so -A can load a .ts app module, then runs the CLI
// (from the TypeScript sources in a checkout, from dist/ in an installed package without them).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

let tsx = false;
try {
  const { register } = await import('tsx/esm/api');
  register();
  tsx = true;
} catch {
  // Without tsx only JavaScript app modules can be loaded.
}
const source = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const built = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const mod = tsx && existsSync(source) ? await import(source) : await import(built);
await mod.main(process.argv);
