// Copy what tsc does not emit next to the compiled modules: Lua scripts, SQL, the CommonJS entry
// (require.cjs) and the dashboard's UI; then stamp the build so scripts can tell a dist/ older than src/.
import { cpSync, readdirSync, statSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

// The dashboard's UI (static files: tsc emits .js for the rest of src/, so only this folder's are copied).
const isUi = (p) => p.startsWith(path.join('src', 'dashboard', 'ui') + path.sep);

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.lua') || p.endsWith('.sql') || p.endsWith('.cjs') || (isUi(p) && /\.(html|js|css|svg|png)$/.test(p))) {
      const dest = path.join('dist', path.relative('src', p));
      mkdirSync(path.dirname(dest), { recursive: true });
      cpSync(p, dest);
    }
  }
}
walk('src');
writeFileSync(path.join('dist', '.built'), `${new Date().toISOString()}\n`);
