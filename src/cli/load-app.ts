// Loading the user's app module given with -A.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Celeriac } from '../app/celeriac.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

function isApp(v: unknown): v is Celeriac {
  return v instanceof Celeriac || (!!v && typeof v === 'object' && 'conf' in v && 'task' in v && 'tasks' in v && 'sendTask' in v);
}

/** Import a .js/.mjs/.ts module and return its `app` export (named or default). */
export async function loadApp(spec: string | undefined): Promise<Celeriac> {
  if (!spec) return new Celeriac('default');
  const file = path.resolve(process.cwd(), spec);
  if (!existsSync(file)) throw new UsageError(`-A ${spec}: no such file (looked for ${file}). Pass the .ts/.js/.mjs module that exports your app.`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    const msg = (err as Error).message;
    const hint = /require\(\) ES Module|ERR_REQUIRE_ESM|Cannot use import statement/.test(msg)
      ? ' (the module is being loaded as CommonJS: name it .mts/.mjs or add "type": "module" to the nearest package.json)'
      : '';
    throw new UsageError(`-A ${spec}: the module failed to load: ${msg.split('\n')[0]}${hint}`);
  }
  for (const candidate of [mod.app, mod.default, (mod.default as Record<string, unknown> | undefined)?.app, mod.celery]) {
    if (isApp(candidate)) return candidate;
  }
  throw new UsageError(`-A ${spec}: the module does not export an app. Add: export const app = new Celeriac('proj', { broker: '...' })`);
}
