// The dashboard's page in real headless Chromium (Debian's, driven by playwright-core), watching a Celeriac worker
// and a Python Celery worker (both with -E) on a private Redis: both workers listed, a task turning SUCCESS live,
// its page, revoke (an ETA task; a running one with terminate), retry of a failed task, filters, a chain's links,
// worker actions, dead letters and purge, a restart (the open page reconnects; the history is kept in the same
// SQLite file), a burst of 3,000 tasks, the charts. Screenshots of every page go to a temporary folder, or to
// docs/dashboard/<page>.png with CELERIAC_SCREENSHOTS=docs (how the committed ones are made).
// test-timeout: 420000 (Chromium, two workers and a dashboard on a machine that may be loaded)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ManagedProcess, REPO_ROOT, startPythonWorker } from '../interop/harness.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { sleep } from '../helpers/services.js';
import { chain, type Celeriac } from '../../src/index.js';
import type * as TestApp from './app.js';

const CHROMIUM = process.env.CELERIAC_TEST_CHROMIUM ?? '/usr/bin/chromium';
const APP_MODULE = 'test/browser/app.ts';
const SHOTS = process.env.CELERIAC_SCREENSHOTS === 'docs' ? path.join(REPO_ROOT, 'docs', 'dashboard') : mkdtempSync(path.join(tmpdir(), 'celeriac-shots-'));
const TS_WORKER = 'ts@dashboard';
const PY_WORKER = 'py@dashboard';
// Scoped to the task page: the tasks table has [data-field="state"] cells too.
const DETAIL_STATE = 'main[data-view="task"] [data-field="state"]';
const DETAIL_NAME = 'main[data-view="task"] [data-field="name"]';

/** Fail (never skip) with how to get Chromium when it is missing. */
function requireChromium(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}; install it with: sudo apt-get install -y chromium `
      + '(scripts/test-setup.sh does this for npm test), or point CELERIAC_TEST_CHROMIUM at a Chromium binary');
  }
}

let redis: RedisServer;
let broker: string;
let stateDir: string;
let dbFile: string;
let port: number;
let base: string;
let dashboardProcess: ManagedProcess | undefined;
let browser: Browser;
let page: Page;
let app: Celeriac;
let add: typeof TestApp.add;
const processes: ManagedProcess[] = [];
const pageErrors: string[] = [];

function env(): NodeJS.ProcessEnv {
  return { ...process.env, CELERIAC_DASH_BROKER: broker, CELERIAC_DASH_STATE_DIR: stateDir };
}

/** `celeriac -A test/browser/app.ts dashboard`, ready once /healthcheck answers OK. */
async function startDashboard(): Promise<ManagedProcess> {
  const p = new ManagedProcess('celeriac dashboard', process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', '-A', APP_MODULE, 'dashboard', '--port', String(port), '--address', '127.0.0.1', '--db', dbFile],
    { cwd: REPO_ROOT, env: env() });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (!p.running) throw new Error(`celeriac dashboard exited before answering /healthcheck:\n${p.tail()}`);
    const ok = await fetch(`${base}healthcheck`).then(async (r) => (await r.text()).trim() === 'OK', () => false);
    if (ok) return p;
    if (Date.now() > deadline) throw new Error(`celeriac dashboard did not answer /healthcheck within 30 s:\n${p.tail()}`);
    await sleep(200);
  }
}

/** Wait until the element's text is `want` (or matches it); on timeout say what it showed instead. */
async function waitForText(selector: string, want: string | RegExp, timeoutMs = 30_000): Promise<void> {
  const pattern = want instanceof RegExp ? want.source : null;
  try {
    await page.waitForFunction(([sel, text, re]) => {
      const got = document.querySelector(sel)?.textContent?.trim();
      return got !== undefined && (re === null ? got === text : new RegExp(re).test(got));
    }, [selector, String(want), pattern] as const, { timeout: timeoutMs });
  } catch {
    const got = await page.evaluate((sel) => document.querySelector(sel)?.textContent?.trim() ?? '(no such element)', selector);
    const notice = await page.evaluate(() => document.getElementById('notice')?.textContent?.trim() ?? '');
    throw new Error(`${selector} did not show ${String(want)} within ${timeoutMs} ms; it shows ${JSON.stringify(got)} `
      + `(page errors: ${JSON.stringify(pageErrors)}; page notice: ${JSON.stringify(notice)})\ndashboard log:\n${dashboardProcess?.tail(30) ?? ''}`
      + `\nworker logs:\n${processes.map((p) => p.tail(20)).join('\n')}`);
  }
}

async function screenshot(name: string): Promise<void> {
  await page.evaluate(() => { document.getElementById('notice')!.hidden = true; });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** Marks the page: still there later means the page was never reloaded. */
async function markPage(): Promise<void> {
  await page.evaluate(() => { (window as unknown as { celeriacMark?: string }).celeriacMark = 'not reloaded'; });
}

async function pageMark(): Promise<string | undefined> {
  return page.evaluate(() => (window as unknown as { celeriacMark?: string }).celeriacMark);
}

before(async () => {
  requireChromium();
  redis = await startRedisServer();
  broker = redis.url(0);
  stateDir = mkdtempSync(path.join(tmpdir(), 'celeriac-dashboard-'));
  dbFile = path.join(stateDir, 'dashboard.sqlite');
  port = await freePort();
  base = `http://127.0.0.1:${port}/`;
  mkdirSync(SHOTS, { recursive: true });

  dashboardProcess = await startDashboard();
  const ts = new ManagedProcess('Celeriac worker', process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', '-A', APP_MODULE, 'worker', '-E', '-n', TS_WORKER, '-Q', 'celery', '-c', '2', '-l', 'info'],
    { cwd: REPO_ROOT, env: env() });
  processes.push(ts);
  const py = await startPythonWorker({ broker, queue: 'py', queues: ['py'], name: PY_WORKER, pool: 'solo', heartbeat: true, extraArgs: ['-E'] });
  processes.push(py);
  await ts.waitForOutput(/ready/i, 30_000, 'the Celeriac worker to be ready');

  process.env.CELERIAC_DASH_BROKER = broker; // read by app.ts when it loads
  ({ app, add } = await import('./app.js'));

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  page = await browser.newPage({ viewport: { width: 1360, height: 820 } });
  page.on('pageerror', (err) => pageErrors.push(err.message));
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await dashboardProcess?.stop().catch(() => undefined);
  for (const p of processes.reverse()) await p.stop().catch(() => undefined);
  await app?.close().catch(() => undefined);
  await redis?.destroy().catch(() => undefined);
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

