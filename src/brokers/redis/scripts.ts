// The one loader for every Lua script of ours (broker and result backend): one file each in lua/,
// opening with a header naming KEYS, ARGV and the reply; defined once per client as a custom command
// and called by SHA (ioredis: EVALSHA with an EVAL fallback).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';

const DIR = fileURLToPath(new URL('./lua/', import.meta.url));
const cache = new Map<string, string>();

function source(name: string): string {
  let s = cache.get(name);
  if (s === undefined) {
    s = readFileSync(DIR + name + '.lua', 'utf8');
    cache.set(name, s);
  }
  return s;
}

export type ScriptName =
  | 'fetch' | 'ack' | 'restore' | 'renew' | 'recover-inflight' | 'global-rate-limit' | 'unlock' | 'store-results' | 'chord-part'
  | 'beat-lease' | 'beat-release' | 'beat-record-run' | 'beat-merge' | 'beat-upsert' | 'beat-remove';

export interface ScriptClient {
  run(name: ScriptName, keys: string[], args: (string | number)[]): Promise<unknown>;
}

const COMMANDS: Record<ScriptName, string> = {
  fetch: 'celeriacFetch',
  ack: 'celeriacAck',
  restore: 'celeriacRestore',
  renew: 'celeriacRenew',
  'recover-inflight': 'celeriacRecoverInflight',
  'global-rate-limit': 'celeriacGlobalRateLimit',
  unlock: 'celeriacUnlock',
  'store-results': 'celeriacStoreResults',
  'chord-part': 'celeriacChordPart',
  'beat-lease': 'celeriacBeatLease',
  'beat-release': 'celeriacBeatRelease',
  'beat-record-run': 'celeriacBeatRecordRun',
  'beat-merge': 'celeriacBeatMerge',
  'beat-upsert': 'celeriacBeatUpsert',
  'beat-remove': 'celeriacBeatRemove',
};

/** The result backend's store script, called as a custom command by backends/redis.ts. */
export const STORE_RESULTS_COMMAND = COMMANDS['store-results'];
/** The result backend's chord join script (its Buffer-reply variant is this name + 'Buffer'). */
export const CHORD_PART_COMMAND = COMMANDS['chord-part'];

/** Define one script on a client as its custom command (COMMANDS[name]). */
export function defineScript(client: Redis, name: ScriptName): void {
  const cmd = COMMANDS[name];
  if (typeof (client as unknown as Record<string, unknown>)[cmd] !== 'function') client.defineCommand(cmd, { lua: source(name) });
}

/** Define our scripts (all, or the ones named) on a client as custom commands (ioredis handles EVALSHA/NOSCRIPT). */
export function scriptsFor(client: Redis, names: readonly ScriptName[] = Object.keys(COMMANDS) as ScriptName[]): ScriptClient {
  const c = client as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  for (const name of names) defineScript(client, name);
  return {
    run: (name, keys, args) => c[COMMANDS[name]]!.call(client, keys.length, ...keys, ...args),
  };
}

/** Which of our scripts has this SHA1, and the commands it runs (to name them in an ACL error). */
export function scriptOfSha(sha: string): { name: ScriptName; commands: string[] } | undefined {
  for (const name of Object.keys(COMMANDS) as ScriptName[]) {
    const lua = source(name);
    if (createHash('sha1').update(lua).digest('hex') !== sha.toLowerCase()) continue;
    const commands = new Set<string>();
    for (const m of lua.matchAll(/redis\.p?call\(\s*'([A-Za-z]+)'/g)) commands.add(m[1]!.toLowerCase());
    return { name, commands: [...commands].sort() };
  }
  return undefined;
}
