// The Celeriac dashboard: one page with hash routes (#/workers, #/tasks, #/task/<id>, #/queues, #/charts),
// kept live by the server-sent events of /api/stream. A plain browser module: no bundler, no framework.
// Values from tasks (args, results, tracebacks) only ever reach the DOM as text, never as HTML.

// Relative URLs: the page may be mounted under a path prefix in an existing server.
const API = 'dashboard/api';
const READY = new Set(['SUCCESS', 'FAILURE', 'REVOKED']);
const RETRYABLE = new Set(['FAILURE', 'REVOKED', 'REJECTED']);
const STATES = ['PENDING', 'RECEIVED', 'STARTED', 'SUCCESS', 'FAILURE', 'RETRY', 'REVOKED', 'REJECTED'];
const TASK_PAGE = 100;

// ---------------------------------------------------------------- DOM and HTTP helpers

/** h('td', { class: 'x', 'data-field': 'state', onclick }, 'text', child) → an element. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function replaceChildren(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** fetch() a JSON endpoint; a non-2xx reply throws with the server's {error} (or the status). */
async function api(url, init) {
  const res = await fetch(url, { headers: { accept: 'application/json' }, ...init });
  const text = await res.text();
  let body = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // Flower's action endpoints may answer plain text.
  }
  if (!res.ok) {
    const why = body && typeof body === 'object' ? (body.error ?? body.message ?? JSON.stringify(body)) : String(text).slice(0, 300);
    throw new Error(`${res.status} ${res.statusText}${why ? `: ${why}` : ''}`);
  }
  return body;
}

function post(url, json) {
  return api(url, json === undefined ? { method: 'POST' }
    : { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(json) });
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

let noticeTimer;
/** A one-line message under the header: what an action did, or why it failed. */
function notice(message, kind = 'info') {
  const el = document.getElementById('notice');
  el.textContent = message;
  el.className = kind;
  el.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { el.hidden = true; }, kind === 'error' ? 15_000 : 6_000);
}

/** What a Flower action endpoint answered, as one line. */
function replyText(reply) {
  if (reply && typeof reply === 'object') return reply.message ?? JSON.stringify(reply);
  return String(reply ?? 'done');
}

async function act(what, fn) {
  try {
    notice(`${what}: ${replyText(await fn())}`);
    return true;
  } catch (err) {
    notice(`${what} failed: ${err.message}`, 'error');
    return false;
  }
}

// ---------------------------------------------------------------- formatting

const pad = (n) => String(n).padStart(2, '0');