test('the workers page lists the Celeriac worker and the Python Celery worker, online', async () => {
  await page.goto(`${base}#/workers`);
  for (const name of [TS_WORKER, PY_WORKER]) await waitForText(`tr[data-worker="${name}"] td[data-field="status"]`, 'online');
  // Registered tasks and queues come from an inspect: at once when a worker comes online, else in the
  // full round every 60 s (when that first reply is lost on a loaded machine).
  const INSPECTED = 90_000;
  await waitForText(`tr[data-worker="${PY_WORKER}"] td[data-field="registered"] summary`, /^\d+ tasks?$/, INSPECTED);
  await waitForText(`tr[data-worker="${PY_WORKER}"] td[data-field="queues"]`, 'py', INSPECTED);
  await waitForText(`tr[data-worker="${TS_WORKER}"] td[data-field="registered"] summary`, '3 tasks', INSPECTED);
  await waitForText(`tr[data-worker="${TS_WORKER}"] td[data-field="queues"]`, 'celery', INSPECTED);
  assert.match(await page.textContent(`tr[data-worker="${PY_WORKER}"] td[data-field="pid"]`) ?? '', /^\d+$/);
});

let added = '';
test('a task sent while the tasks page is open turns SUCCESS without a reload', async () => {
  await page.goto(`${base}#/tasks`);
  await page.waitForSelector('#tasks tbody');
  await markPage();
  const r = await app.sendTask('dash.add', [2, 3]);
  added = r.id;
  const py = await app.sendTask('py.mul', [6, 7], {}, { queue: 'py' });
  await waitForText(`tr[data-task="${r.id}"] td[data-field="state"]`, 'SUCCESS');
  await waitForText(`tr[data-task="${py.id}"] td[data-field="state"]`, 'SUCCESS');
  assert.equal(await page.textContent(`tr[data-task="${r.id}"] td[data-field="outcome"]`), '5');
  assert.equal(await page.textContent(`tr[data-task="${py.id}"] td[data-field="worker"]`), PY_WORKER);
  assert.equal(await pageMark(), 'not reloaded', 'the row changed without a page reload');
});

