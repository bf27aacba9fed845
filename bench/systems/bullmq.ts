// BullMQ peer child. Counted on the worker's 'completed' event, which fires after the job was
// moved to completed (BullMQ's acknowledgement, and its return value stored when kept).
import { Queue, Worker, QueueEvents, type Job } from 'bullmq';
import { createRequire } from 'node:module';
import {
  parseSpec, emitResult, failAndExit, CompletionClock, timePublishing, timeRoundTrips, inFlightWindow,
  exitOnSignal, sleep, READY_LINE, type ChildSpec,
} from '../lib/spec.js';
import { readyRedis } from './redis-client.js';

const version = (createRequire(import.meta.url)('bullmq/package.json') as { version: string }).version;

// removeOnComplete: true when results are off (nothing kept), false when the return value must be stored.
const jobOpts = (spec: ChildSpec) => ({ removeOnComplete: !spec.results, removeOnFail: true });

async function processor(spec: ChildSpec): Promise<(job: Job) => Promise<null>> {
  const io = spec.task === 'io';
  return async () => {
    if (io) await sleep(spec.ioMs);
    return null;
  };
}

async function main(): Promise<void> {
  const spec = parseSpec(process.argv);
  const notes = { bullmq: version, removeOnComplete: !spec.results };
  const connection = await readyRedis(spec.brokerUrl);
  const queue = new Queue(spec.queue, { connection });
  await queue.waitUntilReady();

  switch (spec.role) {
    case 'publish-single': {
      emitResult(await timePublishing(spec.n, async () => {
        for (let i = 0; i < spec.n; i++) await queue.add('noop', { i }, jobOpts(spec));
      }, notes));
      break;
    }
    case 'publish-bulk':
    case 'prefill': {
      emitResult(await timePublishing(spec.n, async () => {
        for (let start = 0; start < spec.n; start += spec.batch) {
          const end = Math.min(spec.n, start + spec.batch);
          const jobs = [];
          for (let i = start; i < end; i++) jobs.push({ name: spec.task, data: { i }, opts: jobOpts(spec) });
          await queue.addBulk(jobs);
        }
      }, { ...notes, batch: spec.batch }));
      break;
    }
    case 'drain': {
      const clock = new CompletionClock(spec.n);
      const worker = new Worker(spec.queue, await processor(spec), {
        connection: await readyRedis(spec.brokerUrl),
        concurrency: spec.concurrency,
        autorun: false,
      });
      worker.on('completed', () => clock.tick());
      worker.on('error', (e) => process.stderr.write(`bullmq worker error: ${String(e)}\n`));
      void worker.run();
      await clock.wait();
      const result = clock.result({ ...notes, concurrency: spec.concurrency });
      emitResult(result);
      await worker.close(true);
      break;
    }
    case 'worker': {
      const worker = new Worker(spec.queue, await processor(spec), {
        connection: await readyRedis(spec.brokerUrl),
        concurrency: spec.concurrency,
      });
      await worker.waitUntilReady();
      exitOnSignal(() => worker.close(true));
      process.stdout.write(READY_LINE + '\n');
      await new Promise(() => {});
      break;
    }
    case 'latency': {
      const events = new QueueEvents(spec.queue, { connection: await readyRedis(spec.brokerUrl) });
      await events.waitUntilReady();
      emitResult(await timeRoundTrips(spec.n, spec.warmup, async () => {
        const job = await queue.add(spec.task, {}, jobOpts(spec));
        await job.waitUntilFinished(events, 30_000);
      }, notes));
      await events.close();
      break;
    }
  }
  await queue.close();
  await connection.quit();
  process.exit(0);
}

main().catch(failAndExit);
void inFlightWindow;
