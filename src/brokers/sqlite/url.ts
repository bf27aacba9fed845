// sqlite:// URLs, SQLAlchemy style: three slashes = relative to the working directory, four = absolute.
import path from 'node:path';

export type SynchronousMode = 'off' | 'normal' | 'full' | 'extra';

export interface SqliteLocation {
  /** Absolute path of the database file. */
  file: string;
  synchronous: SynchronousMode;
}

const SYNC_MODES: ReadonlySet<string> = new Set(['off', 'normal', 'full', 'extra']);

export function parseSqliteUrl(url: string, cwd: string = process.cwd()): SqliteLocation {
  const m = /^sqlite:\/\/([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/i.exec(url.trim());
  if (!m) throw new Error(`Invalid SQLite URL ${JSON.stringify(url)}: use sqlite:///relative/path.db or sqlite:////absolute/path.db`);
  const host = m[1] ?? '';
  if (host !== '') {
    throw new Error(`Invalid SQLite URL ${JSON.stringify(url)}: there is no host part; write sqlite:///${host}${m[2] ?? ''} (relative) or sqlite:////path (absolute)`);
  }
  const rest = decodeURIComponent((m[2] ?? '').slice(1)); // drop the slash that ends the empty authority
  if (rest === '' || rest === ':memory:') {
    throw new Error(`SQLite URL ${JSON.stringify(url)} names no file: the embedded transport needs a file shared by processes (use memory:// for one process)`);
  }
  const file = path.isAbsolute(rest) ? rest : path.resolve(cwd, rest);
  const params = new URLSearchParams(m[3] ?? '');
  const sync = (params.get('synchronous') ?? 'normal').toLowerCase();
  if (!SYNC_MODES.has(sync)) throw new Error(`Invalid synchronous=${JSON.stringify(sync)} in SQLite URL: use off, normal, full or extra`);
  return { file, synchronous: sync as SynchronousMode };
}
