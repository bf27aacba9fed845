// The app module the browser test's TS worker and dashboard load (-A): broker from CELERIAC_DASH_BROKER.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Celeriac } from '../../src/index.js';

const broker = process.env.CELERIAC_DASH_BROKER ?? 'redis://127.0.0.1:6379/0';
export const app = new Celeriac('dashboard-test', { broker, backend: broker, task_default_queue: 'celery' });

export const add = app.task('dash.add', (x: number, y: number) => x + y);

/** Fails on its first run for a tag and succeeds on the next: what a retry from the dashboard fixes. */
export const flaky = app.task('dash.flaky', (tag: string) => {
  const marker = path.join(process.env.CELERIAC_DASH_STATE_DIR ?? '.', `flaky-${tag}`);
  if (!existsSync(marker)) {
    writeFileSync(marker, 'failed once\n');
    throw new Error(`first run of ${tag} fails; run it again`);
  }
  return `${tag} ok`;
});

/** Runs for `seconds` (or until the worker aborts it: revoke with terminate). */
export const nap = app.task('dash.sleep', async (seconds: number) => {
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000).unref());
  return seconds;
});
