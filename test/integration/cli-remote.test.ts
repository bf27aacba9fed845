// celeriac inspect, control, status and events against CLI workers on Redis: Celery's output, --json,
// exit code 69 when no node replied or the broker is away, usage errors, and the duplicate-nodename
// warning two workers with one -n get.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { AMQP_URL, requireRabbit, requireRedis, redisDb, uniqueName, eventually } from '../helpers/services.js';
import { CLI, runCli } from '../helpers/cli.js';

const BROKER = redisDb(7);
const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, env, 60_000);

interface CliWorker {
  proc: ChildProcess;
  log: () => string;
  stop: () => Promise<number | null>;
}

const workers: CliWorker[] = [];
after(async () => {
  for (const w of workers) await w.stop();
});

async function startWorker(queue: string, name: string, extra: string[] = []): Promise<CliWorker> {
  const proc = spawn(process.execPath, [...CLI, '-A', 'test/fixtures/cli-app.ts', '-b', BROKER, '--result-backend', BROKER, 'worker', '-c', '2', '-l', 'info', '-n', name, ...extra], {
    env: { ...process.env, CELERIAC_TEST_QUEUE: queue },
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  const w: CliWorker = {
    proc,
    log: () => out,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
  workers.push(w);
  await eventually(() => out.includes(`${name} ready.`), `${name} ready`, 30_000);
  return w;
}

before(requireRedis);

test('inspect, control and status print replies as Celery does; --json; exit 69 when no node replied', async () => {
  const q = uniqueName('cliremote');
  const node = `${q}@cli`;
  const common = ['-A', 'test/fixtures/cli-app.ts', '-b', BROKER];
  const worker = await startWorker(q, node, ['-E']);
  assert.match(worker.log(), /\.> task events: ON\n/, 'the banner says -E is on, as Celery\'s');
  const d = ['-d', node];

  const ping = await cli([...common, 'inspect', 'ping', ...d]);
  assert.equal(ping.code, 0, ping.stderr);
  assert.equal(ping.stdout, `->  ${node}: OK\n        pong\n\n1 node online.\n`);
  const registered = await cli([...common, 'inspect', 'registered', ...d]);
  assert.match(registered.stdout, new RegExp(`->  ${node}: OK\\n    \\* tasks\\.add\\n(    \\* tasks\\.\\w+\\n)*    \\* tasks\\.fail\\n`));
  const stats = await cli([...common, 'inspect', 'stats', ...d, '--json']);
  assert.equal(stats.code, 0, stats.stderr);
  const parsed = JSON.parse(stats.stdout) as Record<string, { pool: { 'max-concurrency': number }; broker: { transport: string } }>;
  assert.equal(parsed[node]!.pool['max-concurrency'], 2);
  assert.equal(parsed[node]!.broker.transport, 'redis');
  const queried = await cli([...common, 'inspect', 'query_task', 'id-1', 'id-2', ...d, '--json']);
  assert.deepEqual(JSON.parse(queried.stdout), { [node]: {} });

  const rate = await cli([...common, 'control', 'rate_limit', 'tasks.add', '10/s', ...d]);
  assert.equal(rate.code, 0, rate.stderr);
  assert.equal(rate.stdout, `->  ${node}: OK\n        new rate limit set successfully\n`);
  const bad = await cli([...common, 'control', 'rate_limit', 'tasks.nope', '10/s', ...d]);
  assert.equal(bad.stdout, `->  ${node}: ERROR\n        unknown task\n`);
  const grow = await cli([...common, 'control', 'pool_grow', '2', ...d, '--json']);
  assert.deepEqual(JSON.parse(grow.stdout), [{ [node]: { ok: 'pool will grow' } }]);

  const status = await cli([...common, 'status', ...d]);
  assert.equal(status.stdout, `->  ${node}: OK\n\n1 node online.\n`);
  const statusJson = await cli([...common, 'status', ...d, '--json']);
  assert.deepEqual(JSON.parse(statusJson.stdout.split('\n')[0]!), { [node]: { ok: 'pong' } });

  // Celery's EX_UNAVAILABLE when nobody answers, and a usage error (2) for an unknown command.
  const nobody = await cli([...common, 'inspect', 'ping', '-d', 'nobody@nowhere', '-t', '0.5']);
  assert.equal(nobody.code, 69);
  assert.equal(nobody.stderr.trim(), 'Error: No nodes replied within time constraint');
  const statusNobody = await cli([...common, 'status', '-d', 'nobody@nowhere', '-t', '0.5']);
  assert.equal(statusNobody.code, 69);
  const unknown = await cli([...common, 'inspect', 'frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Command frobnicate not recognized\. Available inspect commands: active, active_queues, clock, conf/);
  const listed = await cli([...common, 'control', '--list']);
  assert.match(listed.stdout, /rate_limit <task_name> <rate_limit \(e\.g\., 5\/s \| 5\/m \| 5\/h\)>\s+Tell worker\(s\) to modify the rate limit/);
  const tooMany = await cli([...common, 'control', 'cancel_consumer', 'a', 'b']);
  assert.equal(tooMany.code, 2);
  assert.match(tooMany.stderr, /takes arguments: <queue>/);
});

test('the broker unreachable: inspect and status exit 69 with Celery\'s "Could not connect" message', async () => {
  const r = await cli(['-b', 'redis://127.0.0.1:1/0', 'inspect', 'ping', '-t', '0.5']);
  assert.equal(r.code, 69, r.stderr);
  assert.match(r.stderr, /^Error: Could not connect to the message broker\. Please make sure your broker \(e\.g\., RabbitMQ or Redis\) is running/);
});

test('events --dump prints a -E worker\'s events as celery events --dump; the live view (--json) shows the worker and its tasks', async () => {
  const q = uniqueName('clievents');
  const node = `${q}@cli`;
  const env = { CELERIAC_TEST_QUEUE: q };
  const common = ['-A', 'test/fixtures/cli-app.ts', '-b', BROKER, '--result-backend', BROKER];
  const dump = cli([...common, 'events', '--dump', '--duration', '20'], env);
  const view = cli([...common, 'events', '--json', '-F', '1', '--duration', '20'], env);
  await startWorker(q, node, ['-E', '--heartbeat-interval', '1']);
  const called = await cli([...common, 'call', 'tasks.add', '--args', '[4, 5]', '--wait', '--timeout', '20'], env);
  assert.equal(called.code, 0, called.stderr);
  const id = called.stdout.trim().split('\n').pop()!;
  const [d, v] = await Promise.all([dump, view]);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /^-> evdump: starting capture\.\.\.\n/);
  assert.match(d.stdout, new RegExp(`${node} \\[[^\\]]+\\] task received: tasks\\.add\\(${id}\\) args=\\(4, 5\\) kwargs=\\{\\} clock=\\d+`));
  assert.match(d.stdout, new RegExp(`${node} \\[[^\\]]+\\] task succeeded: tasks\\.add\\(${id}\\) args=\\(4, 5\\) kwargs=\\{\\} .*result=9, runtime=`));
  assert.match(d.stdout, new RegExp(`${node} \\[[^\\]]+\\] heartbeat: active=\\d+, clock=\\d+, freq=1`));
  assert.equal(v.code, 0, v.stderr);
  const frames = v.stdout.trim().split('\n').map((l) => JSON.parse(l) as { workers: { hostname: string; status: string }[]; tasks: { uuid: string; state: string; name: string }[] });
  const last = frames[frames.length - 1]!;
  assert.ok(last.workers.some((w) => w.hostname === node && w.status === 'ONLINE'), JSON.stringify(last.workers));
  assert.deepEqual(last.tasks.filter((t) => t.uuid === id).map((t) => [t.name, t.state]), [['tasks.add', 'SUCCESS']]);
});

test('two workers started with one -n: the second logs Celery\'s duplicate-nodename warning', async () => {
  const q = uniqueName('clidup');
  const node = `${q}@dup`;
  const first = await startWorker(q, node);
  assert.match(first.log(), /\.> task events: OFF \(enable -E to monitor tasks in this worker\)/);
  const second = await startWorker(q, node);
  await eventually(() => second.log().includes('DuplicateNodenameWarning'), 'the warning', 15_000);
  assert.match(second.log(), new RegExp(`WARNING/MainProcess\\] DuplicateNodenameWarning: Received multiple replies from node name: ${node}\\.\\nPlease make sure you give each node a unique nodename`));
  const third = await startWorker(q, `${q}@other`);
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(third.log().includes('DuplicateNodenameWarning'), false, 'a unique name is not warned about');
});

test('on RabbitMQ too, inspect waits for its replies (its idle connection does not end the process first)', async () => {
  await requireRabbit();
  const r = await cli(['-b', AMQP_URL, 'inspect', 'ping', '-d', 'nobody@nowhere', '-t', '1']);
  assert.equal(r.code, 69, `exit ${r.code}: ${r.stderr}`);
  assert.equal(r.stderr.trim(), 'Error: No nodes replied within time constraint');
});
