// What the orchestrator asks a child process to do, and what the child reports back.
// Children print exactly one line starting with RESULT_PREFIX (JSON) on stdout, and READY_LINE
// once a long-running worker is consuming.

export const RESULT_PREFIX = 'BENCH_RESULT ';
export const READY_LINE = 'BENCH_READY';

export type Role =
  | 'publish-single' // S1: awaited publishes, one after another
  | 'publish-bulk' // S2: the system's fastest way to enqueue many tasks
  | 'prefill' // fill the queue before a drain (not timed as a scenario)
  | 'drain' // S3/S4/S5/S7/S8: start a worker on a pre-filled queue, count completions
  | 'worker' // S6: a worker that runs until SIGTERM, printing READY_LINE once consuming
  | 'latency' // S6: send → result round trips, one at a time
  | 'canvas'; // S9: apply a group or a chord of n tasks to a running worker and wait for its result

export interface ChildSpec {
  role: Role;
  /** Tasks to publish / complete, or round trips to time. */
  n: number;
  /** Worker concurrency (drain/worker roles). */
  concurrency: number;
  /** Python Celery only: 'solo' or 'threads'. */
  pool?: 'solo' | 'threads';
  /** Store results in the result backend. */
  results: boolean;
  /** Task body: 'noop' returns at once, 'io' awaits ioMs of timer I/O. */
  task: 'noop' | 'io';
  ioMs: number;
  brokerUrl: string;
  /** Result backend URL (used when results is true, and always by celery-node). */
  backendUrl: string;
  queue: string;
  /** Latency role: round trips discarded before timing. */
  warmup: number;
  /** publish-bulk / prefill: messages per batch (or in flight). */
  batch: number;
  /** Workers send task events (-E): Celeriac's taskEvents, Python's -E. */
  events?: boolean;
  /** S9 (role canvas): a group of n no-op tasks (get() gives n results) or a chord of them (a body counts the n results). */
  canvas?: 'group' | 'chord';
}

export interface ChildResult {
  ok: boolean;
  error?: string;
  /** Tasks counted (published, completed or round trips). */
  count: number;
  /** Milliseconds of the timed window. */
  elapsedMs: number;
  /** count per second over the timed window (drains: (count - 1) / (last - first completion)). */
  rate: number;
  /** Latency role: per-round-trip milliseconds, sorted. */
  latenciesMs?: number[];
  /** Peak resident set size of the child, bytes. */
  maxRssBytes: number;
  /** CPU (user + system) the child used in the timed window, milliseconds. */
  cpuMs: number;
  /** Anything system-specific worth keeping (versions, settings). */
  notes?: Record<string, string | number | boolean>;
}

export function parseSpec(argv: string[]): ChildSpec {
  const raw = argv[2];
  if (!raw) throw new Error('usage: <child> \'<ChildSpec JSON>\'');
  return JSON.parse(raw) as ChildSpec;
}

export function emitResult(r: ChildResult): void {
  process.stdout.write(RESULT_PREFIX + JSON.stringify(r) + '\n');
}

/** Counts completions and times the window from the first to the last one. */
export class CompletionClock {
  private first = 0;
  private last = 0;
  private cpuAtFirst = process.cpuUsage();
  count = 0;
  private readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(private readonly target: number) {
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  tick(): void {
    const now = performance.now();
    if (this.count === 0) {
      this.first = now;
      this.cpuAtFirst = process.cpuUsage();
    }
    this.count++;
    this.last = now;
    if (this.count === this.target) this.resolveDone();
  }

  wait(): Promise<void> {
    return this.done;
  }

  result(notes?: ChildResult['notes']): ChildResult {
    const elapsedMs = this.last - this.first;
    const cpu = process.cpuUsage(this.cpuAtFirst);
    return {
      ok: this.count >= this.target,
      count: this.count,
      elapsedMs,
      rate: elapsedMs > 0 ? ((this.count - 1) * 1000) / elapsedMs : 0,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      cpuMs: (cpu.user + cpu.system) / 1000,
      notes,
    };
  }
}

/** Time a publishing loop: rate = count / elapsed. */
export async function timePublishing(n: number, body: () => Promise<void>, notes?: ChildResult['notes']): Promise<ChildResult> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await body();
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return {
    ok: true,
    count: n,
    elapsedMs,
    rate: (n * 1000) / elapsedMs,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    cpuMs: (cpu.user + cpu.system) / 1000,
    notes,
  };
}

/** Time sequential round trips after a warm-up; latencies sorted ascending. */
export async function timeRoundTrips(n: number, warmup: number, once: () => Promise<void>, notes?: ChildResult['notes']): Promise<ChildResult> {
  for (let i = 0; i < warmup; i++) await once();
  const lat: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await once();
    lat.push(performance.now() - s);
  }
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  lat.sort((a, b) => a - b);
  return {
    ok: true,
    count: n,
    elapsedMs,
    rate: (n * 1000) / elapsedMs,
    latenciesMs: lat,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    cpuMs: (cpu.user + cpu.system) / 1000,
    notes,
  };
}

/** Run `fn(i)` for i in [0, n) with at most `inFlight` promises outstanding. */
export async function inFlightWindow(n: number, inFlight: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, n) }, lane));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Report a failure as a result line and exit non-zero. */
export function failAndExit(err: unknown): never {
  const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
  emitResult({ ok: false, error: msg, count: 0, elapsedMs: 0, rate: 0, maxRssBytes: process.resourceUsage().maxRSS * 1024, cpuMs: 0 });
  process.exit(1);
}

/** Exit as soon as the orchestrator asks (workers never get a graceful close in S6). */
export function exitOnSignal(cleanup?: () => Promise<void>): void {
  const stop = () => {
    const force = setTimeout(() => process.exit(0), 2000);
    force.unref();
    void (cleanup ? cleanup() : Promise.resolve()).finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
