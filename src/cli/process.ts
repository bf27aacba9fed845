// The CLI as a process managers see it: PID 1 in a container, or a child of npx.
import os from 'node:os';
import type { Celeriac } from '../app/celeriac.js';

const EXIT_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/**
 * As PID 1 (a container's entry point) the kernel ignores signals that have no handler, so
 * `docker stop` would wait and kill -9. Give every command the default behaviour (exit 128+n);
 * a command with its own handler (the worker's warm shutdown) keeps it.
 */
export function exitOnSignalsAsPid1(pid: number = process.pid): void {
  if (pid !== 1) return;
  for (const sig of EXIT_SIGNALS) {
    process.on(sig, () => {
      if (process.listenerCount(sig) > 1) return;
      process.exit(128 + (os.constants.signals[sig] ?? 15));
    });
  }
}

/**
 * Under npx / npm exec, a signal sent to npm does not always reach this process, and npm may exit
 * first: then the worker would keep consuming with nobody to stop it. When the npm parent is gone,
 * shut down warm (the docs say to run node_modules/.bin/celeriac, or exec it, under a process manager).
 */
export function watchNpmParent(app: Celeriac, stop: () => void): void {
  if (process.env.npm_command !== 'exec' && process.env.npm_lifecycle_event !== 'npx') return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    app.logger.warning(`The process that started this worker under npx / npm exec (pid ${parent}) has exited: warm shutdown. Under a process manager run node_modules/.bin/celeriac (or exec it) so signals reach the worker.`);
    stop();
  }, 1000);
  timer.unref();
}
