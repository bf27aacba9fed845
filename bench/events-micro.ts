// Micro-benchmark of task events: what a -E worker adds per task (task-received, task-started and
// task-succeeded built, batched and published on Redis), without the task path around it.
//   node --import tsx bench/events-micro.ts [--redis redis://127.0.0.1:6379/0] [--tasks 100000] [--per-tick 100] [--rounds 5]
// Each round sends the events of `--tasks` tasks, `--per-tick` tasks per turn of the event loop (a
// worker at c=100 finishes about that many per turn), waits until all are published, and prints the
// process's CPU time per task (user + system, so the socket writes are in it) and the bytes per task.
import { createBroker } from '../src/brokers/redis/index.js';
import { createSettings } from '../src/app/settings.js';
import { createLogger } from '../src/app/log.js';
import { EventDispatcher } from '../src/events/dispatcher.js';
import { receivedFields, resultRepr } from '../src/events/task-fields.js';
import type { TaskRequest } from '../src/protocol/message.js';
import type { Broker } from '../src/brokers/types.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const REDIS = arg('--redis', 'redis://127.0.0.1:6379/0');
const TASKS = Number(arg('--tasks', '100000'));
const PER_TICK = Number(arg('--per-tick', '100'));
const ROUNDS = Number(arg('--rounds', '5'));

const logger = createLogger('warning');
const broker = createBroker(REDIS, { settings: createSettings({}), logger }) as Broker & Required<Pick<Broker, 'publishEvent'>>;
const d = new EventDispatcher(broker, { hostname: 'celery@bench-host', logger, groups: ['task'] });

// What a bench task's request carries (protocol 2, no ETA, no parent).
function request(i: number): TaskRequest {
  const id = `${(i + 0x10000000).toString(16)}-4b1c-4d4e-9f00-${(1e11 + i).toString().padStart(12, '0')}`;
  return { id, task: 'bench.noop', argsrepr: '(1, 2)', kwargsrepr: '{}', rootId: id, parentId: null, retries: 0, eta: null, expires: null } as unknown as TaskRequest;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

async function round(): Promise<{ cpuUs: number; sysUs: number; wallMs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < TASKS; i += PER_TICK) {
    for (let j = i; j < i + PER_TICK && j < TASKS; j++) {
      const f = request(j);
      d.taskReceived(receivedFields(f));
      d.taskStarted(f.id);
      d.taskSucceeded(f.id, resultRepr(null), 0.000012);
    }
    await tick();
  }
  await d.flush();
  const cpu = process.cpuUsage(cpu0);
  return { cpuUs: (cpu.user + cpu.system) / TASKS, sysUs: cpu.system / TASKS, wallMs: performance.now() - t0 };
}

async function baselineRound(): Promise<number> {
  // The loop alone (requests built, ticks taken), to subtract.
  const cpu0 = process.cpuUsage();
  let n = 0;
  for (let i = 0; i < TASKS; i += PER_TICK) {
    for (let j = i; j < i + PER_TICK && j < TASKS; j++) n += request(j).id.length;
    await tick();
  }
  const cpu = process.cpuUsage(cpu0);
  if (n < 0) console.log(n);
  return (cpu.user + cpu.system) / TASKS;
}

const redisInfo = async (): Promise<number> => {
  const { Redis } = await import('ioredis');
  const r = new Redis(REDIS);
  const info = await r.info('stats');
  r.disconnect();
  return Number(/total_net_input_bytes:(\d+)/.exec(info)?.[1] ?? 0);
};

const { PerformanceObserver } = await import('node:perf_hooks');
const v8 = await import('node:v8');
let scavenges = 0;
new PerformanceObserver((l) => { for (const e of l.getEntries()) if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === 1) scavenges++; }).observe({ entryTypes: ['gc'] });
await round(); // warm-up
const sc0 = scavenges;
const rows: number[] = [];
const sys: number[] = [];
const base: number[] = [];
const in0 = await redisInfo();
for (let r = 0; r < ROUNDS; r++) {
  base.push(await baselineRound());
  const { cpuUs, sysUs } = await round();
  rows.push(cpuUs);
  sys.push(sysUs);
}
const in1 = await redisInfo();
const newSpace = v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')!;
console.log(`scavenges: ${scavenges - sc0} over ${ROUNDS} rounds (events and loop alone); new space ${(newSpace.space_size / 1e6).toFixed(1)} MB → ~${Math.round(((scavenges - sc0) * newSpace.space_size) / 2 / (TASKS * ROUNDS))} B allocated per task at most`);
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
console.log(`events of ${TASKS} tasks × ${ROUNDS} rounds, ${PER_TICK} tasks per tick: ${med(rows).toFixed(2)} µs CPU per task (min ${Math.min(...rows).toFixed(2)}, max ${Math.max(...rows).toFixed(2)}; system ${med(sys).toFixed(2)}); loop alone ${med(base).toFixed(2)} µs; ~${Math.round((in1 - in0) / (TASKS * ROUNDS))} B/task into Redis`);
await d.close();
await broker.close();
