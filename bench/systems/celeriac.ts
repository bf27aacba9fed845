// Celeriac child, written against docs/API-CONTRACT.md. Counted on the worker's taskPostrun event,
// which fires after the message was acknowledged and (when results are on) the result stored.
import { createRequire } from 'node:module';
import { Celeriac, chord, group } from '../../src/index.js';
import {
  parseSpec, emitResult, failAndExit, CompletionClock, timePublishing, timeRoundTrips,
  exitOnSignal, sleep, READY_LINE, type ChildSpec,
} from '../lib/spec.js';

const version = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

function makeApp(spec: ChildSpec): Celeriac {
  const withResults = spec.results || spec.role === 'latency';
  return new Celeriac('bench', {
    broker: spec.brokerUrl,
    ...(withResults ? { backend: spec.backendUrl } : {}),
    task_ignore_result: !withResults,
    task_default_queue: spec.queue,
  });
}

function registerTasks(app: Celeriac, spec: ChildSpec) {
  const noop = app.task('bench.noop', () => null);
  // S9's chord body: how many header results it was given.
  app.task('bench.count', (results: unknown[]) => results.length);
  const io = app.task('bench.io', async () => {
    await sleep(spec.ioMs);
    return null;
  });
  return spec.task === 'io' ? io : noop;
}

async function main(): Promise<void> {
  const spec = parseSpec(process.argv);
  const notes = { celeriac: version };
  const app = makeApp(spec);
  const task = registerTasks(app, spec);

  switch (spec.role) {
    case 'publish-single': {
      emitResult(await timePublishing(spec.n, async () => {
        for (let i = 0; i < spec.n; i++) await task.applyAsync([], {});
      }, notes));
      break;
    }
    case 'publish-bulk':
    case 'prefill': {
      // task.applyBulk in chunks of `batch`, one chunk at a time (as BullMQ's addBulk is called).
      emitResult(await timePublishing(spec.n, async () => {
        for (let start = 0; start < spec.n; start += spec.batch) {
          const size = Math.min(spec.batch, spec.n - start);
          await task.applyBulk(Array.from({ length: size }, () => ({ args: [], kwargs: {} })));
        }
      }, { ...notes, batch: spec.batch }));
      break;
    }
    case 'drain': {
      const clock = new CompletionClock(spec.n);
      const worker = app.worker({ queues: [spec.queue], concurrency: spec.concurrency, loglevel: 'warning', taskEvents: spec.events === true });
      worker.on('taskPostrun', () => clock.tick());
      await worker.start();
      await clock.wait();
      emitResult(clock.result({ ...notes, concurrency: spec.concurrency }));
      break;
    }
    case 'worker': {
      const worker = app.worker({ queues: [spec.queue], concurrency: spec.concurrency, loglevel: 'warning' });
      await worker.start();
      exitOnSignal(async () => { await worker.close(); await app.close(); });
      process.stdout.write(READY_LINE + '\n');
      await new Promise(() => {});
      break;
    }
    case 'canvas': {
      // End to end: build and publish the canvas, then wait for every result (group) or the body's (chord).
      const count = app.signature<[unknown[]], number>('bench.count');
      emitResult(await timePublishing(spec.n, async () => {
        const members = Array.from({ length: spec.n }, () => app.signature('bench.noop'));
        if (spec.canvas === 'chord') {
          const got = await (await chord(members, count).applyAsync()).get({ timeout: 600_000 });
          if (got !== spec.n) throw new Error(`the chord body counted ${got} results, not ${spec.n}`);
        } else {
          const got = await (await group(members).applyAsync()).get({ timeout: 600_000 });
          if (got.length !== spec.n) throw new Error(`the group gave ${got.length} results, not ${spec.n}`);
        }
      }, { ...notes, canvas: spec.canvas ?? 'group' }));
      break;
    }
    case 'latency': {
      emitResult(await timeRoundTrips(spec.n, spec.warmup, async () => {
        const r = await task.applyAsync([], {});
        await r.get({ timeout: 30_000 });
      }, notes));
      break;
    }
  }
  // Exit without a warm shutdown: the measured window is over, and drains have nothing left queued.
  process.exit(0);
}

main().catch(failAndExit);
