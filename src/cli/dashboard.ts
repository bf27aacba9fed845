// `celeriac dashboard`: the web dashboard (workers, tasks with their history, queues, charts, Flower's
// API and Prometheus /metrics) until a signal. See docs/dashboard.md.
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { Celeriac } from '../app/celeriac.js';
import { createLogger, parseLogLevel, LOG_LEVELS, maskUrl } from '../app/log.js';
import { resolveOptions, DashboardUsageError, type DashboardOptions } from '../dashboard/options.js';
import { dashboard } from '../dashboard/index.js';
import { CommandFailed } from './remote.js';

type Setup = (cmd: Command) => Promise<Celeriac>;

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`--port takes a port number from 0 to 65535, got ${JSON.stringify(v)}`);
  return n;
}

function hours(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`--retention takes a number of hours above 0, got ${JSON.stringify(v)}`);
  return n;
}

export function registerDashboardCommand(program: Command, setup: Setup): void {
  program
    .command('dashboard')
    .description('serve the web dashboard: workers, tasks and their history, queues, charts, Flower\'s API and /metrics')
    .option('--port <n>', 'TCP port (default 5555)', port)
    .option('--address <host>', 'address to bind (default 127.0.0.1; anything else needs --basic-auth or --insecure)')
    .option('--basic-auth <user:password>', 'require HTTP basic auth with these credentials')
    .option('--db <file>', 'the history file (default: the dashboard_db setting, .celeriac/dashboard.sqlite)')
    .option('--retention <hours>', 'hours of task history kept (default 168)', hours)
    .option('--insecure', 'allow a non-loopback --address without --basic-auth')
    .addOption(new Option('-l, --loglevel <level>', 'logging level').choices([...LOG_LEVELS, 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL']).default('warning'))
    .action(async (opts: DashboardOptions & { loglevel: string }, cmd: Command) => {
      const options: DashboardOptions = { port: opts.port, address: opts.address, basicAuth: opts.basicAuth, db: opts.db, retention: opts.retention, insecure: opts.insecure };
      try {
        resolveOptions(options, ''); // refuse an exposed address before connecting to anything
      } catch (err) {
        if (err instanceof DashboardUsageError) throw new CommandFailed(err.message, err.exitCode);
        throw err;
      }
      const app = await setup(cmd);
      app.logger = createLogger(parseLogLevel(opts.loglevel));
      const d = await dashboard(app, options);
      process.stdout.write(`celeriac dashboard: ${d.url} (broker ${maskUrl(app.brokerUrl)}, history ${options.db ?? app.conf.dashboard_db})\n`);
      let stopping = false;
      const stop = () => {
        if (stopping) process.exit(1);
        stopping = true;
        d.close().then(() => app.close()).then(() => process.exit(0), () => process.exit(1));
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      await new Promise(() => undefined); // run until a signal
    });
}
