// Beat processes (`celeriac -A test/fixtures/beat-app.ts beat`) and a ledger of what they sent, for the
// beat integration and interop tests; and the failover scenario the Redis and SQLite tests share.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Celeriac } from '../../src/app/celeriac.js';
import type { Consumer } from '../../src/brokers/types.js';
import { eventually, sleep, uniqueName } from '../helpers/services.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const APP = 'test/fixtures/beat-app.ts';

// Every process started here, so a crashed run still ends them (and nothing else).
const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of started) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
});

export interface Line {
  at: number;
  text: string;
}

/** A `celeriac` CLI process with its output lines, each stamped with when this process read it. */
export class CliProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly lines: Line[] = [];
  readonly exited: Promise<number | null>;
  private partial = '';

  constructor(readonly label: string, args: string[], env: Record<string, string>) {
    this.child = spawn(process.execPath, ['bin/celeriac.js', ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    if (this.child.pid === undefined) throw new Error(`could not start ${label}`);
    this.pid = this.child.pid;
    started.add(this.child);
    const read = (d: string) => {
      const parts = (this.partial + d).split('\n');
      this.partial = parts.pop()!;
      const at = Date.now();
      for (const text of parts) this.lines.push({ at, text });
    };
    this.child.stdout!.setEncoding('utf8').on('data', read);
    this.child.stderr!.setEncoding('utf8').on('data', read);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => {
      started.delete(this.child);
      resolve(code);
    }));
  }

  get output(): string {
    return this.lines.map((l) => l.text).join('\n') + (this.partial ? '\n' + this.partial : '');
  }

  find(pattern: RegExp, since = 0): Line | undefined {
    return this.lines.find((l) => l.at >= since && pattern.test(l.text));
  }

  async waitFor(pattern: RegExp, timeoutMs: number, since = 0): Promise<Line> {
    try {
      return (await eventually(() => this.find(pattern, since), `${this.label} to print ${pattern}`, timeoutMs, 20))!;
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- ${this.label} output:\n${this.output}`);
    }
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  /** SIGTERM and wait for the exit code (SIGKILL after 10 s). */
  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill('SIGCONT');
    this.child.kill('SIGTERM');
    const code = await Promise.race([this.exited, sleep(10_000).then(() => 'timeout' as const)]);
    if (code === 'timeout') {
      this.child.kill('SIGKILL');
      return this.exited;
    }
    return code;
  }
}

export interface BeatEnv {
  broker: string;
  queue: string;
  prefix?: string;
  backend?: string;
  task?: string;
  args?: unknown[];
  every?: number | 'none';
}

export function beatEnv(o: BeatEnv): Record<string, string> {
  return {
    CELERIAC_BEAT_BROKER: o.broker,
    CELERIAC_BEAT_QUEUE: o.queue,
    CELERIAC_BEAT_PREFIX: o.prefix ?? '',
    CELERIAC_BEAT_BACKEND: o.backend ?? '',
    CELERIAC_BEAT_TASK: o.task ?? 'beat.tick',
    CELERIAC_BEAT_ARGS: JSON.stringify(o.args ?? []),
    CELERIAC_BEAT_EVERY: String(o.every ?? 1),
  };
}

/** `celeriac -A test/fixtures/beat-app.ts <args>` with the beat app's environment. */
export function cli(label: string, o: BeatEnv, args: string[]): CliProcess {
  return new CliProcess(label, ['-A', APP, ...args], beatEnv(o));
}

/** Start n beat processes and wait until each has started and one leads. */
export async function startBeats(n: number, o: BeatEnv): Promise<CliProcess[]> {
  const beats = Array.from({ length: n }, (_, i) => cli(`beat${i + 1}`, o, ['beat', '-l', 'info']));
  await Promise.all(beats.map((b) => b.waitFor(/beat: Starting/, 60_000)));
  await eventually(() => beats.some((b) => b.find(/is the leader now/)), 'one beat to take the lease', 15_000);
  return beats;
}

export interface LedgerRow {
  id: string;
  name: string;
  dueAt: number;
  /** The sender's pid, from the message's origin header (gen<pid>@host). */
  pid: number;
  receivedAt: number;
}

/** Consume a queue and record every message beat sent to it. */
export async function startLedger(app: Celeriac, queue: string): Promise<{ rows: LedgerRow[]; stop: () => Promise<void> }> {
  const rows: LedgerRow[] = [];
  const broker = await app.broker();
  const consumer: Consumer = await broker.consume([queue], (d) => {
    const h = d.message.headers;
    rows.push({
      id: String(h.id), name: String(h.periodic_task_name), dueAt: Date.parse(String(h.periodic_task_due_at)),
      pid: Number(/^gen(\d+)@/.exec(String(h.origin))?.[1] ?? -1), receivedAt: Date.now(),
    });
    void d.ack();
  }, { prefetch: 0 });
  return { rows, stop: () => consumer.stop() };
}

/**
 * Three beats on a 1 s schedule for 30 s: SIGKILL the leader at 10 s, SIGSTOP the next one at 20 s
 * and SIGCONT it once a third has taken over. Checks that each due run was sent exactly once, that
 * no run was missed except while the lease changed hands, that each takeover came within 10 s, and
 * that the resumed stale leader was refused by the fence. Returns the takeover times (ms).
 */
export async function failoverScenario(broker: string, prefix?: string): Promise<{ afterKillMs: number; afterStopMs: number; sent: number }> {
  const queue = uniqueName('beat-ha');
  const app = new Celeriac('beat-ledger', { broker, broker_transport_options: prefix ? { global_keyprefix: prefix } : {} });
  const ledger = await startLedger(app, queue);
  let beats: CliProcess[] = [];
  try {
    beats = await startBeats(3, { broker, queue, prefix });
    await eventually(() => ledger.rows.length >= 2, 'the first two runs', 15_000);
    const t0 = Date.now();
    const byPid = (pid: number) => beats.find((b) => b.pid === pid)!;
    const first = byPid(ledger.rows.at(-1)!.pid);
    assert.ok(first, `the sender is one of the beats: ${JSON.stringify(ledger.rows.at(-1))}`);

    await sleep(t0 + 10_000 - Date.now());
    const killAt = Date.now();
    first.signal('SIGKILL');
    const afterKill = await eventually<LedgerRow | undefined>(() => ledger.rows.find((r) => r.receivedAt > killAt && r.pid !== first.pid), 'a run sent after the leader was killed', 20_000);
    const second = byPid(afterKill!.pid);
    assert.ok(second && second !== first, `another beat took over: ${JSON.stringify(afterKill)}`);

    await sleep(t0 + 20_000 - Date.now());
    const stopAt = Date.now();
    second.signal('SIGSTOP');
    const afterStop = await eventually<LedgerRow | undefined>(() => ledger.rows.find((r) => r.receivedAt > stopAt && r.pid !== second.pid), 'a run sent after the second leader was paused', 20_000);
    const third = byPid(afterStop!.pid);
    assert.ok(third && third !== first && third !== second, `the third beat took over: ${JSON.stringify(afterStop)}`);
    await sleep(1_500);
    const contAt = Date.now();
    second.signal('SIGCONT');
    await second.waitFor(/not sending every-second: lease epoch \d+ is no longer the current one/, 10_000, contAt);
    await sleep(Math.max(t0 + 30_000, contAt + 3_000) - Date.now());
    assert.equal(await second.stop(), 0, `a SIGTERMed beat exits 0:\n${second.output}`);
    assert.equal(await third.stop(), 0, `a SIGTERMed beat exits 0:\n${third.output}`);
    await sleep(500);

    const rows = [...ledger.rows].sort((a, b) => a.dueAt - b.dueAt);
    const due = rows.map((r) => r.dueAt);
    assert.equal(new Set(due).size, due.length, `a due run was sent twice: ${JSON.stringify(rows)}`);
    assert.equal(new Set(rows.map((r) => r.id)).size, rows.length);
    assert.ok(rows.every((r) => r.name === 'every-second'));
    assert.deepEqual(rows.filter((r) => r.pid === second.pid && r.dueAt > stopAt), [], 'the paused leader sent nothing after it was paused');
    assert.deepEqual(rows.filter((r) => r.pid === first.pid && r.dueAt > killAt), []);
    // Runs are 1 s apart except where the lease changed hands (missed runs there collapse into one).
    const gaps = rows.slice(1).map((r, i) => ({ from: rows[i]!.dueAt, to: r.dueAt })).filter((g) => g.to - g.from !== 1000);
    for (const g of gaps) {
      assert.ok([killAt, stopAt].some((f) => g.from <= f + 1000 && g.to >= f), `runs missed outside a failover: ${JSON.stringify(g)} (kill ${killAt}, stop ${stopAt})`);
    }
    const afterKillMs = afterKill!.receivedAt - killAt;
    const afterStopMs = afterStop!.receivedAt - stopAt;
    assert.ok(afterKillMs < 10_000, `takeover after SIGKILL took ${afterKillMs} ms`);
    assert.ok(afterStopMs < 10_000, `takeover after SIGSTOP took ${afterStopMs} ms`);
    assert.ok(rows.length >= 15, `only ${rows.length} runs in 30 s`);
    return { afterKillMs, afterStopMs, sent: rows.length };
  } finally {
    await Promise.all(beats.map((b) => b.stop()));
    await ledger.stop();
    await app.close();
  }
}
