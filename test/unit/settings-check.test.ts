// Every setting is honest: unknown names are a warning naming the closest known setting (an error with
// strict_settings), values Celeriac cannot honour are refused at start-up naming the setting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac } from '../../src/index.js';
import { createLogger } from '../../src/app/log.js';
import { closestName, knownSettingNames } from '../../src/app/settings-check.js';
import { createSettings, retriesOnStartup } from '../../src/app/settings.js';

function captured(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, logger: createLogger('warning', (l) => lines.push(l)) };
}

test('a misspelt setting is a warning at start-up naming the closest known setting, once', async () => {
  const { lines, logger } = captured();
  const app = new Celeriac('t', { broker: 'memory://', backend: 'memory://', logger });
  app.conf.task_acks_lates = true;
  await app.broker();
  await app.backend();
  const warnings = lines.filter((l) => /task_acks_lates/.test(l));
  assert.equal(warnings.length, 1, lines.join(''));
  assert.match(warnings[0]!, /WARNING.*Unknown setting 'task_acks_lates': it has no effect\. Did you mean 'task_acks_late'\?/);
  await app.close();
});

test("new Celeriac('x', { brokr }) warns: did you mean 'broker'", async () => {
  const { lines, logger } = captured();
  const app = new Celeriac('x', { brokr: 'memory://', backend: 'memory://', logger, taskAcksLates: true });
  app.checkSettings();
  assert.match(lines.join(''), /Unknown setting 'brokr': it has no effect\. Did you mean 'broker'\?/);
  // A camelCase typo gets the camelCase spelling back.
  assert.match(lines.join(''), /Unknown setting 'taskAcksLates': it has no effect\. Did you mean 'taskAcksLate'\?/);
  await app.close();
});

test('strict_settings (or CELERIAC_STRICT_SETTINGS=1) makes unknown names an error at start-up', async () => {
  const app = new Celeriac('x', { brokr: 'memory://', strict_settings: true, logger: createLogger('critical') });
  await assert.rejects(app.broker(), (err: Error) => err.name === 'ImproperlyConfigured' && /'brokr'.*Did you mean 'broker'\?.*strict_settings/.test(err.message));
  const viaEnv = new Celeriac('x', { broker: 'memory://', logger: createLogger('critical') });
  viaEnv.conf.task_acks_lates = true;
  process.env.CELERIAC_STRICT_SETTINGS = '1';
  try {
    assert.throws(() => viaEnv.checkSettings(), /'task_acks_lates'.*Did you mean 'task_acks_late'\?/);
  } finally {
    delete process.env.CELERIAC_STRICT_SETTINGS;
  }
  viaEnv.checkSettings(); // without the flag it is a warning again
});

test('a Celery setting Celeriac does not implement is named as such; old uppercase names map to the new ones', () => {
  const { lines, logger } = captured();
  const app = new Celeriac('x', { broker: 'memory://', logger, task_annotations: { '*': { rate_limit: '10/s' } }, CELERYD_CONCURRENCY: 3 });
  app.checkSettings();
  assert.match(lines.join(''), /Setting 'task_annotations' is a Celery setting that Celeriac does not implement; it has no effect/);
  assert.equal(app.conf.worker_concurrency, 3);
  assert.doesNotMatch(lines.join(''), /CELERYD_CONCURRENCY/);
});

test('known names, camelCase aliases and app.conf.update raise no warning', () => {
  const { lines, logger } = captured();
  const app = new Celeriac('x', { broker: 'memory://', logger, taskAcksLate: true, worker_prefetch_multiplier: 1, timezone: 'Europe/Paris', enable_utc: false });
  app.configure({ resultExpires: 10, task_default_queue: 'q' });
  app.checkSettings();
  assert.deepEqual(lines, []);
});

