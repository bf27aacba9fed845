// The celeriac command line, modelled on celery's: global options before the subcommand.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { loadApp, resolveAppModule, UsageError } from './load-app.js';
import { noTasksWarning, unregisteredTaskWarning } from './warnings.js';
import { exitOnSignalsAsPid1, watchNpmParent } from './process.js';
import { createLogger, parseLogLevel, LOG_LEVELS, maskUrl } from '../app/log.js';
import type { Celeriac } from '../app/celeriac.js';
import { loads, dumps } from '../protocol/json.js';
import { progressLine } from './progress.js';
import { CommandFailed, controlCommand, inspectCommand, remoteOptions, statusCommand, type RemoteOptions } from './remote.js';
import { eventsCommand } from './events.js';
import { jsonArg } from './args.js';
import { registerBeatCommand, startBeat } from './beat.js';
import { registerDashboardCommand } from './dashboard.js';

interface GlobalOpts {
  app?: string;
  broker?: string;
  resultBackend?: string;
}

function positiveInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${flag} takes a whole number of at least 1, got ${JSON.stringify(v)}`);
    return n;
  };
}

function nonNegativeNumber(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${flag} takes a number of seconds, got ${JSON.stringify(v)}`);
    return n;
  };
}

function positiveNumber(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${flag} takes a number of seconds above 0, got ${JSON.stringify(v)}`);
    return n;
  };
}

/** Commands that connect, do one thing and exit. */
const ONE_SHOT_COMMANDS = new Set(['call', 'result', 'purge', 'inspect', 'control', 'status', 'events']);

async function setup(cmd: Command): Promise<Celeriac> {
  const g = cmd.optsWithGlobals() as GlobalOpts;
  // As celery does: -b / --result-backend win over the app's configuration.
  if (g.broker) process.env.CELERY_BROKER_URL = g.broker;
  if (g.resultBackend) process.env.CELERY_RESULT_BACKEND = g.resultBackend;
  const app = await loadApp(g.app);
  // Retrying on start-up is a worker's (broker_connection_retry_on_startup): call, result, purge and the remote-control commands
  // try once, so an unreachable broker is one line and a non-zero exit.
  if (ONE_SHOT_COMMANDS.has(cmd.name())) app.conf.broker_connection_retry_on_startup = false;
  return app;
}

export function buildProgram(): Command {
  const program = new Command('celeriac')
    .description('Celery for TypeScript: run workers, send tasks and read results over Redis, RabbitMQ or an embedded SQLite database.')
    .option('-A, --app <module>', 'the .ts/.js/.mjs module that exports your app (named `app` or default)')
    .option('-b, --broker <url>', 'broker URL (overrides broker_url and CELERY_BROKER_URL)')
    .option('--result-backend <url>', 'result backend URL (overrides result_backend and CELERY_RESULT_BACKEND)')
    .showHelpAfterError('(run celeriac --help for usage)')
    .exitOverride();

  program
    .command('worker')
    .description('start a worker')
    .option('-c, --concurrency <n>', 'how many tasks run at once', positiveInt('-c/--concurrency'))
    .option('-Q, --queues <list>', 'comma-separated queues to consume from (default: task_default_queue)')
    .addOption(new Option('-l, --loglevel <level>', 'logging level').choices([...LOG_LEVELS, 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL']).default('warning'))
    .option('-n, --hostname <name>', 'node name, e.g. w1@%h')
    .addOption(new Option('-P, --pool <pool>', 'execution pool: async (I/O-bound), thread (worker_threads) or process (child processes)').choices(['async', 'thread', 'threads', 'process', 'prefork']).default('async'))
    .option('--autoscale <max,min>', 'grow the pool up to max while work waits, shrink to min when idle', (v: string) => {
      const [max, min] = v.split(',').map((x) => Number(x.trim()));
      if (!Number.isInteger(max) || max! < 1 || (min !== undefined && (!Number.isInteger(min) || min < 1 || min > max!))) throw new InvalidArgumentError(`--autoscale takes max,min (e.g. 10,3), got ${JSON.stringify(v)}`);
      return [max!, min ?? max!] as [number, number];
    })
    .option('--statedb <file>', 'keep revoked task ids in this file across restarts')
    .option('--max-tasks-per-child <n>', 'replace a thread/process child after this many tasks', positiveInt('--max-tasks-per-child'))
    .option('--max-memory-per-child <KiB>', 'replace a child after a task leaves it above this many KiB', positiveInt('--max-memory-per-child'))
    .option('--without-control', 'do not listen for remote control commands (revoke, ping)')
    .option('-E, --task-events', 'send task events (worker_send_task_events): celery events and Flower see the tasks')
    .option('--without-heartbeat', 'send no worker-online/heartbeat/offline events')
    .option('--heartbeat-interval <seconds>', 'seconds between worker-heartbeat events (default 2)', positiveNumber('--heartbeat-interval'))
    .option('--without-mingle', "do not ask at start-up whether another node has this worker's name")
    .option('--without-gossip', 'accepted for Celery command lines: Celeriac workers never gossip')
    .option('--prefetch-multiplier <n>', 'worker_prefetch_multiplier', positiveInt('--prefetch-multiplier'))
    .option('--soft-shutdown-timeout <seconds>', 'worker_soft_shutdown_timeout', nonNegativeNumber('--soft-shutdown-timeout'))
    .option('-B, --beat', 'also run beat, the periodic task scheduler, in this process')
    .option('--max-interval <seconds>', "with -B: beat's longest sleep between ticks", nonNegativeNumber('--max-interval'))
    .action(async (opts, cmd: Command) => {
      const app = await setup(cmd);
      const g = cmd.optsWithGlobals() as GlobalOpts;
      const level = parseLogLevel(opts.loglevel);
      app.logger = createLogger(level);
      const hostname = opts.hostname ? String(opts.hostname).replace('%h', (await import('node:os')).hostname()) : undefined;
      const worker = app.worker({
        concurrency: opts.concurrency,
        queues: opts.queues ? String(opts.queues).split(',').map((q: string) => q.trim()).filter(Boolean) : undefined,
        hostname,
        logger: app.logger,
        prefetchMultiplier: opts.prefetchMultiplier,
        pool: ({ threads: 'thread', prefork: 'process' } as Record<string, string>)[opts.pool] ?? opts.pool,
        module: g.app ? resolveAppModule(g.app) : undefined,
        autoscale: opts.autoscale,
        statedb: opts.statedb,
        softShutdownTimeout: opts.softShutdownTimeout,
        maxTasksPerChild: opts.maxTasksPerChild,
        maxMemoryPerChild: opts.maxMemoryPerChild,
        remoteControl: opts.withoutControl ? false : undefined,
        taskEvents: opts.taskEvents ? true : undefined,
        heartbeat: opts.withoutHeartbeat ? false : undefined,
        heartbeatInterval: opts.heartbeatInterval,
        mingle: opts.withoutMingle ? false : undefined,
      });
      process.stdout.write(worker.banner() + '\n');
      let beat: Awaited<ReturnType<typeof startBeat>> | undefined; // -B: the beat beside this worker
      // Exit codes: 0 after a warm shutdown, 1 after a cold one (second signal or SIGQUIT) or a failure.
      let signals = 0;
      let exitCode = 0;
      const stop = (cold: boolean) => {
        signals++;
        const isCold = cold || signals > 1;
        if (isCold) exitCode = 1;
        if (signals === 1) {
          Promise.all([worker.close({ cold: isCold }), beat?.close()]).then(
            () => app.close().then(() => process.exit(exitCode)),
            () => process.exit(1),
          );
        } else {
          process.stderr.write('worker: Cold shutdown (second signal)\n');
          void worker.close({ cold: true });
          setTimeout(() => process.exit(1), 10_000 + (opts.softShutdownTimeout ?? 0) * 1000).unref();
        }
      };
      process.on('SIGTERM', () => stop(false));
      process.on('SIGINT', () => stop(false));
      process.on('SIGQUIT', () => stop(true));
      worker.on('shutdownRequested', () => stop(false));
      // The consumer gave up reconnecting (broker_connection_max_retries): the worker has stopped and
      // logged why in one line; exit non-zero so a supervisor or container probe sees it.
      worker.on('workerFailed', () => {
        setTimeout(() => process.exit(1), 10_000).unref(); // closing connections to a dead broker must not hold the exit
        void app.close().finally(() => process.exit(1));
      });
      watchNpmParent(app, () => stop(false));
      // A signal during start-up (e.g. while retrying the broker) ends the start: the shutdown decides the exit.
      await worker.start().catch((err) => (signals > 0 ? new Promise<never>(() => undefined) : Promise.reject(err)));
      if (opts.beat) beat = await startBeat(app, { maxInterval: opts.maxInterval || undefined, logger: app.logger });
      // After the start, so a worker that cannot start prints its one error line and nothing else.
      const empty = noTasksWarning(app, g.app);
      if (empty) app.logger.warning(empty);
      await new Promise(() => undefined); // run until a signal
    });

  registerBeatCommand(program, setup);
  registerDashboardCommand(program, setup);

  program
    .command('call <task>')
    .description('send a task by name; prints the task id')
    .option('-a, --args <json>', 'positional arguments as a JSON list', jsonArg('--args', Array.isArray, 'list, e.g. [2, 3]'), [])
    .option('-k, --kwargs <json>', 'keyword arguments as a JSON object', jsonArg('--kwargs', (v) => !!v && typeof v === 'object' && !Array.isArray(v), "object, e.g. '{\"y\": 3}'"), {})
    .option('--countdown <seconds>', 'run no earlier than this many seconds from now', nonNegativeNumber('--countdown'))
    .option('--eta <iso>', 'run no earlier than this ISO-8601 time')
    .option('--expires <seconds>', 'discard the task if not started within this many seconds', nonNegativeNumber('--expires'))
    .option('-Q, --queue <name>', 'queue to send to')
    .option('--priority <n>', 'message priority', (v) => Number(v))
    .option('--wait', 'wait for the result and print it (the id stays the last line)')
    .option('--timeout <seconds>', 'with --wait: give up after this many seconds', nonNegativeNumber('--timeout'))
    .action(async (task: string, opts, cmd: Command) => {
      const app = await setup(cmd);
      const warning = unregisteredTaskWarning(app, task, (cmd.optsWithGlobals() as GlobalOpts).app);
      if (warning) process.stderr.write(warning + '\n');
      try {
        const r = await app.sendTask(task, opts.args, opts.kwargs, {
          countdown: opts.countdown, eta: opts.eta, expires: opts.expires, queue: opts.queue, priority: opts.priority,
        });
        if (opts.wait) {
          const stopProgress = progressLine(`waiting for ${task}[${r.id}]`);
          try {
            const value = await r.get({ timeout: opts.timeout != null ? opts.timeout * 1000 : undefined });
            stopProgress();
            process.stdout.write(dumps(value) + '\n');
          } finally {
            stopProgress();
          }
        }
        process.stdout.write(r.id + '\n');
      } finally {
        await app.close();
      }
    });

  program
    .command('result <task_id>')
    .description('wait for a task and print its result')
    .option('--timeout <seconds>', 'give up after this many seconds', nonNegativeNumber('--timeout'))
    .option('--traceback', 'print the traceback of a failed task instead')
    .action(async (id: string, opts, cmd: Command) => {
      const app = await setup(cmd);
      try {
        const r = app.AsyncResult(id);
        if (opts.traceback) {
          await r.get({ timeout: opts.timeout != null ? opts.timeout * 1000 : undefined, propagate: false });
          process.stdout.write(String((await r.traceback()) ?? '') + '\n');
          return;
        }
        const value = await r.get({ timeout: opts.timeout != null ? opts.timeout * 1000 : undefined });
        process.stdout.write((typeof value === 'string' ? value : dumps(value)) + '\n');
      } finally {
        await app.close();
      }
    });

  program
    .command('purge')
    .description('remove all waiting messages from the task queues')
    .option('-f, --force', "don't ask for confirmation")
    .option('-Q, --queues <list>', 'comma-separated queues to purge (default: task_default_queue)')
    .action(async (opts, cmd: Command) => {
      const app = await setup(cmd);
      try {
        const queues: string[] = opts.queues ? String(opts.queues).split(',').map((q: string) => q.trim()).filter(Boolean) : [app.conf.task_default_queue];
        if (!opts.force) {
          if (!process.stdin.isTTY) throw new UsageError('purge removes messages for good: pass -f to confirm (no terminal to ask on)');
          const rl = (await import('node:readline/promises')).createInterface({ input: process.stdin, output: process.stdout });
          const answer = await rl.question(`You're about to remove all waiting messages from ${queues.length} queue(s) (${queues.join(', ')}). Are you sure? [y/N] `);
          rl.close();
          if (!/^y(es)?$/i.test(answer.trim())) {
            process.stdout.write('Nothing purged.\n');
            return;
          }
        }
        const broker = await app.broker();
        let total = 0;
        for (const [i, q] of queues.entries()) {
          const stopProgress = progressLine(`purging ${q} (${i + 1}/${queues.length})`);
          total += await broker.purge(q);
          stopProgress();
        }
        process.stdout.write(total ? `Purged ${total} message${total === 1 ? '' : 's'} from ${queues.length} known task queue${queues.length === 1 ? '' : 's'}.\n` : `No messages purged from ${queues.length} queue${queues.length === 1 ? '' : 's'}.\n`);
      } finally {
        await app.close();
      }
    });

  const remote = async (cmd: Command, run: (app: Celeriac) => Promise<void>) => {
    const app = await setup(cmd);
    try {
      await run(app);
    } finally {
      await app.close();
    }
  };

  remoteOptions(program.command('inspect [command] [args...]'))
    .description('inspect the workers: ping, active, reserved, scheduled, registered, stats, revoked, query_task, active_queues, conf, report (--list)')
    .option('--list', 'list the inspect commands and exit')
    .action((command: string, args: string[], opts: RemoteOptions, cmd: Command) => remote(cmd, (app) => inspectCommand(app, command, args, opts)));

  remoteOptions(program.command('control [command] [args...]'))
    .description('send a control command to the workers and print their replies: revoke, rate_limit, add_consumer, pool_grow, shutdown, … (--list)')
    .option('--list', 'list the control commands and exit')
    .action((command: string, args: string[], opts: RemoteOptions, cmd: Command) => remote(cmd, (app) => controlCommand(app, command, args, opts)));

  remoteOptions(program.command('status'))
    .description('show the workers that are online (answer a ping)')
    .action((opts: RemoteOptions, cmd: Command) => remote(cmd, (app) => statusCommand(app, opts)));

  program
    .command('events')
    .description('a live view of workers and tasks from their events (like celery events); --dump prints each event')
    .option('-d, --dump', 'print one line per event, as celery events --dump')
    .option('-j, --json', 'JSON: one event per line with --dump, else one snapshot of the view per refresh')
    .option('-F, --frequency <seconds>', 'seconds between refreshes of the view', positiveNumber('-F/--frequency'), 1)
    .option('--duration <seconds>', 'stop after this many seconds (default: until Ctrl+C)', positiveNumber('--duration'))
    .action((opts: { dump?: boolean; json?: boolean; frequency: number; duration?: number }, cmd: Command) => remote(cmd, (app) => eventsCommand(app, opts)));

  return program;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  exitOnSignalsAsPid1();
  // Output piped into `head` and the like: a closed pipe ends the command quietly, as it does for Python's.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
  });
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed the message; help and version exit 0.
      process.exit(err.exitCode === 0 ? 0 : 2);
    }
    const e = err as Error;
    if (e instanceof CommandFailed) {
      // Celery's CeleryCommandException: the message alone, and its exit code (69: no node replied).
      process.stderr.write(`Error: ${maskUrl(e.message)}\n`);
      process.exit(e.exitCode);
    }
    const text = maskUrl(e.message || String(e)).split('\n')[0];
    const named = e.name && e.name !== 'Error' && !(e instanceof UsageError);
    process.stderr.write(`Error: ${named ? `${e.name}: ` : ''}${text}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  }
}

const invokedDirectly = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop()!);
if (invokedDirectly) void main();