test('a task row opens its detail page', async () => {
  await page.click(`tr[data-task="${added}"] td[data-field="uuid"] a`);
  await page.waitForFunction((id) => location.hash === `#/task/${id}`, added);
  await waitForText(DETAIL_STATE, 'SUCCESS');
  await waitForText(DETAIL_NAME, 'dash.add');
  assert.equal(await page.textContent('dd[data-field="result"]'), '5');
  assert.equal(await page.textContent('dd[data-field="worker"]'), TS_WORKER);
  assert.equal(await pageMark(), 'not reloaded', 'hash navigation, not a page load');
  // Its worker links to that worker's tasks.
  await page.click('dd[data-field="worker"] a');
  await page.waitForSelector(`main[data-view="tasks"] tr[data-task="${added}"]`);
  const workers = await page.$$eval('#tasks tr[data-task] td[data-field="worker"]', (tds) => [...new Set(tds.map((td) => td.textContent))]);
  assert.deepEqual(workers, [TS_WORKER]);
});

test('Revoke on a pending ETA task turns it REVOKED', async () => {
  const r = await app.sendTask('dash.add', [1, 1], {}, { countdown: 600 });
  await page.goto(`${base}#/task/${r.id}`);
  await waitForText(DETAIL_STATE, 'RECEIVED');
  await markPage();
  await page.click('button[data-action="revoke"]');
  await waitForText(DETAIL_STATE, 'REVOKED');
  assert.equal(await pageMark(), 'not reloaded');
  assert.ok(await page.isDisabled('button[data-action="revoke"]'), 'a revoked task cannot be revoked again');
});

test('Revoke with terminate (after a confirm) stops a running task', async () => {
  const r = await app.sendTask('dash.sleep', [120]);
  await page.goto(`${base}#/task/${r.id}`);
  await waitForText(DETAIL_STATE, 'STARTED');
  const asked: string[] = [];
  page.once('dialog', (d) => {
    asked.push(d.message());
    void d.accept();
  });
  await page.check('main[data-view="task"] input[name="terminate"]');
  // The page re-renders on its own (live updates, a reload after the STARTED event): the box stays ticked.
  await sleep(1000);
  assert.ok(await page.isChecked('main[data-view="task"] input[name="terminate"]'), 'the terminate box is still ticked after the page updated');
  await page.click('button[data-action="revoke"]');
  await waitForText(DETAIL_STATE, 'REVOKED');
  assert.match(asked[0] ?? '', new RegExp(`Revoke ${r.id} and terminate it with SIGTERM`));
});

let failed = '';
test('Retry on a failed task sends it again, and the new run succeeds', async () => {
  const r = await app.sendTask('dash.flaky', ['first']);
  failed = r.id;
  await page.goto(`${base}#/task/${r.id}`);
  await waitForText(DETAIL_STATE, 'FAILURE');
  await page.waitForSelector('[data-field="traceback"]');
  assert.match(await page.textContent('[data-field="traceback"]') ?? '', /first run of first fails/);
  await screenshot('task');
  await page.click('button[data-action="retry"]');
  await page.waitForFunction((id) => location.hash.startsWith('#/task/') && location.hash !== `#/task/${id}`, r.id);
  const retried = decodeURIComponent((await page.evaluate(() => location.hash)).slice('#/task/'.length));
  assert.notEqual(retried, r.id, 'the retry is a new task');
  await waitForText(DETAIL_STATE, 'SUCCESS');
  await waitForText(DETAIL_NAME, 'dash.flaky');
  assert.equal(await page.textContent('dd[data-field="result"]'), "'first ok'");
});

