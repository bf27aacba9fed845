// `celeriac beat`: run the scheduler (Celery's `celery beat`), and `beat list|add|remove` to change the
// schedule every beat process runs, at runtime.
import { Command, InvalidArgumentError, Option } from 'commander';
import type { Celeriac } from '../app/celeriac.js';
import { createLogger, LOG_LEVELS, maskUrl, parseLogLevel, type Logger } from '../app/log.js';
import { dumps } from '../protocol/json.js';
import { Beat } from '../beat/beat.js';
import { crontab } from '../beat/crontab.js';
import { solar, type SolarEvent } from '../beat/solar.js';
import type { BeatEntryInput } from '../beat/entry.js';
import type { ScheduleInput } from '../beat/schedule.js';
import { UsageError } from './load-app.js';
import { jsonArg } from './args.js';

type Setup = (cmd: Command) => Promise<Celeriac>;

function positiveSeconds(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${flag} takes a number of seconds above 0, got ${JSON.stringify(v)}`);
    return n;
  };
}

const isObject = (v: unknown) => !!v && typeof v === 'object' && !Array.isArray(v);

/** Start a beat beside whatever else runs in this process (`worker -B`, `celeriac beat`). */
export async function startBeat(app: Celeriac, opts: { maxInterval?: number; logger: Logger }): Promise<Beat> {
  const beat = new Beat(app, { maxInterval: opts.maxInterval, logger: opts.logger });
  await beat.start();
  return beat;
}

function banner(app: Celeriac, beat: Beat): string {
  return [
    'celeriac beat is starting.',
    `LocalTime -> ${new Date().toISOString()}`,
    'Configuration ->',
    `    . broker -> ${maskUrl(app.brokerUrl)}`,
    `    . store -> ${beat.storeDescription}`,
    `    . timezone -> ${beat.timezone}`,
    `    . maxinterval -> ${(beat.tickMs / 1000).toFixed(2)} seconds`,
    `    . lease -> ${beat.leaseMs / 1000} seconds (another beat takes over within ${(beat.leaseMs * 1.2) / 1000} seconds)`,
    `    . id -> ${beat.id}`,
    '',
  ].join('\n');
}

function scheduleFrom(opts: { every?: number; crontab?: string; solar?: string }): ScheduleInput {
  const given = [opts.every !== undefined, opts.crontab !== undefined, opts.solar !== undefined].filter(Boolean).length;
  if (given !== 1) throw new UsageError('beat add needs exactly one of --every <seconds>, --crontab "<m h dom mon dow>", --solar <event,lat,lon>');
  if (opts.every !== undefined) return opts.every;
  try {
    if (opts.crontab !== undefined) return crontab(opts.crontab);
    const [event, lat, lon] = opts.solar!.split(',').map((s) => s.trim());
    if (!event || !lat || !lon) throw new Error(`--solar takes event,lat,lon (e.g. sunrise,51.5,-0.12), got ${JSON.stringify(opts.solar)}`);
    return solar(event as SolarEvent, Number(lat), Number(lon));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function registerBeatCommand(program: Command, setup: Setup): void {
  const beat = program
    .command('beat')
    .description('run the periodic task scheduler (any number may run: one sends, the others stand by); list|add|remove change its schedule')
    .option('--max-interval <seconds>', 'the longest sleep between ticks (beat_max_loop_interval)', positiveSeconds('--max-interval'))
    .addOption(new Option('-l, --loglevel <level>', 'logging level').choices([...LOG_LEVELS, 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL']).default('warning'))
    .action(async (opts, cmd: Command) => {
      const app = await setup(cmd);
      app.logger = createLogger(parseLogLevel(opts.loglevel));
      const service = new Beat(app, { maxInterval: opts.maxInterval, logger: app.logger });
      await service.prepare();
      process.stdout.write(banner(app, service));
      let stopping = false;
      const stop = () => {
        if (stopping) process.exit(1);
        stopping = true;
        // The lease is given up, so a standby takes over at its next tick instead of after the lease lapses.
        service.close().then(() => app.close()).then(() => process.exit(0), () => process.exit(1));
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      await service.start();
      await new Promise(() => undefined); // run until a signal
    });

  beat
    .command('list')
    .description('print the schedule: every entry, its next and last run, and which beat is the leader')
    .option('--json', 'print JSON instead of text')
    .action(async (opts, cmd: Command) => {
      const app = await setup(cmd);
      try {
        const [entries, leader] = await Promise.all([app.beat.list(), app.beat.leader()]);
        if (opts.json) {
          process.stdout.write(dumps({ leader, entries: entries.map((e) => ({ ...e, lastRunAt: e.lastRunAt.toISOString(), nextRunAt: e.nextRunAt?.toISOString() ?? null })) }) + '\n');
          return;
        }
        process.stdout.write(`leader: ${leader ? `${leader.id} (lease epoch ${leader.epoch}, ${(leader.expiresInMs / 1000).toFixed(1)} s left)` : 'none (no beat process holds the lease)'}\n`);
        for (const e of entries) {
          process.stdout.write(`${e.name}: ${e.task}${e.args.length || Object.keys(e.kwargs).length ? ` args=${dumps(e.args)} kwargs=${dumps(e.kwargs)}` : ''} ${e.schedule}` +
            ` next=${e.nextRunAt?.toISOString() ?? 'never'} last=${e.lastRunAt.toISOString()} runs=${e.totalRunCount} (${e.source})\n`);
        }
        if (entries.length === 0) process.stdout.write('(no entries)\n');
      } finally {
        await app.close();
      }
    });

  beat
    .command('add <name>')
    .description('add or replace an entry; every beat process sees it at its next tick')
    .requiredOption('-t, --task <task>', 'the task name, e.g. tasks.add')
    .option('--every <seconds>', 'run every this many seconds', positiveSeconds('--every'))
    .option('--crontab <expr>', 'run on a crontab: "minute hour day-of-month month day-of-week", e.g. "*/15 9-17 * * mon-fri"')
    .option('--solar <event,lat,lon>', 'run at a solar event, e.g. sunrise,51.5,-0.12')
    .option('--relative', 'with --every: round run times down to the interval\'s unit (Celery\'s relative)')
    .option('-a, --args <json>', 'positional arguments as a JSON list', jsonArg('--args', Array.isArray, 'list, e.g. [2, 3]'))
    .option('-k, --kwargs <json>', 'keyword arguments as a JSON object', jsonArg('--kwargs', isObject, "object, e.g. '{\"y\": 3}'"))
    .option('-Q, --queue <name>', 'queue to send to')
    .option('--options <json>', 'apply_async options as a JSON object, e.g. \'{"expires": 60, "priority": 5}\'', jsonArg('--options', isObject, 'object'))
    .action(async (name: string, opts, cmd: Command) => {
      const entry: BeatEntryInput = {
        task: opts.task,
        schedule: scheduleFrom(opts),
        args: opts.args,
        kwargs: opts.kwargs,
        options: { ...(opts.options ?? {}), ...(opts.queue ? { queue: opts.queue } : {}) },
        relative: opts.relative === true,
      };
      const app = await setup(cmd);
      try {
        await app.beat.upsert(name, entry);
        process.stdout.write(`${name}: saved\n`);
      } finally {
        await app.close();
      }
    });

  beat
    .command('remove <name>')
    .description('remove an entry; every beat process drops it at its next tick')
    .action(async (name: string, _opts, cmd: Command) => {
      const app = await setup(cmd);
      try {
        const removed = await app.beat.remove(name);
        process.stdout.write(removed ? `${name}: removed\n` : `${name}: no such entry\n`);
        if (!removed) process.exitCode = 1;
      } finally {
        await app.close();
      }
    });
}