function fmtTime(ts) {
  if (ts === undefined || ts === null || ts === '') return '';
  const d = new Date(Number(ts) * 1000);
  if (Number.isNaN(d.getTime())) return String(ts);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const today = new Date();
  return d.toDateString() === today.toDateString() ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

function timeCell(ts) {
  return h('td', { class: 'time', title: ts ? new Date(Number(ts) * 1000).toISOString() : undefined }, fmtTime(ts));
}

function fmtRuntime(s) {
  if (s === undefined || s === null) return '';
  const n = Number(s);
  if (n < 1) return `${(n * 1000).toFixed(n < 0.01 ? 2 : 1)} ms`;
  if (n < 120) return `${n.toFixed(2)} s`;
  return `${(n / 60).toFixed(1)} min`;
}

function fmtAge(s) {
  if (s === undefined || s === null || !Number.isFinite(s)) return '';
  if (s < 90) return `${Math.max(0, Math.round(s))} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function text(v) {
  if (v === undefined || v === null) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function clip(s, n = 80) {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** A cell that shows the start of a long value and all of it on hover. */
function clipCell(value, field, n = 60) {
  const s = text(value);
  return h('td', { class: 'mono', 'data-field': field, title: s.length > n ? s : undefined }, clip(s, n));
}

function stateBadge(state, attrs = {}) {
  return h('span', { class: `state state-${String(state || 'UNKNOWN').toLowerCase()}`, ...attrs }, state || 'UNKNOWN');
}

function taskLink(uuid, label) {
  return h('a', { href: `#/task/${encodeURIComponent(uuid)}`, class: 'mono', title: uuid }, label ?? uuid);
}

function finishedAt(t) {
  return t.succeeded ?? t.failed ?? t.revoked ?? t.rejected;
}

// ---------------------------------------------------------------- live stream

const subscribers = { task: new Set(), worker: new Set() };
const pending = new Map();
let flushTimer;
let stream;
let wasDown = false;

/** Hand what the stream sent to the current view, batched so a burst makes one DOM update. */
function received(type, data) {
  let view;
  try {
    view = JSON.parse(data);
  } catch {
    return;
  }
  const key = type === 'task' ? view.uuid : view.hostname;
  if (!key) return;
  pending.set(`${type}\u0000${key}`, [type, view]);
  flushTimer ??= setTimeout(() => {
    flushTimer = undefined;
    const batch = [...pending.values()];
    pending.clear();
    for (const [t, v] of batch) for (const fn of subscribers[t]) fn(v);
  }, 100);
}

function setLive(state, label) {
  const el = document.getElementById('live');
  el.dataset.live = state;
  el.textContent = label;
}

function connect() {
  stream = new EventSource('api/stream');
  stream.addEventListener('task', (e) => received('task', e.data));
  stream.addEventListener('worker', (e) => received('worker', e.data));
  stream.onopen = () => {
    setLive('live', 'live');
    // Events sent while we were away are lost: reload the current view once.
    if (wasDown) {
      wasDown = false;
      route();
    }
  };
  stream.onerror = () => {
    wasDown = true;
    if (stream.readyState === EventSource.CLOSED) {
      // The browser gave up (an HTTP error): try again ourselves.
      setLive('down', 'disconnected');
      setTimeout(connect, 5000);
    } else {
      setLive('down', 'reconnecting…');
    }
  };
}

// ---------------------------------------------------------------- router

let current = { cleanup: [] };

/** What a view gets: its lifetime, the stream, and timers that stop when the view is left. */
function context() {
  const ctx = {
    cleanup: [],
    alive: true,
    onTask(fn) {
      subscribers.task.add(fn);
      ctx.cleanup.push(() => subscribers.task.delete(fn));
    },
    onWorker(fn) {
      subscribers.worker.add(fn);
      ctx.cleanup.push(() => subscribers.worker.delete(fn));
    },
    every(ms, fn) {
      const id = setInterval(fn, ms);
      ctx.cleanup.push(() => clearInterval(id));
    },
  };
  return ctx;
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [pathPart, queryPart = ''] = raw.split('?');
  const [name, ...rest] = pathPart.split('/');
  let param;
  try {
    param = rest.length ? decodeURIComponent(rest.join('/')) : undefined;
  } catch {
    param = rest.join('/'); // a malformed %-escape: take it as typed
  }
  return { name: name || 'workers', param, params: new URLSearchParams(queryPart) };
}

const VIEWS = { workers: workersView, tasks: tasksView, task: taskView, queues: queuesView, charts: chartsView };

function route() {
  for (const fn of current.cleanup) fn();
  current.alive = false;
  const { name, param, params } = parseHash();
  const view = VIEWS[name] ?? workersView;
  const nav = name === 'task' ? 'tasks' : (VIEWS[name] ? name : 'workers');
  for (const a of document.querySelectorAll('a[data-nav]')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const el = document.getElementById('view');
  el.replaceChildren();
  el.dataset.view = name;
  const ctx = context();
  current = ctx;
  view(el, ctx, param, params).catch((err) => {
    if (ctx.alive) append(el, [h('p', { class: 'error' }, `Could not load this page: ${err.message}`)]);
  });
}

// ---------------------------------------------------------------- workers

async function workersView(el, ctx) {
  const workers = new Map(); // hostname → { view, at: when it arrived (s) }
  const body = h('tbody');
  const summary = h('p', { class: 'muted' });
  const select = h('select', { name: 'worker', required: true });
  append(el, [
    h('h1', {}, 'Workers'), summary,
    h('div', { class: 'scroll' }, h('table', { class: 'grid', id: 'workers' },
      h('thead', {}, h('tr', {}, ['Status', 'Worker', 'PID', 'Pool', 'Active', 'Processed', 'Failed', 'Retried', 'Load', 'Heartbeat', 'Registered', 'Queues', '']
        .map((c) => h('th', {}, c)))),
      body)),
    workerActions(select),
  ]);

  const now = () => Date.now() / 1000;
  const age = (w) => (w.view.heartbeatAge === undefined || w.view.heartbeatAge === null ? undefined : w.view.heartbeatAge + now() - w.at);

  function row(w) {
    const v = w.view;
    const name = v.hostname;
    const size = v.concurrency !== undefined && v.concurrency !== null ? String(v.concurrency) : '';
    const pool = v.pool ? [v.pool, size && `× ${size}`].filter(Boolean).join(' ') : size;
    const registered = v.registered ?? [];
    return h('tr', { 'data-worker': name, class: v.online ? 'online' : 'offline' },
      h('td', { 'data-field': 'status' }, h('span', { class: `badge ${v.online ? 'ok' : 'off'}` }, v.online ? 'online' : 'offline')),
      h('td', { class: 'mono', 'data-field': 'hostname', title: [v.sw_ident, v.sw_ver].filter(Boolean).join(' ') || undefined },
        h('a', { href: `#/tasks${query({ worker: name })}` }, name)),
      h('td', { 'data-field': 'pid' }, v.pid ?? ''),
      h('td', { 'data-field': 'pool' }, pool),
      h('td', { class: 'num', 'data-field': 'active' }, v.active ?? 0),
      h('td', { class: 'num', 'data-field': 'processed' }, v.processed ?? 0),
      h('td', { class: 'num', 'data-field': 'failed' }, v.failed ?? 0),
      h('td', { class: 'num', 'data-field': 'retried' }, v.retried ?? 0),
      h('td', { 'data-field': 'load' }, (v.loadavg ?? []).map((n) => Number(n).toFixed(2)).join(' ')),
      h('td', { 'data-field': 'heartbeat' }, fmtAge(age(w))),
      h('td', { 'data-field': 'registered' }, registered.length
        ? h('details', {}, h('summary', {}, `${registered.length} task${registered.length === 1 ? '' : 's'}`), h('ul', { class: 'plain mono' }, registered.map((r) => h('li', {}, r))))
        : ''),
      h('td', { class: 'mono', 'data-field': 'queues' }, (v.queues ?? []).join(', ')),
      h('td', { class: 'actions' },
        h('button', { type: 'button', 'data-action': 'shutdown', disabled: !v.online, onclick: () => shutdown(name) }, 'Shut down'),
        h('button', { type: 'button', 'data-action': 'grow', title: 'Pool: one more process/thread', disabled: !v.online,
          onclick: () => act(`Grow ${name}`, () => post(`api/worker/pool/grow/${encodeURIComponent(name)}${query({ n: 1 })}`)) }, '+1'),
        h('button', { type: 'button', 'data-action': 'shrink', title: 'Pool: one fewer process/thread', disabled: !v.online,
          onclick: () => act(`Shrink ${name}`, () => post(`api/worker/pool/shrink/${encodeURIComponent(name)}${query({ n: 1 })}`)) }, '−1')));
  }

  function render() {
    const list = [...workers.values()].sort((a, b) => Number(b.view.online) - Number(a.view.online) || a.view.hostname.localeCompare(b.view.hostname));
    // Keep what the reader opened (the registered tasks) open across the updates heartbeats bring.
    const open = new Set([...body.querySelectorAll('tr[data-worker] details[open]')].map((d) => d.closest('tr').dataset.worker));
    replaceChildren(body, list.length ? list.map(row) : h('tr', {}, h('td', { colspan: 13, class: 'muted' }, 'No worker seen yet. Start one with events on: celeriac -A <module> worker -E (or celery worker -E).')));
    for (const tr of body.querySelectorAll('tr[data-worker]')) if (open.has(tr.dataset.worker)) tr.querySelector('details')?.setAttribute('open', '');
    const online = list.filter((w) => w.view.online).length;
    summary.textContent = `${online} online, ${list.length - online} offline`;
    const names = list.map((w) => w.view.hostname);
    if (names.join('\n') !== [...select.options].map((o) => o.value).join('\n')) {
      const chosen = select.value;
      replaceChildren(select, names.map((n) => h('option', { value: n, selected: n === chosen }, n)));
    }
  }

  function upsert(view) {
    workers.set(view.hostname, { view, at: now() });
  }

  async function shutdown(name) {
    if (!confirm(`Shut down worker ${name}? It finishes its running tasks and exits.`)) return;
    await act(`Shut down ${name}`, () => post(`api/worker/shutdown/${encodeURIComponent(name)}`));
  }

  async function reload() {
    const { workers: list } = await api(`${API}/workers`);
    if (!ctx.alive) return;
    for (const w of list ?? []) upsert(w);
    render();
  }
  await reload();
  // The stream sends changes; this also picks up what an inspect round learnt without an event.
  ctx.every(10_000, () => reload().catch(() => undefined));
  ctx.onWorker((w) => {
    upsert(w);
    render();
  });
  ctx.every(1000, () => {
    for (const tr of body.querySelectorAll('tr[data-worker]')) {
      const w = workers.get(tr.dataset.worker);
      const cell = tr.querySelector('td[data-field="heartbeat"]');
      if (w && cell) cell.textContent = fmtAge(age(w));
    }
  });
}

/** The small forms for the remote-control actions that need more than a click. */
function workerActions(select) {
  const field = (label, attrs) => h('label', {}, label, h('input', attrs));
  const worker = () => select.value;
  const form = (title, action, fields, run) => h('form', { class: 'action', 'data-form': action, onsubmit: (e) => {
    e.preventDefault();
    if (!worker()) return notice('Pick a worker first.', 'error');
    const data = Object.fromEntries(new FormData(e.target));
    act(`${title} on ${worker()}`, () => run(encodeURIComponent(worker()), data));
  } }, h('strong', {}, title), fields, h('button', { type: 'submit' }, 'Apply'));

  return h('section', { class: 'panel' },
    h('h2', {}, 'Remote control'),
    h('label', { class: 'pick' }, 'Worker ', select),
    h('div', { class: 'forms' },
      form('Autoscale', 'autoscale', [field('min', { name: 'min', type: 'number', min: 0, required: true, size: 4 }), field('max', { name: 'max', type: 'number', min: 1, required: true, size: 4 })],
        (w, d) => post(`api/worker/pool/autoscale/${w}${query({ min: d.min, max: d.max })}`)),
      form('Add consumer', 'add-consumer', [field('queue', { name: 'queue', required: true, placeholder: 'queue name' })],
        (w, d) => post(`api/worker/queue/add-consumer/${w}${query({ queue: d.queue })}`)),
      form('Cancel consumer', 'cancel-consumer', [field('queue', { name: 'queue', required: true, placeholder: 'queue name' })],
        (w, d) => post(`api/worker/queue/cancel-consumer/${w}${query({ queue: d.queue })}`)),
      form('Rate limit', 'rate-limit', [field('task', { name: 'task', required: true, placeholder: 'task name' }), field('rate', { name: 'rate', required: true, placeholder: '10/m', size: 6 })],
        (w, d) => post(`api/task/rate-limit/${encodeURIComponent(d.task)}${query({ workername: decodeURIComponent(w), ratelimit: d.rate })}`)),
      form('Time limit', 'time-limit', [field('task', { name: 'task', required: true, placeholder: 'task name' }),
        field('soft (s)', { name: 'soft', type: 'number', min: 0, step: 'any', size: 5 }), field('hard (s)', { name: 'hard', type: 'number', min: 0, step: 'any', size: 5 })],
      (w, d) => post(`api/task/timeout/${encodeURIComponent(d.task)}${query({ workername: decodeURIComponent(w), soft: d.soft, hard: d.hard })}`))));
}

// ---------------------------------------------------------------- tasks

/** datetime-local text → unix seconds (or undefined). */
function toUnix(local) {
  if (!local) return undefined;
  const ms = new Date(local).getTime();
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

/** The server's filters, for rows the stream brings: name and worker exact, time on the last change. */
function taskMatches(t, f) {
  const has = (hay, needle) => String(hay ?? '').toLowerCase().includes(needle.toLowerCase());
  if (f.state && t.state !== f.state) return false;
  if (f.name && t.name !== f.name) return false;
  if (f.worker && t.worker !== f.worker) return false;
  if (f.since && toUnix(f.since) > t.timestamp) return false;
  if (f.until && toUnix(f.until) < t.timestamp) return false;
  if (f.search && !(t.uuid.startsWith(f.search) || has(t.name, f.search) || has(t.args, f.search) || has(t.kwargs, f.search))) return false;
  return true;
}

function taskRow(t) {
  const outcome = t.exception ?? t.result;
  return h('tr', { 'data-task': t.uuid, class: `state-row-${String(t.state).toLowerCase()}` },
    h('td', { 'data-field': 'uuid' }, taskLink(t.uuid, t.uuid.slice(0, 8))),
    h('td', { class: 'mono', 'data-field': 'name' }, t.name ?? ''),
    h('td', { 'data-field': 'state' }, stateBadge(t.state)),
    clipCell(t.args, 'args', 40),
    clipCell(t.kwargs, 'kwargs', 40),
    h('td', { class: `mono ${t.exception ? 'error' : ''}`, 'data-field': 'outcome', title: text(outcome) || undefined }, clip(text(outcome), 50)),
    h('td', { class: 'num', 'data-field': 'runtime' }, fmtRuntime(t.runtime)),
    h('td', { class: 'mono', 'data-field': 'worker' }, t.worker ?? ''),
    h('td', { class: 'num', 'data-field': 'retries' }, t.retries ?? 0),
    timeCell(t.received),
    timeCell(t.started),
    timeCell(finishedAt(t)));
}

async function tasksView(el, ctx, _param, params) {
  const f = {
    state: params.get('state') ?? '', name: params.get('name') ?? '', worker: params.get('worker') ?? '',
    since: params.get('since') ?? '', until: params.get('until') ?? '', search: params.get('search') ?? '',
  };
  const offset = Math.max(0, Number(params.get('offset')) || 0);
  const go = (next) => { location.hash = `#/tasks${query(next)}`; };

  const input = (name, attrs = {}) => h('input', { name, value: f[name], ...attrs });
  const paused = h('input', { type: 'checkbox', name: 'paused' });
  const filters = h('form', { class: 'filters', id: 'task-filters', onsubmit: (e) => {
    e.preventDefault();
    go(Object.fromEntries(new FormData(e.target)));
  } },
  h('label', {}, 'State ', h('select', { name: 'state', onchange: (e) => e.target.form.requestSubmit() },
    h('option', { value: '' }, 'any'), STATES.map((s) => h('option', { value: s, selected: s === f.state }, s)))),
  h('label', {}, 'Name ', input('name', { placeholder: 'task name', size: 16, list: 'task-names' })),
  h('label', {}, 'Worker ', input('worker', { placeholder: 'hostname', size: 14, list: 'worker-names' })),
  h('datalist', { id: 'task-names' }), h('datalist', { id: 'worker-names' }),
  h('label', {}, 'From ', input('since', { type: 'datetime-local', step: 1 })),
  h('label', {}, 'To ', input('until', { type: 'datetime-local', step: 1 })),
  h('label', {}, 'Search ', input('search', { type: 'search', placeholder: 'id or text in args/kwargs', size: 24 })),
  h('button', { type: 'submit' }, 'Filter'),
  h('button', { type: 'button', onclick: () => go({}) }, 'Clear'));

  const body = h('tbody');
  const counter = h('span', { class: 'muted', id: 'task-count' });
  const pager = h('div', { class: 'pager' });
  append(el, [
    h('h1', {}, 'Tasks ', counter, ' ', h('label', { class: 'pause', title: 'New tasks are not added while paused; the rows shown still change state' }, paused, ' pause new rows')),
    filters,
    h('div', { class: 'scroll' }, h('table', { class: 'grid', id: 'tasks' },
      h('thead', {}, h('tr', {}, ['ID', 'Name', 'State', 'Args', 'Kwargs', 'Result / exception', 'Runtime', 'Worker', 'Retries', 'Received', 'Started', 'Finished']
        .map((c) => h('th', {}, c)))),
      body)),
    pager,
  ]);

  const listUrl = `${API}/tasks${query({ state: f.state, name: f.name, worker: f.worker, since: toUnix(f.since), until: toUnix(f.until),
    search: f.search, limit: TASK_PAGE, offset })}`;
  const first = await api(listUrl);
  if (!ctx.alive) return;
  let total = Number(first.total ?? first.tasks.length);
  for (const t of first.tasks) body.append(taskRow(t));

  // Under a flood the stream sends only the latest changes of each tick, so the count and a row's state
  // can fall behind: the page is read again now and then, and soon after a burst of new tasks.
  let fresh = 0;
  let reloading;
  async function reload() {
    reloading = undefined;
    fresh = 0;
    const r = await api(listUrl);
    if (!ctx.alive || paused.checked) return;
    total = Number(r.total ?? r.tasks.length);
    replaceChildren(body, r.tasks.map(taskRow));
    renderCount();
  }
  const reloadSoon = () => { reloading ??= setTimeout(() => reload().catch(() => undefined), 2000); };
  ctx.cleanup.push(() => clearTimeout(reloading));
  ctx.every(15_000, () => { if (!reloading) reload().catch(() => undefined); });

  function renderCount() {
    counter.textContent = `${total} task${total === 1 ? '' : 's'}`;
    const last = Math.min(total, offset + body.children.length);
    replaceChildren(pager,
      h('button', { type: 'button', disabled: offset === 0, onclick: () => go({ ...f, offset: Math.max(0, offset - TASK_PAGE) }) }, '← Newer'),
      h('span', { class: 'muted' }, total ? ` ${offset + 1}–${last} of ${total} ` : ' none '),
      h('button', { type: 'button', disabled: offset + TASK_PAGE >= total, onclick: () => go({ ...f, offset: offset + TASK_PAGE }) }, 'Older →'));
    if (!body.children.length) body.append(h('tr', { class: 'empty' }, h('td', { colspan: 12, class: 'muted' }, 'No task matches. Tasks appear here as workers with events on (-E) receive them.')));
  }
  renderCount();
  fillNames(filters).catch(() => undefined);

  ctx.onTask((t) => {
    const old = body.querySelector(`tr[data-task="${CSS.escape(t.uuid)}"]`);
    if (old) {
      if (taskMatches(t, f)) {
        old.replaceWith(taskRow(t));
      } else {
        old.remove(); // it left the filter (a STARTED task finished, say)
        total = Math.max(0, total - 1);
        renderCount();
      }
      return;
    }
    if (offset !== 0 || paused.checked || !taskMatches(t, f)) return;
    body.querySelector('tr.empty')?.remove();
    body.prepend(taskRow(t));
    total += 1;
    fresh += 1;
    if (fresh > TASK_PAGE / 2) reloadSoon();
    while (body.children.length > TASK_PAGE) body.lastElementChild.remove();
    renderCount();
  });
}

/** The name and worker fields offer the names seen so far (Flower's task types, the workers). */
async function fillNames(form) {
  const [types, { workers }] = await Promise.all([api('api/task/types'), api(`${API}/workers`)]);
  const fill = (id, names) => replaceChildren(form.querySelector(`datalist#${id}`), names.map((n) => h('option', { value: n })));
  fill('task-names', types['task-types'] ?? []);
  fill('worker-names', (workers ?? []).map((w) => w.hostname));
}

// ---------------------------------------------------------------- one task

async function taskView(el, ctx, id) {
  if (!id) {
    location.hash = '#/tasks';
    return;
  }
  let task;
  let refetching;
  // What the user set in the revoke form: a live update re-renders the page and must not undo it.
  const form = { terminate: false, signal: 'SIGTERM' };

  async function load() {
    try {
      task = await api(`${API}/task/${encodeURIComponent(id)}`);
    } catch (err) {
      if (!String(err.message).startsWith('404')) throw err;
      task = undefined;
    }
    if (ctx.alive) render();
  }

  function refetchSoon() {
    refetching ??= setTimeout(() => {
      refetching = undefined;
      if (ctx.alive) load().catch((err) => notice(`Could not reload the task: ${err.message}`, 'error'));
    }, 250);
  }
  ctx.cleanup.push(() => clearTimeout(refetching));

  function render() {
    if (!task) {
      replaceChildren(el,
        h('h1', {}, 'Task ', h('span', { class: 'mono' }, id)),
        h('p', { class: 'muted', 'data-field': 'state' }, 'Not seen yet: waiting for its events (workers need -E to send them).'));
      return;
    }
    const t = task;
    const field = (label, key, value, attrs = {}) => (value === undefined || value === null || value === '' ? null
      : [h('dt', {}, label), h('dd', { 'data-field': key, ...attrs }, value)]);
    const terminate = h('input', { type: 'checkbox', name: 'terminate', onchange: () => { form.terminate = terminate.checked; } });
    terminate.checked = form.terminate;
    const signal = h('select', { name: 'signal', onchange: () => { form.signal = signal.value; } }, ['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGUSR1'].map((s) => h('option', { value: s }, s)));
    signal.value = form.signal;
    const related = (label, list) => (list && list.length ? [h('h2', {}, `${label} (${list.length})`), h('ul', { class: 'plain', 'data-field': label.toLowerCase() },
      list.map((c) => h('li', {}, stateBadge(c.state), ' ', taskLink(c.uuid), ' ', h('span', { class: 'mono' }, c.name ?? ''))))] : null);

    replaceChildren(el,
      h('h1', {}, h('span', { class: 'mono', 'data-field': 'name' }, t.name ? h('a', { href: `#/tasks${query({ name: t.name })}`, title: 'Tasks of this name' }, t.name) : '(unknown task)'),
        ' ', stateBadge(t.state, { 'data-field': 'state' })),
      h('div', { class: 'task-actions' },
        h('button', { type: 'button', 'data-action': 'revoke', disabled: READY.has(t.state), onclick: async () => {
          const how = terminate.checked ? ` and terminate it with ${signal.value}` : '';
          if (terminate.checked && !confirm(`Revoke ${t.uuid}${how}?`)) return;
          if (await act('Revoke', () => post(`api/task/revoke/${encodeURIComponent(t.uuid)}${query({ terminate: terminate.checked ? 'true' : undefined, signal: terminate.checked ? signal.value : undefined })}`))) refetchSoon();
        } }, 'Revoke'),
        h('label', {}, terminate, ' terminate if running, with '), signal,
        h('button', { type: 'button', 'data-action': 'retry', disabled: !RETRYABLE.has(t.state), title: 'Send it again with the same name, args, kwargs and queue', onclick: async () => {
          try {
            const { task_id: newId } = await post(`${API}/task/${encodeURIComponent(t.uuid)}/retry`);
            notice(`Sent again as ${newId}`);
            location.hash = `#/task/${encodeURIComponent(newId)}`;
          } catch (err) {
            notice(`Retry failed: ${err.message}`, 'error');
          }
        } }, 'Retry')),
      h('dl', { class: 'fields' },
        field('ID', 'uuid', t.uuid, { class: 'mono' }),
        field('Worker', 'worker', t.worker ? h('a', { href: `#/tasks${query({ worker: t.worker })}`, title: 'Tasks of this worker' }, t.worker) : undefined, { class: 'mono' }),
        field('Sent by', 'client', t.client, { class: 'mono' }),
        field('Queue', 'routing_key', t.routing_key ? [t.routing_key, t.exchange ? ` (exchange ${t.exchange})` : ''] : undefined, { class: 'mono' }),
        field('Args', 'args', text(t.args), { class: 'mono' }),
        field('Kwargs', 'kwargs', text(t.kwargs), { class: 'mono' }),
        field('Result', 'result', t.result === undefined || t.result === null ? undefined : text(t.result), { class: 'mono' }),
        field('Exception', 'exception', t.exception, { class: 'mono error' }),
        field('Runtime', 'runtime', fmtRuntime(t.runtime)),
        field('Retries', 'retries', String(t.retries ?? 0)),
        field('ETA', 'eta', t.eta), field('Expires', 'expires', t.expires),
        ['sent', 'received', 'started', 'succeeded', 'failed', 'retried', 'revoked', 'rejected'].map((k) => field(k[0].toUpperCase() + k.slice(1), k,
          t[k] ? `${fmtTime(t[k])} (${new Date(t[k] * 1000).toISOString()})` : undefined)),
        field('Last change', 'timestamp', t.timestamp ? fmtTime(t.timestamp) : undefined),
        field('Parent', 'parent', t.parent_id ? [t.parent ? stateBadge(t.parent.state) : null, ' ', taskLink(t.parent_id)] : undefined),
        field('Root', 'root', t.root_id && t.root_id !== t.uuid ? taskLink(t.root_id) : undefined),
        field('Group', 'group_id', t.group_id, { class: 'mono' })),
      t.traceback ? [h('h2', {}, 'Traceback'), h('pre', { class: 'traceback', 'data-field': 'traceback' }, t.traceback)] : null,
      related('Children', t.children),
      related('Group', (t.group ?? []).filter((g) => g.uuid !== t.uuid)));
  }

  await load();
  ctx.onTask((t) => {
    if (!ctx.alive) return;
    if (t.uuid === id && task) {
      // Show the new state at once; relations come with the refetch.
      task = { ...task, ...t };
      render();
      refetchSoon();
    } else if (t.uuid === id || t.parent_id === id || (task?.group_id && t.group_id === task.group_id)) {
      refetchSoon();
    }
  });
}

// ---------------------------------------------------------------- queues

async function queuesView(el, ctx) {
  const body = h('tbody');
  const transport = h('span', { class: 'muted' });
  const detail = h('section', { id: 'queue-detail' });
  append(el, [
    h('h1', {}, 'Queues ', transport),
    h('table', { class: 'grid', id: 'queues' },
      h('thead', {}, h('tr', {}, ['Queue', 'Messages', 'Dead letters', 'Consumers', ''].map((c) => h('th', {}, c)))),
      body),
    detail,
  ]);

  function row(q) {
    return h('tr', { 'data-queue': q.name },
      h('td', { class: 'mono', 'data-field': 'name' }, q.name),
      h('td', { class: 'num', 'data-field': 'messages' }, q.messages ?? ''),
      h('td', { class: `num ${q.dlq ? 'error' : ''}`, 'data-field': 'dlq' }, q.dlq ?? ''),
      h('td', { class: 'num', 'data-field': 'consumers' }, q.consumers ?? ''),
      h('td', { class: 'actions' },
        h('button', { type: 'button', 'data-action': 'dlq', onclick: () => showDeadLetters(q.name) }, 'Show dead letters'),
        h('button', { type: 'button', 'data-action': 'purge', onclick: () => askPurge(q.name) }, 'Purge…')));
  }

  async function refresh() {
    const r = await api(`${API}/queues`);
    if (!ctx.alive) return;
    transport.textContent = r.transport ? `(${r.transport})` : '';
    const queues = r.queues ?? [];
    replaceChildren(body, queues.length ? queues.map(row) : h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No queue known yet.')));
  }

  function askPurge(name) {
    const confirmBox = h('input', { name: 'confirm', autocomplete: 'off', placeholder: name, 'aria-label': `Type ${name} to confirm` });
    const button = h('button', { type: 'submit', class: 'danger', disabled: true }, 'Purge');
    confirmBox.addEventListener('input', () => { button.disabled = confirmBox.value !== name; });
    replaceChildren(detail,
      h('h2', {}, 'Purge ', h('span', { class: 'mono' }, name)),
      h('form', { class: 'panel', 'data-form': 'purge', onsubmit: async (e) => {
        e.preventDefault();
        if (confirmBox.value !== name) return;
        const ok = await act(`Purge ${name}`, async () => {
          const r = await post(`${API}/queue/${encodeURIComponent(name)}/purge`, { confirm: confirmBox.value });
          return { message: `${r.purged} message${r.purged === 1 ? '' : 's'} deleted` };
        });
        if (ok) {
          detail.replaceChildren();
          await refresh();
        }
      } },
      h('p', {}, 'This deletes every waiting message in the queue. Type the queue name to confirm: '),
      confirmBox, ' ', button, ' ', h('button', { type: 'button', onclick: () => detail.replaceChildren() }, 'Cancel')));
    confirmBox.focus();
  }

  async function showDeadLetters(name) {
    replaceChildren(detail, h('p', { class: 'muted' }, 'Loading…'));
    try {
      const r = await api(`${API}/queue/${encodeURIComponent(name)}/dlq${query({ limit: 50 })}`);
      const messages = r.messages ?? [];
      replaceChildren(detail,
        h('h2', {}, 'Dead letters in ', h('span', { class: 'mono' }, r.queue ?? `${name}.dlq`), ` (${messages.length}${messages.length === 50 ? '+' : ''})`),
        messages.length ? h('ol', { class: 'dlq' }, messages.map((m) => h('li', { 'data-dlq-message': m.id ?? '' },
          h('div', {}, m.task ? h('span', { class: 'mono' }, m.task) : null, ' ', m.id ? taskLink(m.id) : null),
          m.headers ? h('details', {}, h('summary', {}, 'headers'), h('pre', {}, JSON.stringify(m.headers, null, 2))) : null,
          h('pre', { class: 'raw' }, m.raw ?? ''))))
          : h('p', { class: 'muted' }, 'No dead-lettered message.'));
    } catch (err) {
      replaceChildren(detail, h('p', { class: 'error' }, `Could not read the dead-letter queue: ${err.message}`));
    }
  }

  await refresh();
  ctx.every(3000, () => refresh().catch(() => undefined));
}

// ---------------------------------------------------------------- charts

const COLORS = { received: '#4c78a8', succeeded: '#2e9e5b', failed: '#d64545', retried: '#e89b2d', p50: '#4c78a8', p95: '#e89b2d', p99: '#d64545' };
const DASHED = new Set(['received', 'p95']);
const PALETTE = ['#4c78a8', '#e45756', '#54a24b', '#f58518', '#b279a2', '#72b7b2', '#9d755d', '#eeca3b', '#ff9da6', '#bab0ac'];
const SVG = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** A round step for axis ticks: 1, 2 or 5 × 10^n. */
function niceStep(max, ticks = 4) {
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * mag).find((st) => st >= raw) ?? raw;
}

/**
 * A line chart in inline SVG: series = [{ name, color, points: [[t, value|null]] }]; null breaks the line.
 * The time axis spans the whole window [from, to] (unix s), so a few points sit where they belong in it.
 */
function lineChart(title, series, { fmt = (v) => String(v), id, from, to }) {
  const W = 1100;
  const H = 230;
  const L = 56;
  const R = 12;
  const T = 10;
  const B = 26;
  const all = series.flatMap((se) => se.points).filter(([, v]) => v !== null && v !== undefined && Number.isFinite(v));
  const figure = h('figure', { class: 'chart', 'data-chart': id });
  append(figure, [h('figcaption', {}, title)]);
  if (!all.length) {
    append(figure, [h('p', { class: 'muted' }, 'No data in this window yet.')]);
    return figure;
  }
  const ts = series.flatMap((se) => se.points.map(([t]) => t));
  const t0 = Math.min(from ?? Infinity, ...ts);
  const t1 = Math.max(to ?? -Infinity, ...ts, t0 + 1);
  const top = Math.max(...all.map(([, v]) => v));
  const step = top > 0 ? niceStep(top) : 1;
  const yMax = top > 0 ? Math.ceil(top / step) * step : 1;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / yMax) * (H - T - B);

  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title });
  for (let v = 0; v <= yMax + step / 2; v += step) {
    svg.append(s('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }), s('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'tick' }, fmt(v)));
  }
  for (let i = 0; i <= 4; i += 1) {
    const t = t0 + ((t1 - t0) * i) / 4;
    const d = new Date(t * 1000);
    svg.append(s('text', { x: x(t), y: H - 8, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle', class: 'tick' }, `${pad(d.getHours())}:${pad(d.getMinutes())}`));
  }
  svg.append(s('line', { x1: L, x2: L, y1: T, y2: H - B, class: 'axis' }), s('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'axis' }));
  for (const se of series) {
    let d = '';
    let pen = false;
    for (const [t, v] of se.points) {
      if (v === null || v === undefined || !Number.isFinite(v)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    // Wider dashed lines under solid ones, so a series equal to another (received = succeeded) still shows.
    if (d) svg.append(s('path', { d, fill: 'none', stroke: se.color, 'stroke-width': se.dashed ? 3.5 : 2, 'stroke-dasharray': se.dashed ? '7 4' : undefined, 'data-series': se.name }, s('title', {}, se.name)));
    const real = se.points.filter(([, v]) => v !== null && v !== undefined && Number.isFinite(v));
    if (real.length <= 60) for (const [t, v] of real) svg.append(s('circle', { cx: x(t), cy: y(v), r: 2.5, fill: se.color }, s('title', {}, `${se.name} ${fmt(v)} at ${fmtTime(t)}`)));
  }
  append(figure, [svg, h('div', { class: 'legend' }, series.map((se) => h('span', {}, h('i', { style: `background:${se.color}` }), se.name)))]);
  return figure;
}

async function chartsView(el, ctx, _param, params) {
  const minutes = Number(params.get('minutes')) || 60;
  const charts = h('div', { class: 'charts' });
  append(el, [
    h('h1', {}, 'Charts'),
    h('p', { class: 'filters' }, 'Window: ', [15, 60, 360, 1440].map((m) => h('a', { href: `#/charts?minutes=${m}`, class: m === minutes ? 'chosen' : undefined, 'data-minutes': m },
      m < 60 ? `${m} min` : `${m / 60} h`))),
    charts,
  ]);

  async function draw() {
    const r = await api(`${API}/charts${query({ minutes })}`);
    if (!ctx.alive) return;
    const buckets = [...(r.buckets ?? [])].sort((a, b) => a.t - b.t);
    const width = r.bucketSeconds ?? (buckets.length > 1 ? Math.min(...buckets.slice(1).map((b, i) => b.t - buckets[i].t)) : 60);
    const to = Date.now() / 1000;
    const from = Math.floor((to - minutes * 60) / width) * width; // the first bucket's start: the same axis for every chart
    // Every bucket of the window, so a minute without tasks is a 0 (throughput) or a gap (percentiles).
    const byT = new Map(buckets.map((b) => [b.t, b]));
    const times = [];
    for (let t = Math.floor(from / width) * width; t <= to; t += width) times.push(t);
    const seen = new Set(times);
    for (const b of buckets) if (!seen.has(b.t)) times.push(b.t);
    times.sort((a, b) => a - b);
    const perBucket = (key) => ({ name: key, color: COLORS[key], dashed: DASHED.has(key), points: times.map((t) => [t, byT.get(t)?.[key] ?? 0]) });
    const pct = (key) => ({ name: key, color: COLORS[key], dashed: DASHED.has(key), points: times.map((t) => [t, byT.get(t)?.[key] ?? null]) });
    const queueSamples = [...(r.queues ?? [])].sort((a, b) => a.t - b.t);
    const names = [...new Set(queueSamples.flatMap((q) => Object.keys(q.lengths ?? {})))].sort();
    const queueSeries = names.map((name, i) => ({ name, color: PALETTE[i % PALETTE.length], points: queueSamples.map((q) => [q.t, q.lengths?.[name] ?? null]) }));
    replaceChildren(charts,
      lineChart(`Throughput (tasks per ${width === 60 ? 'minute' : fmtAge(width)})`, ['received', 'succeeded', 'failed', 'retried'].map(perBucket),
        { fmt: (v) => String(Math.round(v * 100) / 100), id: 'throughput', from, to }),
      lineChart('Runtime percentiles', ['p50', 'p95', 'p99'].map(pct), { fmt: (v) => (v === 0 ? '0' : fmtRuntime(v)), id: 'runtime', from, to }),
      lineChart('Queue lengths', queueSeries, { fmt: (v) => String(Math.round(v)), id: 'queues', from, to }));
  }

  await draw();
  ctx.every(5000, () => draw().catch(() => undefined));
}

// ---------------------------------------------------------------- start

window.addEventListener('hashchange', route);
connect();
route();
