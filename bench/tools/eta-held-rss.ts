// The memory a worker spends on held ETA messages: publish N tasks with a far countdown, run a -c 10
// worker in its own process, and read its RSS (and V8 heap) once it holds them all, against the same
// worker holding none. Not part of `npm run bench`; run it alone on a quiet machine:
//   node --import tsx bench/tools/eta-held-rss.ts --broker redis://127.0.0.1:6379/14 --count 100000
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Celeriac } from '../../src/index.js';

const { values } = parseArgs({
  options: {
    broker: { type: 'string', default: 'redis://127.0.0.1:6379/14' },
    count: { type: 'string', default: '100000' },
    queue: { type: 'string', default: `eta-rss-${process.pid}` },
    child: { type: 'boolean', default: false },
  },
});
const count = Number(values.count);

interface Sample { held: number; rss: number; heap: number }

function sample(worker: unknown): Sample {
  global.gc?.();
  const m = process.memoryUsage();
  return { held: (worker as { heldForEta: number }).heldForEta, rss: m.rss, heap: m.heapUsed };
}

async function child(): Promise<void> {
  const app = new Celeriac('eta-rss', { broker: values.broker, backend: 'memory://', task_default_queue: values.queue });
  app.task('eta.noop', () => null);
  const worker = app.worker({ concurrency: 10, loglevel: 'critical', remoteControl: false });
  await worker.start();
  const report = () => process.stdout.write(`${JSON.stringify(sample(worker))}\n`);
  report();
  setInterval(report, 1000).unref();
  process.stdin.on('data', () => undefined);
  process.stdin.on('end', () => void worker.close().then(() => app.close()).then(() => process.exit(0)));
}

async function parent(): Promise<void> {
  const app = new Celeriac('eta-rss', { broker: values.broker, backend: 'memory://', task_default_queue: values.queue });
  const noop = app.task('eta.noop', () => null);
  const broker = await app.broker();
  await broker.purge(values.queue);
  const w = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--child', '--broker', values.broker!, '--queue', values.queue!], { stdio: ['pipe', 'pipe', 'inherit'] });
  const samples: Sample[] = [];
  let buf = '';
  w.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      samples.push(JSON.parse(buf.slice(0, i)) as Sample);
      buf = buf.slice(i + 1);
    }
  });
  while (samples.length === 0) await new Promise((r) => setTimeout(r, 100));
  const idle = samples[samples.length - 1]!;
  const started = Date.now();
  for (let i = 0; i < count; i += 10_000) {
    await noop.applyBulk(Array.from({ length: Math.min(10_000, count - i) }, () => ({ args: [], options: { countdown: 3600 } })));
  }
  while ((samples[samples.length - 1]?.held ?? 0) < count) {
    if (Date.now() - started > 15 * 60_000) throw new Error(`the worker holds ${samples[samples.length - 1]?.held} of ${count} after 15 minutes`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const tookS = (Date.now() - started) / 1000;
  await new Promise((r) => setTimeout(r, 3000)); // let the last fetches settle
  const full = samples[samples.length - 1]!;
  const mb = (b: number) => (b / 2 ** 20).toFixed(1);
  console.log(`broker ${broker.displayUrl}: ${full.held} ETA messages held after ${tookS.toFixed(1)} s`);
  console.log(`RSS ${mb(idle.rss)} MB idle -> ${mb(full.rss)} MB holding them (${((full.rss - idle.rss) / full.held).toFixed(0)} bytes per held message)`);
  console.log(`V8 heap used ${mb(idle.heap)} MB -> ${mb(full.heap)} MB (${((full.heap - idle.heap) / full.held).toFixed(0)} bytes per held message)`);
  w.stdin.end();
  await new Promise((r) => w.once('exit', r));
  await broker.purge(values.queue);
  await app.close();
}

await (values.child ? child() : parent());
