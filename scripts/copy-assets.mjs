// Copy what tsc does not emit next to the compiled modules: Lua scripts, SQL, and the CommonJS entry
// (require.cjs); then stamp the build so scripts can tell a dist/ older than src/.
import { cpSync, readdirSync, statSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.lua') || p.endsWith('.sql') || p.endsWith('.cjs')) {
      const dest = path.join('dist', path.relative('src', p));
      mkdirSync(path.dirname(dest), { recursive: true });
      cpSync(p, dest);
    }
  }
}
walk('src');
writeFileSync(path.join('dist', '.built'), `${new Date().toISOString()}\n`);
