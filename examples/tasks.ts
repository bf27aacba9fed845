// The demo app. No broker is configured, so Celeriac uses its embedded SQLite default (./celeriac.db).
import { Celeriac } from '../src/index.js';

export const app = new Celeriac('demo');

export const add = app.task('demo.add', (x: number, y: number) => x + y);

export const slowSquare = app.task('demo.slow_square', async (x: number) => {
  await new Promise((r) => setTimeout(r, 100));
  return x * x;
});

// Fails on its first two attempts, then succeeds: shows retries with a countdown.
export const flaky = app.task(
  'demo.flaky',
  (task, label: string) => {
    if (task.request.retries < 2) task.retry({ countdown: 0.5, exc: new Error(`${label}: attempt ${task.request.retries + 1} failed`) });
    return `${label} succeeded after ${task.request.retries} retries`;
  },
  { bind: true, maxRetries: 5 },
);

export const boom = app.task('demo.boom', (why: string) => {
  throw new TypeError(why);
});