/** The tasks page with these filters typed into its form; resolves to the listed rows' [uuid, state, name, worker]. */
async function filterTasks(fields: Record<string, string>): Promise<string[][]> {
  await page.goto(`${base}#/tasks`);
  await page.waitForSelector('main[data-view="tasks"] #task-filters');
  for (const [name, value] of Object.entries(fields)) {
    if (name === 'state') await page.selectOption('#task-filters select[name="state"]', value);
    else await page.fill(`#task-filters input[name="${name}"]`, value);
  }
  await page.click('#task-filters button[type="submit"]');
  await page.waitForFunction((f) => Object.entries(f).every(([k, v]) => new URLSearchParams(location.hash.split('?')[1]).get(k) === v), fields);
  // The view is rebuilt on every route: any row now comes from the filtered query.
  await page.waitForSelector('main[data-view="tasks"] #tasks tbody tr');
  return page.$$eval('#tasks tbody tr[data-task]', (trs) => trs.map((tr) => ['uuid', 'state', 'name', 'worker']
    .map((f) => (f === 'uuid' ? (tr as HTMLElement).dataset.task! : tr.querySelector(`td[data-field="${f}"]`)?.textContent?.trim() ?? ''))));
}

test('the tasks page filters by state, name, worker and time, and finds a task by id or by text in its args', async () => {
  const failures = await filterTasks({ state: 'FAILURE' });
  assert.ok(failures.some(([id]) => id === failed), 'the failed task is listed');
  assert.deepEqual([...new Set(failures.map(([, state]) => state))], ['FAILURE']);
  // Live rows follow the filter too: a new failure comes in, a success does not.
  await markPage();
  const ok = await app.sendTask('dash.add', [7, 7]);
  const bad = await app.sendTask('dash.flaky', ['second']);
  await waitForText(`tr[data-task="${bad.id}"] td[data-field="state"]`, 'FAILURE');
  assert.equal(await ok.get({ timeout: 20_000 }), 14);
  await sleep(500); // a stream tick and the page's batch
  assert.equal(await page.locator(`tr[data-task="${ok.id}"]`).count(), 0, 'a SUCCESS task is not added under state=FAILURE');
  assert.equal(await pageMark(), 'not reloaded');
  // …and leave it: under state=STARTED a running task shows, then goes when it finishes.
  await filterTasks({ state: 'STARTED' });
  const running = await app.sendTask('dash.sleep', [2]);
  await waitForText(`tr[data-task="${running.id}"] td[data-field="state"]`, 'STARTED');
  await page.waitForSelector(`tr[data-task="${running.id}"]`, { state: 'detached', timeout: 20_000 });
  const names = await page.$$eval('datalist#task-names option', (os) => os.map((o) => (o as HTMLOptionElement).value));
  assert.ok(names.includes('dash.flaky') && names.includes('py.mul'), `the name field offers the task names seen (${names.join(', ')})`);
  const py = await filterTasks({ name: 'py.mul', worker: PY_WORKER });
  assert.ok(py.length >= 1);
  assert.deepEqual([...new Set(py.map(([, , name, worker]) => `${name} ${worker}`))], [`py.mul ${PY_WORKER}`]);
  assert.deepEqual((await filterTasks({ search: failed })).map(([id]) => id), [failed], 'search by id');
  const byArgs = await filterTasks({ search: 'first' });
  assert.ok(byArgs.length >= 2 && byArgs.every(([, , name]) => name === 'dash.flaky'), `search in args: ${JSON.stringify(byArgs)}`);
  assert.deepEqual(await filterTasks({ since: '2099-01-01T00:00' }), [], 'nothing received after 2099');
  assert.ok((await filterTasks({ until: '2099-01-01T00:00' })).some(([id]) => id === added), 'everything received before 2099');
});

test('a task page links its children and its parent (a chain)', async () => {
  const last = await chain(add.s(1, 2), add.s(10)).applyAsync();
  assert.equal(await last.get({ timeout: 20_000 }), 13);
  const first = last.parent!.id;
  await page.goto(`${base}#/task/${first}`);
  await page.waitForSelector(`main[data-view="task"] [data-field="children"] a[href="#/task/${last.id}"]`);
  await page.click(`[data-field="children"] a[href="#/task/${last.id}"]`);
  await page.waitForSelector(`main[data-view="task"] dd[data-field="parent"] a[href="#/task/${first}"]`);
  assert.equal((await page.textContent(DETAIL_STATE))?.trim(), 'SUCCESS');
  assert.equal(await page.textContent('dd[data-field="result"]'), '13');
});

