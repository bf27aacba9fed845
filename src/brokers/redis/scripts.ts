// Lua scripts, one file each, loaded once and called by SHA (EVALSHA with an EVAL fallback).
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

export type ScriptName = 'fetch' | 'ack' | 'restore' | 'renew' | 'recover-inflight' | 'global-rate-limit' | 'unlock';

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
};

/** The result backend's store script (defined in backends/redis.ts). */
export const STORE_RESULTS_COMMAND = 'celeriacStoreResults';

/** Define our scripts on a client as custom commands (ioredis handles EVALSHA/NOSCRIPT). */
export function scriptsFor(client: Redis): ScriptClient {
  const c = client as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  for (const [name, cmd] of Object.entries(COMMANDS)) {
    if (typeof c[cmd] !== 'function') client.defineCommand(cmd, { lua: source(name) });
  }
  return {
    run: (name, keys, args) => c[COMMANDS[name]]!.call(client, keys.length, ...keys, ...args),
  };
}
