// The dashboard as a library call: `const d = await dashboard(app, { port: 5555 })`. The server and
// its dependencies (Hono, better-sqlite3) load only when it is called, so `import { Celeriac }` does
// not pay for them.
import type { Celeriac } from '../app/celeriac.js';
import type { Dashboard } from './server.js';
import type { DashboardOptions } from './options.js';

export type { Dashboard } from './server.js';
export type { DashboardOptions } from './options.js';
export type { TaskView, WorkerView } from './views.js';

/** Start the dashboard for this app: it receives the workers' events, keeps their history and serves the UI and the API. */
export async function dashboard(app: Celeriac, options: DashboardOptions = {}): Promise<Dashboard> {
  const { startDashboard } = await import('./server.js');
  return startDashboard(app, options);
}