test('worker actions from the page (pool grow, rate and time limits, a refused autoscale, cancel and add consumer); queues: a dead letter shown raw, a purge after typing the name', async () => {
  // Not a kombu envelope: the Celeriac worker moves it to celery.dlq as it is.
  redis.cli('LPUSH', 'celery', 'this is not a kombu envelope');
  await page.goto(`${base}#/queues`);
  await page.waitForSelector('tr[data-queue="py"]');
  await waitForText('tr[data-queue="celery"] td[data-field="dlq"]', '1');
  await page.click('tr[data-queue="celery"] button[data-action="dlq"]');
  await waitForText('#queue-detail pre.raw', 'this is not a kombu envelope');

  await page.goto(`${base}#/workers`);
  await page.waitForSelector(`select[name="worker"] option[value="${TS_WORKER}"]`, { state: 'attached' });
  await page.click(`tr[data-worker="${TS_WORKER}"] button[data-action="grow"]`);
  await waitForText('#notice', new RegExp(`^Grow ${TS_WORKER}: `));
  await page.selectOption('select[name="worker"]', TS_WORKER);
  await page.fill('form[data-form="rate-limit"] input[name="task"]', 'dash.add');
  await page.fill('form[data-form="rate-limit"] input[name="rate"]', '6000/m');
  await page.click('form[data-form="rate-limit"] button[type="submit"]');
  await waitForText('#notice', new RegExp(`^Rate limit on ${TS_WORKER}: `));
  await page.fill('form[data-form="time-limit"] input[name="task"]', 'dash.sleep');
  await page.fill('form[data-form="time-limit"] input[name="soft"]', '30');
  await page.fill('form[data-form="time-limit"] input[name="hard"]', '60');
  await page.click('form[data-form="time-limit"] button[type="submit"]');
  await waitForText('#notice', new RegExp(`^Time limit on ${TS_WORKER}: `));
  await page.fill('form[data-form="autoscale"] input[name="min"]', '1');
  await page.fill('form[data-form="autoscale"] input[name="max"]', '4');
  await page.click('form[data-form="autoscale"] button[type="submit"]');
  // The worker runs without --autoscale: its refusal is what the page shows, as an error.
  await waitForText('#notice', new RegExp(`^Autoscale on ${TS_WORKER} failed: 403 .*Autoscale not enabled`));
  assert.equal(await page.getAttribute('#notice', 'class'), 'error');
  await page.selectOption('select[name="worker"]', TS_WORKER);
  await page.fill('form[data-form="cancel-consumer"] input[name="queue"]', 'celery');
  await page.click('form[data-form="cancel-consumer"] button[type="submit"]');
  await waitForText('#notice', new RegExp(`^Cancel consumer on ${TS_WORKER}: `));
  for (let i = 0; i < 3; i++) await app.sendTask('dash.add', [i, i]);

  await page.goto(`${base}#/queues`);
  await waitForText('tr[data-queue="celery"] td[data-field="messages"]', '3');
  await screenshot('queues');
  await page.click('tr[data-queue="celery"] button[data-action="purge"]');
  const purge = 'form[data-form="purge"] button[type="submit"]';
  await page.fill('form[data-form="purge"] input[name="confirm"]', 'celer');
  assert.ok(await page.isDisabled(purge), 'purge stays disabled until the queue name is typed');
  await page.fill('form[data-form="purge"] input[name="confirm"]', 'celery');
  await page.click(purge);
  await waitForText('#notice', 'Purge celery: 3 messages deleted');
  await waitForText('tr[data-queue="celery"] td[data-field="messages"]', '0');

  await page.goto(`${base}#/workers`);
  await page.selectOption('select[name="worker"]', TS_WORKER);
  await page.fill('form[data-form="add-consumer"] input[name="queue"]', 'celery');
  await page.click('form[data-form="add-consumer"] button[type="submit"]');
  await waitForText('#notice', new RegExp(`^Add consumer on ${TS_WORKER}: `));
  const r = await app.sendTask('dash.add', [20, 22]);
  assert.equal(await r.get({ timeout: 20_000 }), 42, 'the worker consumes from celery again');
});

