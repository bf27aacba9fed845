// The remote-control commands the CLI offers (Celery's Panel.meta): each one's type, positional
// arguments and help, and how `celery inspect` / `celery control` turn command-line words into arguments.
import { UsageError } from './load-app.js';

type ArgType = 'str' | 'int' | 'float' | 'bool';

export interface PanelCommand {
  type: 'inspect' | 'control';
  /** Positional arguments in order: [name, type]. */
  args?: [string, ArgType][];
  /** The argument that takes every remaining word (a list). */
  variadic?: string;
  signature?: string;
  help: string;
}

export const PANEL: Readonly<Record<string, PanelCommand>> = {
  active: { type: 'inspect', help: 'List of tasks currently being executed.' },
  active_queues: { type: 'inspect', help: 'List the task queues a worker is currently consuming from.' },
  clock: { type: 'inspect', help: 'Get current logical clock value.' },
  conf: { type: 'inspect', args: [['with_defaults', 'bool']], signature: '[include_defaults=False]', help: 'List configuration.' },
  ping: { type: 'inspect', help: 'Ping worker(s).' },
  query_task: { type: 'inspect', variadic: 'ids', signature: '[id1 [id2 [... [idN]]]]', help: 'Query for task information by id.' },
  registered: { type: 'inspect', variadic: 'taskinfoitems', signature: '[attr1 [attr2 [... [attrN]]]]', help: 'List of registered tasks.' },
  report: { type: 'inspect', help: 'Information about Celery installation for bug reports.' },
  reserved: { type: 'inspect', help: 'List of currently reserved tasks, not including scheduled/active.' },
  revoked: { type: 'inspect', help: 'List of revoked task-ids.' },
  scheduled: { type: 'inspect', help: 'List of currently scheduled ETA/countdown tasks.' },
  stats: { type: 'inspect', help: 'Request worker statistics/information.' },
  add_consumer: {
    type: 'control', args: [['queue', 'str'], ['exchange', 'str'], ['exchange_type', 'str'], ['routing_key', 'str']],
    signature: '<queue> [exchange [type [routing_key]]]', help: 'Tell worker(s) to consume from task queue by name.',
  },
  autoscale: { type: 'control', args: [['max', 'int'], ['min', 'int']], signature: '[max [min]]', help: 'Modify autoscale settings.' },
  cancel_consumer: { type: 'control', args: [['queue', 'str']], signature: '<queue>', help: 'Tell worker(s) to stop consuming from task queue by name.' },
  disable_events: { type: 'control', help: 'Tell worker(s) to stop sending task-related events.' },
  enable_events: { type: 'control', help: 'Tell worker(s) to send task-related events.' },
  heartbeat: { type: 'control', help: 'Tell worker(s) to send event heartbeat immediately.' },
  pool_grow: { type: 'control', args: [['n', 'int']], signature: '[N=1]', help: 'Grow pool by n processes/threads.' },
  pool_shrink: { type: 'control', args: [['n', 'int']], signature: '[N=1]', help: 'Shrink pool by n processes/threads.' },
  rate_limit: {
    type: 'control', args: [['task_name', 'str'], ['rate_limit', 'str']], signature: '<task_name> <rate_limit (e.g., 5/s | 5/m | 5/h)>',
    help: 'Tell worker(s) to modify the rate limit for a task by type.',
  },
  revoke: { type: 'control', variadic: 'task_id', signature: '[id1 [id2 [... [idN]]]]', help: 'Revoke task by task id (or list of ids).' },
  shutdown: { type: 'control', help: 'Shutdown worker(s).' },
  terminate: { type: 'control', args: [['signal', 'str']], variadic: 'task_id', signature: '<signal> [id1 [id2 [... [idN]]]]', help: 'Terminate task by task id (or list of ids).' },
  time_limit: {
    type: 'control', args: [['task_name', 'str'], ['soft', 'float'], ['hard', 'float']], signature: '<task_name> <soft_secs> [hard_secs]',
    help: 'Tell worker(s) to modify the time limit for task by type.',
  },
};

/** The commands of one type, sorted (for --list and the error naming the choices). */
export function commandsOf(type: 'inspect' | 'control'): [string, PanelCommand][] {
  return Object.entries(PANEL).filter(([, c]) => c.type === type).sort(([a], [b]) => a.localeCompare(b));
}

/** `--list`: each command with its signature and help, as Celery prints them. */
export function listing(type: 'inspect' | 'control'): string {
  const rows = commandsOf(type).map(([name, c]) => [c.signature ? `${name} ${c.signature}` : name, c.help] as const);
  const width = Math.min(40, Math.max(...rows.map(([n]) => n.length)));
  return `${type === 'inspect' ? 'Inspect' : 'Control'} Commands:\n` + rows.map(([n, h]) => `  ${n.padEnd(width)}  ${h}`).join('\n') + '\n';
}

/** Celery's _verify_command_name: a usage error listing the choices. */
export function verifyCommand(type: 'inspect' | 'control', command: string): PanelCommand {
  const c = Object.hasOwn(PANEL, command) ? PANEL[command]! : undefined;
  if (!c || c.type !== type) {
    throw new UsageError(`Command ${command} not recognized. Available ${type} commands: ${commandsOf(type).map(([n]) => n).join(', ')}`);
  }
  return c;
}

function convert(word: string, type: ArgType, name: string): unknown {
  if (type === 'str') return word;
  if (type === 'bool') return /^(1|true|yes|on|y|t)$/i.test(word);
  const n = Number(word);
  if (!Number.isFinite(n) || (type === 'int' && !Number.isInteger(n))) throw new UsageError(`${name} must be ${type === 'int' ? 'a whole number' : 'a number'}, got ${JSON.stringify(word)}`);
  return n;
}

/** Celery's _compile_arguments: positional words to the command's keyword arguments. */
export function compileArguments(command: string, c: PanelCommand, words: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const args = c.args ?? [];
  let i = 0;
  for (; i < words.length && i < args.length; i++) out[args[i]![0]] = convert(words[i]!, args[i]![1], args[i]![0]);
  const rest = words.slice(i);
  if (c.variadic) out[c.variadic] = rest;
  else if (rest.length > 0) throw new UsageError(`Command ${JSON.stringify(command)} takes arguments: ${c.signature ?? '(none)'}`);
  return out;
}
