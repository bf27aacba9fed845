// Redis ACL refusals (NOPERM) said in full: which command or key the user lacks, and the ACL rule
// that grants it. Redis names a refused command but never a refused key, so the keys are probed.
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { KeyLayout } from './keys.js';
import { scriptOfSha } from './scripts.js';

export interface AclContext {
  /** A connection of the same user that can still run commands (not blocked, not subscribed). */
  client: Redis;
  /** The ACL user of the URL ('default' without one). */
  user: string;
  keys: KeyLayout;
}

interface FailedCommand {
  name: string;
  args: unknown[];
}

/** Commands we send with their keys first (the rest of our commands take one key, first). */
const ALL_KEYS = new Set(['del', 'exists', 'unlink']);
const TWO_KEYS = new Set(['blmove', 'lmove', 'rpoplpush', 'brpoplpush']);

/** True for an ACL refusal, from a command or from inside one of our scripts. */
export function isAclError(err: unknown): boolean {
  const m = (err as Error | null)?.message ?? '';
  return m.startsWith('NOPERM') || /user executing the script can't/.test(m);
}

/**
 * One line saying what the user may not do and the ACL rule to add, or the error's own message
 * when it is not an ACL refusal.
 */
export async function explainRedisError(err: unknown, ctx: AclContext): Promise<string> {
  const message = (err as Error | null)?.message ?? String(err);
  if (!isAclError(err)) return message;
  const cmd = (err as { command?: FailedCommand }).command;
  const { user } = ctx;
  const refused = /run the '([^']+)' command/.exec(message)?.[1];
  if (refused) {
    return `Redis user '${user}' may not run ${refused.toUpperCase()} (${message}), which a Celeriac worker needs: allow it with ACL SETUSER ${user} +${refused.toLowerCase()} (or in the users.acl file).`;
  }
  const script = cmd ? scriptOf(cmd) : undefined;
  if (/run this command/.test(message) && script) {
    return `Redis user '${user}' may not run one of the commands of Celeriac's '${script.name}' script (${script.commands.map((c) => c.toUpperCase()).join(', ')}): ` +
      `allow them with ACL SETUSER ${user} ${script.commands.map((c) => `+${c}`).join(' ')}.`;
  }
  const keys = cmd ? keysOf(cmd) : [];
  if (keys.length === 0) return `Redis user '${user}' was refused (${message}); check its ACL rules (ACL GETUSER ${user}).`;
  const denied = await probeKeys(ctx.client, keys);
  const named = denied ?? keys;
  const rules = [...new Set(named.map((k) => keyRule(k, ctx.keys)))].join(' ');
  const which = denied ? `the key${named.length > 1 ? 's' : ''} ${named.map((k) => `'${printable(k)}'`).join(', ')}` : `one of the keys ${named.map((k) => `'${printable(k)}'`).join(', ')}`;
  return `Redis user '${user}' may not access ${which} (${message.split(' script:')[0]}): allow ${named.length > 1 ? 'them' : 'it'} with ACL SETUSER ${user} ${rules} (or in the users.acl file).`;
}

function scriptOf(cmd: FailedCommand): { name: string; commands: string[] } | undefined {
  const name = cmd.name.toLowerCase();
  if (name !== 'evalsha' && name !== 'eval') return undefined;
  const first = String(cmd.args[0] ?? '');
  return scriptOfSha(name === 'evalsha' ? first : createHash('sha1').update(first).digest('hex'));
}

/** The keys a failed command named. */
function keysOf(cmd: FailedCommand): string[] {
  const name = cmd.name.toLowerCase();
  const args = cmd.args.map(String);
  if (name === 'evalsha' || name === 'eval') return args.slice(2, 2 + Number(args[1] ?? 0));
  if (ALL_KEYS.has(name)) return args;
  if (TWO_KEYS.has(name)) return args.slice(0, 2);
  return args.slice(0, 1);
}

/** The keys this user may not touch (EXISTS on each), or null when it may not probe either. */
async function probeKeys(client: Redis, keys: string[]): Promise<string[] | null> {
  const denied: string[] = [];
  for (const key of new Set(keys)) {
    try {
      await client.exists(key);
    } catch (err) {
      if (/run the 'exists' command/.test((err as Error).message)) return null;
      if (isAclError(err)) denied.push(key);
      else return null;
    }
  }
  return denied.length > 0 ? denied : null;
}

/** The ACL key pattern that covers `key` and the keys of its kind (kombu's and ours). */
export function keyRule(key: string, layout: KeyLayout): string {
  const p = layout.prefix;
  const families = [`${p}_celeriac.`, `${p}_kombu.binding.`, `${p}unacked`];
  for (const f of families) if (key.startsWith(f)) return `~${globEscape(f)}*`;
  // A queue list: its priority lists and dead-letter list start with its name.
  return `~${globEscape(p + layout.queueOfKey(key))}*`;
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** kombu's priority separator is \x06\x16: show control characters as escapes. */
function printable(s: string): string {
  return s.replace(/[\x00-\x1f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
