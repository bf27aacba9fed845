// Transport packages that are optional dependencies (better-sqlite3, amqplib): loaded on first use of
// their URL, with an error naming the npm package to add when the install left it out.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export class MissingDependencyError extends Error {
  override name = 'MissingDependencyError';
}

/** The version range Celeriac declares for an optional package (so the hint installs a compatible one). */
function declaredRange(pkg: string): string {
  try {
    const manifest = require('../../package.json') as { optionalDependencies?: Record<string, string> };
    return manifest.optionalDependencies?.[pkg] ?? '';
  } catch {
    return '';
  }
}

export function missingDependency(pkg: string, purpose: string): MissingDependencyError {
  const range = declaredRange(pkg);
  const spec = range ? `${pkg}@"${range}"` : pkg;
  return new MissingDependencyError(`${purpose} needs the npm package ${pkg}, which is not installed (it is an optional dependency of celeriac): npm install ${spec}`);
}

/** A native package that is installed but was never compiled (npm skipped its install script). */
export function unbuiltDependency(pkg: string, purpose: string, err: unknown): MissingDependencyError | undefined {
  const msg = String((err as Error)?.message ?? '');
  if (!/Could not locate the bindings file|NODE_MODULE_VERSION|invalid ELF header/.test(msg)) return undefined;
  return new MissingDependencyError(`${purpose} needs ${pkg}'s native module, which is not built for Node ${process.version} (npm skips install scripts it was not allowed to run): npm install-scripts approve ${pkg} && npm rebuild ${pkg}`);
}

/** True when `err` says the package `pkg` itself (not one of its files or dependencies) could not be found. */
export function isMissingPackage(err: unknown, pkg: string): boolean {
  const e = err as { code?: string; message?: string };
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' && e?.code !== 'MODULE_NOT_FOUND') return false;
  const msg = String(e.message ?? '');
  return msg.includes(`'${pkg}'`) || msg.includes(`"${pkg}"`) || msg.includes(`package '${pkg}'`);
}

/** require() an optional CommonJS package, or throw MissingDependencyError naming it. */
export function requireOptional<T>(pkg: string, purpose: string): T {
  try {
    return require(pkg) as T;
  } catch (err) {
    if (isMissingPackage(err, pkg)) throw missingDependency(pkg, purpose);
    throw err;
  }
}

/** require.resolve() for an optional package, or throw MissingDependencyError naming it. */
export function resolveOptional(pkg: string, purpose: string): string {
  try {
    return require.resolve(pkg);
  } catch (err) {
    if (isMissingPackage(err, pkg)) throw missingDependency(pkg, purpose);
    throw err;
  }
}
