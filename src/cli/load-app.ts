// Loading the user's app module given with -A: found as Celery finds a module (with or without its
// extension, or as a dotted path), TypeScript through tsx or Node's own type stripping.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Celeriac } from '../app/celeriac.js';
import { enableTypeScript, isTypeScriptFile, typeScriptMissing } from '../app/typescript.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

/** The extensions -A tries, in order, when the name has none of its own. */
export const MODULE_EXTENSIONS = ['.ts', '.mts', '.js', '.mjs'] as const;

function isApp(v: unknown): v is Celeriac {
  return v instanceof Celeriac || (!!v && typeof v === 'object' && 'conf' in v && 'task' in v && 'tasks' in v && 'sendTask' in v);
}

const isFile = (p: string): boolean => existsSync(p) && statSync(p).isFile();

/** The file -A names: as given, then with each extension, then a dotted module path (proj.tasks → proj/tasks.ts). */
export function findAppModule(spec: string, cwd: string = process.cwd()): { file: string | null; tried: string[] } {
  const base = path.resolve(cwd, spec);
  const candidates = [base];
  if (!(MODULE_EXTENSIONS as readonly string[]).includes(path.extname(spec))) {
    candidates.push(...MODULE_EXTENSIONS.map((ext) => base + ext));
    if (/^[\w-]+(\.[\w-]+)+$/.test(spec)) {
      const dotted = path.resolve(cwd, spec.split('.').join(path.sep));
      candidates.push(...MODULE_EXTENSIONS.map((ext) => dotted + ext));
    }
  }
  return { file: candidates.find(isFile) ?? null, tried: candidates };
}

/** The absolute path of the module -A names, or a UsageError listing what was tried. */
export function resolveAppModule(spec: string): string {
  const { file, tried } = findAppModule(spec);
  if (file) return file;
  const shown = tried.map((t) => path.relative(process.cwd(), t) || t);
  throw new UsageError(`-A ${spec}: no such module (looked for ${shown.join(', ')}). Pass the .ts/.mts/.js/.mjs module that exports your app.`);
}

/** Import the -A module and return its `app` export (named or default). */
export async function loadApp(spec: string | undefined): Promise<Celeriac> {
  if (!spec) return new Celeriac('default');
  const file = resolveAppModule(spec);
  if (isTypeScriptFile(file) && !(await enableTypeScript(file))) throw new UsageError(`-A ${spec}: ${typeScriptMissing(path.basename(file))}`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    const msg = (err as Error).message;
    const code = (err as { code?: string }).code;
    let hint = '';
    if (/require\(\) ES Module|ERR_REQUIRE_ESM|Cannot use import statement/.test(msg)) {
      hint = ' (the module is being loaded as CommonJS: name it .mts/.mjs or add "type": "module" to the nearest package.json)';
    } else if (code === 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX' || code === 'ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING') {
      hint = " (Node's type stripping cannot run this file: npm install --save-dev tsx and Celeriac uses it instead)";
    }
    throw new UsageError(`-A ${spec}: the module failed to load: ${msg.split('\n')[0]}${hint}`);
  }
  for (const candidate of [mod.app, mod.default, (mod.default as Record<string, unknown> | undefined)?.app, mod.celery]) {
    if (isApp(candidate)) return candidate;
  }
  throw new UsageError(`-A ${spec}: the module does not export an app. Add: export const app = new Celeriac('proj', { broker: '...' })`);
}
