// The start-up banner, like Celery's.
import os from 'node:os';
import type { WorkerHost } from './host.js';

/** Celeriac's version, as the banner, events (sw_ver) and reports give it. */
export const VERSION = '0.1.0';

export interface BannerFacts {
  hostname: string;
  concurrency: string;
  poolKind: string;
  prefetch: number;
  queues: string[];
  taskEvents: boolean;
  /** loglevel debug: the built-in tasks are listed too. */
  debug?: boolean;
}

export function banner(app: WorkerHost, w: BannerFacts): string {
  const backend = app.backendUrl ? app.describeUrl(app.backendUrl) : 'disabled';
  // Celery's celery.* built-ins are registered on every app; the banner lists them only at debug level, as Celery's.
  const tasks = [...app.tasks.keys()].filter((n) => w.debug || !n.startsWith('celery.')).sort();
  const lines = [
    ` -------------- ${w.hostname} v${VERSION}`,
    `--- ***** ----- Node ${process.version} ${os.platform()} ${os.arch()} ${new Date().toISOString()}`,
    `- *** --- * --- `,
    `- ** ---------- [config]`,
    `- ** ---------- .> app:         ${app.main}`,
    `- ** ---------- .> transport:   ${app.describeUrl(app.brokerUrl)}${app.usesEmbeddedDefault ? '  (embedded default: no broker configured)' : ''}`,
    `- ** ---------- .> results:     ${backend}`,
    `- *** --- * --- .> concurrency: ${w.concurrency} (${w.poolKind})`,
    `-- ******* ---- .> prefetch:    ${w.prefetch || 'unlimited'}`,
    `--- ***** ----- .> task events: ${w.taskEvents ? 'ON' : 'OFF (enable -E to monitor tasks in this worker)'}`,
    `-- ******* ---- `,
    ` -------------- [queues]`,
    ...w.queues.map((q) => `                .> ${q.padEnd(16)} exchange=${q}(direct) key=${q}`),
    '',
    '[tasks]',
    ...tasks.map((t) => `  . ${t}`),
    '',
  ];
  return lines.join('\n');
}
