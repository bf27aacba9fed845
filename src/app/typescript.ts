// How a TypeScript app module (-A tasks.ts) gets loaded: through tsx when it is installed (an optional
// peer dependency: it also maps `./x.js` imports to x.ts and compiles enums), else through Node's own
// type stripping where the Node version has it, else not at all, with one line saying what to install.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export type TypeScriptSupport =
  | { kind: 'tsx'; api: string; cjsApi: string; loader: string }
  | { kind: 'native' }
  | { kind: 'none' };

export function isTypeScriptFile(file: string): boolean {
  return /\.[mc]?ts$/.test(file) && !file.endsWith('.d.ts');
}

/** Resolve a tsx entry point from Celeriac's own location, then from the app module's directory. */
function resolveTsx(entry: string, fromFile?: string): string | null {
  try {
    return import.meta.resolve(entry);
  } catch {
    /* not next to celeriac */
  }
  if (!fromFile) return null;
  try {
    return pathToFileURL(createRequire(path.resolve(fromFile)).resolve(entry)).href;
  } catch {
    return null;
  }
}

/** Whether this Node strips types by itself (22.18+, 23.6+; earlier 22.x with --experimental-strip-types). */
export function nodeStripsTypes(): boolean {
  return Boolean((process.features as { typescript?: string | false }).typescript);
}

/** How this process (and the pool children it starts) can load the TypeScript module `file`. */
export function typeScriptSupport(file?: string): TypeScriptSupport {
  const api = resolveTsx('tsx/esm/api', file);
  const cjsApi = resolveTsx('tsx/cjs/api', file);
  const loader = resolveTsx('tsx', file);
  if (api && cjsApi && loader) return { kind: 'tsx', api, cjsApi, loader };
  return nodeStripsTypes() ? { kind: 'native' } : { kind: 'none' };
}

/** The one line for a TypeScript module this Node cannot load. */
export function typeScriptMissing(spec: string): string {
  return `${spec} is TypeScript, and Node ${process.version} cannot load it by itself: install tsx (npm install --save-dev tsx), use Node 22.18 or later, or compile it to JavaScript`;
}

let registered = false;

/** Make `import()` of TypeScript work in this process; false when nothing can (see typeScriptMissing). */
export async function enableTypeScript(file: string): Promise<boolean> {
  if (import.meta.url.endsWith('.ts')) return true; // Celeriac itself runs from source: a loader is active
  const support = typeScriptSupport(file);
  if (support.kind === 'none') return false;
  if (support.kind === 'tsx' && !registered) {
    // Both hooks, as `node --import tsx` does: a .ts file in a "type": "commonjs" package loads as CommonJS.
    for (const api of [support.api, support.cjsApi]) ((await import(api)) as { register: () => unknown }).register();
    registered = true;
  }
  return true;
}
