// Copy the Lua scripts next to the compiled modules that load them.
import { cpSync, readdirSync, statSync, mkdirSync } from 'node:fs';
import path from 'node:path';

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.lua') || p.endsWith('.sql')) {
      const dest = path.join('dist', path.relative('src', p));
      mkdirSync(path.dirname(dest), { recursive: true });
      cpSync(p, dest);
    }
  }
}
walk('src');
