// A Celeriac worker process for the interop tests (started by test/interop/harness.ts).
// Prints "celeriac-interop-worker ready" once consuming, and one "prerun <id> <name>" line per task started.
import { createInteropApp, configFromEnv } from './tasks.js';

const app = createInteropApp(configFromEnv(process.env));
const worker = app.worker({
  queues: (process.env.CELERIAC_TS_QUEUES ?? 'celery').split(','),
  concurrency: Number(process.env.CELERIAC_TS_CONCURRENCY ?? 4),
  hostname: process.env.CELERIAC_TS_HOSTNAME,
  loglevel: 'info',
});
worker.on('taskPrerun', (e: { id: string; name?: string }) => { process.stdout.write(`prerun ${e.id} ${e.name ?? ''}\n`); });
worker.on('taskPostrun', (e: { id: string; state?: string }) => { process.stdout.write(`postrun ${e.id} ${e.state ?? ''}\n`); });

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  void (async () => {
    await worker.close();
    await app.close();
    process.exit(0);
  })();
});

await worker.start();
process.stdout.write('celeriac-interop-worker ready\n');
