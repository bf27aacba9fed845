#!/usr/bin/env node
// The celeriac command. Registers tsx so -A can load a .ts app module, then runs the CLI.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

try {
  const { register } = await import('tsx/esm/api');
  register();
} catch {
  // tsx is optional when the app module is plain JavaScript.
}
const built = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const mod = existsSync(built) ? await import(built) : await import('../src/cli/main.ts');
await mod.main(process.argv);
