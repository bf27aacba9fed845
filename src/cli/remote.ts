// `celeriac inspect`, `control` and `status`: Celery's commands, their output and exit codes
// (69, EX_UNAVAILABLE, when no node replied or the broker cannot be reached).
import type { Command } from 'commander';
import type { Celeriac } from '../app/celeriac.js';
import type { ControlReply } from '../control/control.js';
import { flattenReplies, warnDuplicateNodenames } from '../control/replies.js';
import { commandsOf, compileArguments, listing, verifyCommand } from './panel.js';
import { UsageError } from './load-app.js';

/** Celery's EX_UNAVAILABLE. */
export const EX_UNAVAILABLE = 69;

/** An error that ends the command with this exit code (its message on stderr). */
export class CommandFailed extends Error {
  override name = 'CommandFailed';
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

export interface RemoteOptions {
  timeout: number;
  destination?: string[];
  json?: boolean;
  list?: boolean;
}

const indent = (text: string, n: number) => text.split('\n').map((l) => ' '.repeat(n) + l).join('\n');

/** Celery's CLIContext.pretty: a status and the text shown under the node's name. */
export function pretty(n: unknown): [status: 'OK' | 'ERROR', text: string] {
  if (Array.isArray(n)) return ['OK', n.length ? n.map((x) => `* ${typeof x === 'string' ? x : JSON.stringify(x)}`).join('\n') : '- empty -'];
  if (n && typeof n === 'object') {
    const o = n as Record<string, unknown>;
    if ('ok' in o) return ['OK', indent(pretty(o.ok)[1], 4)];
    if ('error' in o) return ['ERROR', indent(pretty(o.error)[1], 4)];
    return ['OK', JSON.stringify(sortKeys(o), null, 4)];
  }
  if (typeof n === 'string') return ['OK', n];
  return ['OK', n === null || n === undefined ? 'None' : JSON.stringify(n)];
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}

/** One reply as it arrives: "->  node: OK" and, for inspect and control, the reply under it. */
function say(reply: ControlReply, showBody: boolean): void {
  const [node] = Object.keys(reply);
  if (node === undefined) return;
  const [status, text] = pretty(reply[node]);
  process.stdout.write(`->  ${node}: ${status}\n${showBody ? indent(text, 4) + '\n' : ''}`);
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Connect first, so an unreachable broker is Celery's "Could not connect" (exit 69) and not another error. */
async function connected(app: Celeriac, what: string): Promise<void> {
  try {
    await app.broker();
  } catch (err) {
    throw new CommandFailed(
      `Could not connect to the message broker. Please make sure your broker (e.g., RabbitMQ or Redis) is running and the connection settings are correct. Reason: ${(err as Error).message} (celeriac ${what})`,
      EX_UNAVAILABLE,
    );
  }
}

function noReplies(): CommandFailed {
  return new CommandFailed('No nodes replied within time constraint', EX_UNAVAILABLE);
}

/**
 * The steps inspect and control share: --list, the command checked, its arguments compiled from the
 * words after it, the broker reached. Null when --list printed the list.
 */
async function prepare(app: Celeriac, type: 'inspect' | 'control', command: string | undefined, words: string[], o: RemoteOptions): Promise<Record<string, unknown> | null> {
  if (o.list) {
    process.stdout.write(listing(type));
    return null;
  }
  if (!command) throw new UsageError(`${type} needs a command: ${commandsOf(type).map(([n]) => n).join(', ')} (--list describes them)`);
  const args = compileArguments(command, verifyCommand(type, command), words);
  await connected(app, `${type} ${command}`);
  return args;
}

/** `celeriac inspect <command> [args...]`. */
export async function inspectCommand(app: Celeriac, command: string | undefined, words: string[], o: RemoteOptions): Promise<void> {
  const args = await prepare(app, 'inspect', command, words, o);
  if (!args) return;
  const replies = await app.control.inspect({ timeout: o.timeout, destination: o.destination, callback: o.json ? undefined : (r) => say(r, true) }).request(command!, args);
  const n = Object.keys(replies).length;
  if (n === 0) throw noReplies();
  if (o.json) process.stdout.write(JSON.stringify(replies) + '\n');
  else process.stdout.write(`\n${plural(n, 'node')} online.\n`);
}

/** `celeriac control <command> [args...]`: a broadcast that waits for replies. */
export async function controlCommand(app: Celeriac, command: string | undefined, words: string[], o: RemoteOptions): Promise<void> {
  const args = await prepare(app, 'control', command, words, o);
  if (!args) return;
  const replies = await app.control.broadcast(command!, args, { reply: true, timeout: o.timeout, destination: o.destination, callback: o.json ? undefined : (r) => say(r, true) });
  if (replies.length === 0) throw noReplies();
  if (o.json) process.stdout.write(JSON.stringify(replies) + '\n');
}

/** `celeriac status`: the nodes that answer a ping. */
export async function statusCommand(app: Celeriac, o: RemoteOptions): Promise<void> {
  await connected(app, 'status');
  const replies = await app.control.ping({ timeout: o.timeout, destination: o.destination, callback: o.json ? undefined : (r) => say(r, false) });
  const byNode = flattenReplies(replies, warnDuplicateNodenames);
  const n = Object.keys(byNode).length;
  if (n === 0) throw noReplies();
  if (o.json) process.stdout.write(JSON.stringify(byNode) + '\n');
  process.stdout.write(`\n${plural(n, 'node')} online.\n`);
}

/** The options the three commands share (Celery's "Remote Control Options"). */
export function remoteOptions(cmd: Command): Command {
  return cmd
    .option('-t, --timeout <seconds>', 'timeout in seconds waiting for reply', (v: string) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new CommandFailed(`-t/--timeout takes a number of seconds, got ${JSON.stringify(v)}`, 2);
      return n;
    }, 1)
    .option('-d, --destination <nodes>', 'comma separated list of destination node names', (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .option('-j, --json', 'use json as output format');
}