test('an open page follows the dashboard through a restart: it reconnects and keeps updating', async () => {
  await page.goto(`${base}#/tasks`);
  await page.waitForSelector('main[data-view="tasks"] #tasks tbody tr');
  await markPage();
  await waitForText('#live', 'live');
  await dashboardProcess!.stop();
  await page.waitForSelector('#live[data-live="down"]');
  dashboardProcess = await startDashboard();
  await page.waitForSelector('#live[data-live="live"]', { timeout: 30_000 });
  const r = await app.sendTask('dash.add', [100, 1]);
  await waitForText(`tr[data-task="${r.id}"] td[data-field="state"]`, 'SUCCESS');
  assert.equal(await pageMark(), 'not reloaded');
});

test('after a dashboard restart on the same database file the task history is still there', async () => {
  await dashboardProcess!.stop();
  dashboardProcess = await startDashboard();
  await page.goto(`${base}#/tasks`);
  await page.reload(); // a fresh page: nothing comes from the old page's memory
  await waitForText(`tr[data-task="${added}"] td[data-field="state"]`, 'SUCCESS');
  const states = await page.$$eval('tr[data-task] td[data-field="state"]', (tds) => tds.map((td) => td.textContent?.trim()));
  for (const s of ['SUCCESS', 'FAILURE', 'REVOKED']) assert.ok(states.includes(s), `a ${s} task is still listed after the restart (got ${states.join(', ')})`);
  await screenshot('tasks');
  await page.goto(`${base}#/workers`);
  for (const name of [TS_WORKER, PY_WORKER]) await waitForText(`tr[data-worker="${name}"] td[data-field="status"]`, 'online');
  await waitForText(`tr[data-worker="${PY_WORKER}"] td[data-field="registered"] summary`, /^\d+ tasks?$/, 90_000);
  await screenshot('workers');
  assert.deepEqual(pageErrors, [], 'no script error in the page');
});

test('after a burst of 3,000 tasks the tasks page shows the server\'s count, every row SUCCESS', async () => {
  await page.goto(`${base}#/tasks`);
  await page.waitForSelector('main[data-view="tasks"] #tasks tbody tr');
  await markPage();
  const count = async (state = ''): Promise<number> =>
    ((await (await fetch(`${base}dashboard/api/tasks?state=${state}&limit=1`)).json()) as { total: number }).total;
  const succeededBefore = await count('SUCCESS');
  const ids: string[] = [];
  for (let i = 0; i < 3000; i += 500) ids.push(...(await Promise.all(Array.from({ length: 500 }, (_, j) => app.sendTask('dash.add', [i + j, 0])))).map((r) => r.id));
  // The stream sends at most the latest changes of each tick under a flood; the page catches up.
  const deadline = Date.now() + 90_000;
  while (await count('SUCCESS') < succeededBefore + ids.length) {
    if (Date.now() > deadline) throw new Error(`the worker did not finish the burst within 90 s (${(await count('SUCCESS')) - succeededBefore} of ${ids.length})`);
    await sleep(250);
  }
  const total = await count();
  await waitForText('#task-count', `${total} tasks`);
  await page.waitForFunction(() => [...document.querySelectorAll('#tasks tbody tr[data-task] td[data-field="state"]')].every((td) => td.textContent === 'SUCCESS'), null, { timeout: 30_000 });
  assert.equal(await page.locator('#tasks tbody tr[data-task]').count(), 100, 'one page of rows');
  assert.equal(await pageMark(), 'not reloaded');
  assert.deepEqual(pageErrors, [], 'no script error in the page');
});

test('the charts page draws throughput, runtime percentiles and queue lengths', async () => {
  await page.goto(`${base}#/charts?minutes=15`);
  for (const chart of ['throughput', 'runtime', 'queues']) await page.waitForSelector(`figure[data-chart="${chart}"] svg`, { state: 'attached', timeout: 30_000 });
  await page.waitForSelector('figure[data-chart="throughput"] path[data-series="succeeded"]', { state: 'attached' });
  await page.waitForSelector('figure[data-chart="runtime"] circle', { state: 'attached' });
  await screenshot('charts');
});
