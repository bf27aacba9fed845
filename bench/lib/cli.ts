// Command-line flags of `npm run bench -- ...`, parsed once into typed options.
import { ALL_SCENARIOS, ALL_SYSTEMS, type ScenarioId } from './plan.js';
import type { SystemId } from './child.js';

export interface BenchOptions {
  smoke: boolean;
  runs: number;
  scenarios: ScenarioId[];
  systems: SystemId[];
  redisUrl: string;
  brokerDb: number;
  resultsDb: number;
  ownRedisPort: number | null;
  amqpUrl: string | null;
  vhost: string;
  writeDocs: boolean;
  jsonOut: string | null;
  profile: boolean;
  /** Run Node children through tsx instead of compiled JavaScript. */
  tsx: boolean;
  /** Re-render the table, targets and docs of a saved run instead of running. */
  fromJson: string | null;
  /** S3 and S4 also run with task events on (-E). */
  events: boolean;
  /** S3 and S4 only at these concurrencies (default 1, 10, 100). */
  concurrencies: number[] | null;
  /** Tasks a Node system drains in S3 and S4 above c=1 (default 50,000): longer drains read the steady state. */
  drainTasks: number | null;
}

export const USAGE = `usage: npm run bench -- [options]
  --smoke              a few thousand tasks, 1 run, S1 S2 S3 S4 S6 S9 only (about 3 minutes)
  --runs N             runs per case (default 5; smoke 1)
  --only S3,S4         scenarios to run (S1..S9)
  --systems a,b        celeriac, bullmq, celery (Python), celery-node
  --redis-url URL      Redis server (default redis://127.0.0.1:6379)
  --dbs 14,15          broker and result databases the bench owns and FLUSHDBs (default 14,15)
  --own-redis PORT     start a private redis-server on PORT for the run (exact INFO counters)
  --amqp-url URL       RabbitMQ (default amqp://guest:guest@127.0.0.1:5672); --no-amqp to skip S8
  --vhost NAME         RabbitMQ vhost the bench creates and owns (default celeriac-bench)
  --no-docs            do not write docs/benchmarks.md and docs/benchmarks/ (smoke never writes them)
  --json PATH          also write the raw results there
  --profile            run Celeriac's timed children with --cpu-prof (profiles under the OS temp dir)
  --tsx                run Node children through tsx instead of compiling them to JavaScript first
  --from-json PATH     run nothing: print the table of a saved run (--json output) and write the docs from it
  -E, --events         S3 and S4 also run with task events on (Celeriac taskEvents, Python -E), rows suffixed ' -E'
  --concurrency 100    S3 and S4 only at these concurrencies (comma-separated; default 1,10,100)
  --drain-tasks N      tasks a Node system drains in S3 and S4 above c=1 (default 50000; more reads the steady state)`;

export function parseArgs(argv: string[]): BenchOptions {
  const o: BenchOptions = {
    smoke: false, runs: 5, scenarios: ALL_SCENARIOS, systems: ALL_SYSTEMS, redisUrl: 'redis://127.0.0.1:6379',
    brokerDb: 14, resultsDb: 15, ownRedisPort: null, amqpUrl: 'amqp://guest:guest@127.0.0.1:5672', vhost: 'celeriac-bench',
    writeDocs: true, jsonOut: null, profile: false, tsx: false, fromJson: null, events: false, concurrencies: null, drainTasks: null,
  };
  let runsGiven = false;
  let onlyGiven = false;
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value\n${USAGE}`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    switch (a) {
      case '--smoke': o.smoke = true; break;
      case '--runs': o.runs = Number(value(i++, a)); runsGiven = true; if (!(o.runs >= 1)) throw new Error('--runs must be ≥ 1'); break;
      case '--only': {
        const list = value(i++, a).split(',').map((s) => s.trim().toUpperCase());
        for (const s of list) if (!ALL_SCENARIOS.includes(s as ScenarioId)) throw new Error(`unknown scenario ${s}; use ${ALL_SCENARIOS.join(',')}`);
        o.scenarios = list as ScenarioId[];
        onlyGiven = true;
        break;
      }
      case '--systems': {
        const list = value(i++, a).split(',').map((s) => s.trim().toLowerCase());
        for (const s of list) if (!ALL_SYSTEMS.includes(s as SystemId)) throw new Error(`unknown system ${s}; use ${ALL_SYSTEMS.join(',')}`);
        o.systems = list as SystemId[];
        break;
      }
      case '--redis-url': o.redisUrl = value(i++, a); break;
      case '--dbs': {
        const [b, r] = value(i++, a).split(',').map(Number);
        if (!Number.isInteger(b) || !Number.isInteger(r) || b === r) throw new Error('--dbs wants two different database numbers, e.g. 14,15');
        o.brokerDb = b!; o.resultsDb = r!;
        break;
      }
      case '--own-redis': o.ownRedisPort = Number(value(i++, a)); break;
      case '--amqp-url': o.amqpUrl = value(i++, a); break;
      case '--no-amqp': o.amqpUrl = null; break;
      case '--vhost': o.vhost = value(i++, a); break;
      case '--no-docs': o.writeDocs = false; break;
      case '--json': o.jsonOut = value(i++, a); break;
      case '--profile': o.profile = true; break;
      case '--tsx': o.tsx = true; break;
      case '--from-json': o.fromJson = value(i++, a); break;
      case '--events': case '-E': o.events = true; break;
      case '--concurrency': {
        const list = value(i++, a).split(',').map(Number);
        if (list.some((c) => !Number.isInteger(c) || c < 1)) throw new Error('--concurrency wants whole numbers ≥ 1, e.g. 100 or 10,100');
        o.concurrencies = list;
        break;
      }
      case '--drain-tasks': {
        const n = Number(value(i++, a));
        if (!Number.isInteger(n) || n < 100) throw new Error('--drain-tasks wants a whole number ≥ 100, e.g. 300000');
        o.drainTasks = n;
        break;
      }
      case '--help': case '-h': console.log(USAGE); process.exit(0); break;
      default: throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (o.smoke) {
    if (!runsGiven) o.runs = 1;
    if (!onlyGiven) o.scenarios = ['S1', 'S2', 'S3', 'S4', 'S6', 'S9'];
    o.writeDocs = false;
  }
  return o;
}