test('settings Celeriac cannot honour are refused at start-up with an error naming them', async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ event_serializer: 'msgpack' }, /event_serializer = "msgpack" is not yet supported/],
    [{ task_create_missing_queues: false }, /task_create_missing_queues = false is not yet supported/],
    [{ result_compression: 'gzip' }, /result_compression = "gzip" is not yet supported/],
    [{ result_backend_max_retries: 5 }, /result_backend_max_retries = 5 is not yet supported.*retry_policy/],
    [{ task_default_routing_key: 'elsewhere' }, /task_default_routing_key = "elsewhere" is not yet supported/],
    [{ worker_log_format: '%(asctime)s %(funcName)s %(message)s' }, /worker_log_format .* uses %\(funcName\)s, which Celeriac does not fill/],
  ];
  for (const [settings, error] of cases) {
    const app = new Celeriac('x', { broker: 'memory://', logger: createLogger('critical'), ...settings });
    await assert.rejects(app.broker(), (err: Error) => err.name === 'ImproperlyConfigured' && error.test(err.message), `${JSON.stringify(settings)} must be refused`);
    // The same worker fails its start the same way.
    await assert.rejects(app.worker().start(), error);
  }
  // Their defaults (and false for the event settings) start normally.
  const ok = new Celeriac('x', { broker: 'memory://', logger: createLogger('critical'), worker_send_task_events: false, task_send_sent_event: false, task_default_routing_key: 'celery' });
  await ok.broker();
  await ok.close();
});

test('worker_log_format is honoured by the worker logger', async () => {
  const lines: string[] = [];
  const app = new Celeriac('x', { broker: 'memory://', backend: 'memory://', logger: createLogger('info', (l) => lines.push(l)) });
  app.conf.worker_log_format = '%(levelname)-8s|%(processName)s|%(process)d|%(message)s';
  app.task('t.add', (a: number, b: number) => a + b);
  const w = app.worker({ concurrency: 1 });
  await w.start();
  const r = await app.tasks.get('t.add')!.delay(1, 2);
  assert.equal(await r.get({ timeout: 5000 }), 3);
  await w.close();
  await app.close();
  const line = lines.find((l) => /succeeded/.test(l));
  assert.ok(line, lines.join(''));
  assert.match(line!, new RegExp(`^INFO    \\|MainProcess\\|${process.pid}\\|Task t\\.add\\[[0-9a-f-]+\\] succeeded in [0-9.]+s: 3\\n$`));
});

test('closest-name suggestions: typos, swaps and nothing for unrelated names', () => {
  const names = [...knownSettingNames()];
  assert.equal(closestName('task_acks_lates', names), 'task_acks_late');
  assert.equal(closestName('worker_prefecth_multiplier', names), 'worker_prefetch_multiplier');
  assert.equal(closestName('result_backed', names), 'result_backend');
  assert.equal(closestName('completely_unrelated', names), undefined);
});

test('broker_connection_retry_on_startup follows broker_connection_retry when unset, as Celery 5.6', () => {
  assert.equal(retriesOnStartup(createSettings()), true);
  assert.equal(retriesOnStartup(createSettings({ broker_connection_retry: false })), false);
  assert.equal(retriesOnStartup(createSettings({ broker_connection_retry: false, broker_connection_retry_on_startup: true })), true);
  assert.equal(retriesOnStartup(createSettings({ broker_connection_retry_on_startup: false })), false);
});

test('task_default_rate_limit limits tasks that have no rate_limit of their own', async () => {
  const app = new Celeriac('x', { broker: 'memory://', backend: 'memory://', logger: createLogger('critical'), task_default_rate_limit: '2/s' });
  const starts: number[] = [];
  app.task('t.limited', () => starts.push(Date.now()));
  app.task('t.own', () => 1, { rateLimit: 0 });
  const w = app.worker({ concurrency: 4 });
  await w.start();
  try {
    assert.equal(w.rateLimiter.has('t.limited'), true);
    assert.equal(w.rateLimiter.has('t.own'), false, 'a task\'s own rate_limit (0: none) wins over the default');
    const rs = await Promise.all([1, 2, 3].map(() => app.tasks.get('t.limited')!.delay()));
    await Promise.all(rs.map((r) => r.get({ timeout: 10_000 })));
    starts.sort((a, b) => a - b);
    // 2 per second: the third starts about a second after the first (a margin for a loaded machine).
    assert.ok(starts[2]! - starts[0]! >= 700, `three tasks started within ${starts[2]! - starts[0]!} ms`);
  } finally {
    await w.close();
    await app.close();
  }
});
