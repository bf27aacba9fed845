// The dashboard: a Hono app over the cluster view, its history and the queues, served by
// @hono/node-server (or mounted through `fetch` in a server of your own).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { basicAuth } from 'hono/basic-auth';
import { HTTPException } from 'hono/http-exception';
import { serve, type ServerType } from '@hono/node-server';
import type { Celeriac } from '../app/celeriac.js';
import { ClusterView } from './ingest.js';
import { HistoryStore } from './store.js';
import { Queues } from './queues.js';
import { flowerRoutes } from './flower.js';
import { dashboardRoutes } from './api.js';
import { resolveOptions, type DashboardOptions } from './options.js';

/** A running dashboard. */
export interface Dashboard {
  /** http://address:port/ (empty when started with listen: false). */
  readonly url: string;
  /** The Hono app's fetch: mount it in an existing server (it serves every route below /). */
  readonly fetch: (request: Request) => Response | Promise<Response>;
  readonly app: Hono;
  /** Stop listening, stop receiving events, write what is pending and close the history file. */
  close(): Promise<void>;
}

const UI_DIR = fileURLToPath(new URL('./ui/', import.meta.url));
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.json': 'application/json',
};
const PRUNE_EVERY_MS = 60_000;

async function uiFile(name: string): Promise<Response> {
  const file = path.resolve(UI_DIR, name);
  if (!file.startsWith(UI_DIR) || !CONTENT_TYPES[path.extname(file)]) return new Response('Not found', { status: 404 });
  try {
    return new Response(await readFile(file), { headers: { 'content-type': CONTENT_TYPES[path.extname(file)]!, 'cache-control': 'no-cache' } });
  } catch {
    return new Response('Not found', { status: 404 });
  }
}

export async function startDashboard(celeriac: Celeriac, o: DashboardOptions = {}): Promise<Dashboard> {
  const opts = resolveOptions(o, String(celeriac.conf.dashboard_db ?? '.celeriac/dashboard.sqlite'));
  const store = HistoryStore.open(opts.db);
  const cluster = new ClusterView(celeriac, store, celeriac.logger);
  const queues = new Queues(celeriac, cluster, store);
  const retentionS = opts.retentionHours * 3600;
  const prune = () => {
    try {
      store.prune(Date.now() / 1000 - retentionS);
    } catch (err) {
      celeriac.logger.error(`Dashboard: could not prune the history in ${opts.db}: ${(err as Error).message}`);
    }
  };
  let server: ServerType | undefined;
  let pruneTimer: NodeJS.Timeout | undefined;
  try {
    prune();
    await cluster.start();
    queues.start();
    pruneTimer = setInterval(prune, PRUNE_EVERY_MS);

    const app = new Hono();
    if (opts.auth) app.use('*', basicAuth({ ...opts.auth, realm: 'Celeriac dashboard' }));
    app.onError((err, c) => {
      if (err instanceof HTTPException) return err.getResponse(); // basic auth's 401, with its challenge
      celeriac.logger.error(`Dashboard: ${c.req.method} ${c.req.path} failed: ${err.stack ?? err.message}`);
      return c.json({ error: err.message }, 500);
    });
    app.get('/', () => uiFile('index.html'));
    app.get('/ui/:file{.+}', (c) => uiFile(c.req.param('file')));
    flowerRoutes(app, { app: celeriac, cluster, store, queues });
    dashboardRoutes(app, { app: celeriac, cluster, store, queues });
    app.get('/metrics', async (c) => {
      const lengths = await queues.list().catch(() => []);
      const body = cluster.metrics.render(cluster.workerViews(), Object.fromEntries(lengths.map((q) => [q.name, q.messages])));
      return c.text(body, 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    });

    let url = '';
    if (opts.listen) {
      const info = await new Promise<AddressInfo>((resolve, reject) => {
        server = serve({ fetch: app.fetch, port: opts.port, hostname: opts.address }, resolve);
        server.once('error', reject);
      });
      const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
      url = `http://${host}:${info.port}/`;
    }
    let closed = false;
    return {
      url, app, fetch: app.fetch,
      async close() {
        if (closed) return;
        closed = true;
        clearInterval(pruneTimer);
        queues.close();
        if (server) {
          const s = server;
          await new Promise<void>((r) => {
            s.close(() => r());
            (s as { closeAllConnections?: () => void }).closeAllConnections?.(); // SSE streams stay open otherwise
          });
        }
        await cluster.close();
        store.close();
      },
    };
  } catch (err) {
    clearInterval(pruneTimer);
    queues.close();
    server?.close();
    await cluster.close().catch(() => undefined);
    store.close();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new Error(`Port ${opts.port} on ${opts.address} is in use: pass another with --port (or stop what listens there).`);
    throw err;
  }
}
