// A separate process on the embedded broker, driven by the sqlite*.test.ts files.
//   consume <url> <queue> <prefetch> <ledger> [publishCount]  claim and ack, append each message id to
//       the ledger; with publishCount, also publish that many messages (ids <pid>-<n>) while consuming.
//   hold <url> <queue> <prefetch> <ledger>                     claim and never ack (until killed).
//   store <url> <taskId> <status>                               store one result and exit.
//   broadcast <url> <exchange> <id>                             broadcast one message and exit.
// Prints "ready" once consuming, and on SIGTERM closes cleanly and prints its stats as JSON.
import fs from 'node:fs';
import { createBroker } from '../../src/brokers/sqlite/index.js';
import type { SqliteBroker } from '../../src/brokers/sqlite/broker.js';
import type { SqliteConsumer } from '../../src/brokers/sqlite/consumer.js';
import { createBackend } from '../../src/backends/sqlite.js';
import { createSettings } from '../../src/app/settings.js';
import { createLogger } from '../../src/app/log.js';
import { testMessage } from './sqlite-fixtures.js';

const [mode, url, a, b, c, d] = process.argv.slice(2) as [string, string, string, string, string, string | undefined];
const lease = Number(process.env.CELERIAC_TEST_LEASE_S ?? 2);
const settings = createSettings({ broker_transport_options: { visibility_timeout: lease } });
const logger = createLogger('warning', (l) => process.stderr.write(l), `child-${process.pid}`);

async function main(): Promise<void> {
  if (mode === 'store') {
    const backend = createBackend(url, { settings, logger });
    await backend.connect();
    await backend.store({ status: b, result: 42, traceback: null, children: [], date_done: new Date().toISOString(), task_id: a });
    await backend.close();
    return;
  }
  if (mode === 'broadcast') {
    const broker = createBroker(url, { settings, logger }) as SqliteBroker;
    await broker.connect();
    await broker.broadcast(a, testMessage(b));
    await broker.close();
    return;
  }
  const queue = a;
  const prefetch = Number(b);
  const ledger = fs.openSync(c, 'a');
  const broker = createBroker(url, { settings, logger }) as SqliteBroker;
  await broker.connect();
  const consumer = (await broker.consume([queue], (delivery) => {
    fs.writeSync(ledger, `${String(delivery.message.headers.id)}\n`);
    if (mode === 'consume') void delivery.ack();
  }, { prefetch })) as SqliteConsumer;
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => {
    void (async () => {
      const busyRetries = broker.database.stats.busyRetries;
      await broker.close();
      process.stdout.write(JSON.stringify({ ...consumer.stats, busyRetries }) + '\n');
      process.exit(0);
    })();
  });
  const toPublish = Number(d ?? 0);
  for (let i = 0; i < toPublish; i += 50) {
    const batch = [];
    for (let j = i; j < Math.min(toPublish, i + 50); j++) batch.push(broker.publish(testMessage(`${process.pid}-${j}`), { exchange: '', routingKey: queue }));
    await Promise.all(batch);
  }
  if (toPublish) process.stdout.write('published\n');
}

main().catch((err) => {
  process.stderr.write(`child failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
