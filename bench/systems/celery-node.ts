// celery-node peer child. celery-node has no acknowledgement on Redis (BRPOP) and acks AMQP messages on
// receipt; it always stores a result, and its worker has no concurrency limit. A task is counted when
// its result write has completed, the closest thing it has to "done".
import { createRequire } from 'node:module';
import {
  parseSpec, emitResult, failAndExit, CompletionClock, timePublishing, timeRoundTrips, inFlightWindow,
  exitOnSignal, sleep, READY_LINE, type ChildSpec,
} from '../lib/spec.js';

const require = createRequire(import.meta.url);
const version = (require('celery-node/package.json') as { version: string }).version;

interface TaskMessage { headers: object; properties: object; body: unknown }
interface CnBroker { publish(body: unknown, exchange: string, routingKey: string, headers: object, properties: object): Promise<unknown> }
interface CnBackend { storeResult(id: string, result: unknown, state: string): Promise<unknown> }
interface CnBase { isReady(): Promise<unknown>; disconnect(): Promise<unknown>; broker: CnBroker; backend: CnBackend }
interface CnClient extends CnBase {
  createTaskMessage: (id: string, name: string, args: unknown[], kwargs: object) => TaskMessage;
  sendTask(name: string, args: unknown[], kwargs: object): { get(timeout?: number, interval?: number): Promise<unknown> };
}
interface CnWorker extends CnBase { register(name: string, fn: (...a: unknown[]) => unknown): void; start(): Promise<unknown> }
const celery = require('celery-node') as {
  createClient(broker: string, backend: string, queue: string): CnClient;
  createWorker(broker: string, backend: string, queue: string): CnWorker;
};

// celery-node logs every received and finished task with console.info; the other systems run at
// warning level, so silence it rather than time a pipe full of log lines.
console.info = () => {};

const taskName = (spec: ChildSpec) => `bench.${spec.task}`;

async function publishOne(client: CnClient, spec: ChildSpec, i: number): Promise<void> {
  const m = client.createTaskMessage(`${process.pid}-${i}-${Math.random().toString(36).slice(2)}`, taskName(spec), [], {});
  await client.broker.publish(m.body, '', spec.queue, m.headers, m.properties);
}

function startWorker(spec: ChildSpec, onStored: () => void): CnWorker {
  const worker = celery.createWorker(spec.brokerUrl, spec.backendUrl, spec.queue);
  worker.register('bench.noop', () => null);
  worker.register('bench.io', async () => { await sleep(spec.ioMs); return null; });
  const backend = worker.backend;
  const store = backend.storeResult.bind(backend);
  backend.storeResult = (id, result, state) => store(id, result, state).then((r) => { onStored(); return r; });
  void worker.start();
  return worker;
}

async function main(): Promise<void> {
  const spec = parseSpec(process.argv);
  const notes = { 'celery-node': version, concurrency: 'unbounded', results: 'always stored' };
  switch (spec.role) {
    case 'publish-single':
    case 'publish-bulk':
    case 'prefill': {
      const client = celery.createClient(spec.brokerUrl, spec.backendUrl, spec.queue);
      await client.isReady();
      const inFlight = spec.role === 'publish-single' ? 1 : spec.batch;
      emitResult(await timePublishing(spec.n, () => inFlightWindow(spec.n, inFlight, (i) => publishOne(client, spec, i)), { ...notes, inFlight }));
      await client.disconnect();
      break;
    }
    case 'drain': {
      const clock = new CompletionClock(spec.n);
      startWorker(spec, () => clock.tick());
      await clock.wait();
      emitResult(clock.result(notes));
      break;
    }
    case 'worker': {
      const worker = startWorker(spec, () => {});
      await worker.isReady();
      exitOnSignal();
      process.stdout.write(READY_LINE + '\n');
      await new Promise(() => {});
      break;
    }
    case 'latency': {
      const client = celery.createClient(spec.brokerUrl, spec.backendUrl, spec.queue);
      await client.isReady();
      // AsyncResult.get() polls the backend every 500 ms by default; that is what users get.
      emitResult(await timeRoundTrips(spec.n, spec.warmup, async () => {
        await client.sendTask(taskName(spec), [], {}).get(30_000);
      }, { ...notes, pollIntervalMs: 500 }));
      await client.disconnect();
      break;
    }
  }
  process.exit(0);
}

main().catch(failAndExit);
