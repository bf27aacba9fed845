// The app the SQLite kill test runs in its worker processes: one task that records each execution.
import fs from 'node:fs';
import path from 'node:path';
import { Celeriac } from '../../src/app/celeriac.js';

const dir = process.env.CELERIAC_LEDGER_DIR;
const url = process.env.CELERIAC_FAULT_DB_URL;

export const app = new Celeriac('sqlite-kill', {
  broker: url,
  backend: url,
  task_acks_late: true,
  broker_transport_options: { visibility_timeout: Number(process.env.CELERIAC_FAULT_LEASE_S ?? 3) },
});

let ledger: number | null = null;

/** One line per execution, appended to a file of this process (O_APPEND, well under PIPE_BUF). */
export const record = app.task('fault.record', async (id: number) => {
  if (!dir) throw new Error('CELERIAC_LEDGER_DIR is not set');
  ledger ??= fs.openSync(path.join(dir, `ledger-${process.pid}.txt`), 'a');
  fs.writeSync(ledger, `${id}\n`);
  await new Promise((r) => setTimeout(r, 1 + (id % 4)));
  return id;
});
