// Spawning one system's child process and reading its result line.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { RESULT_PREFIX, READY_LINE, type ChildResult, type ChildSpec } from './spec.js';

export const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const REPO_DIR = path.dirname(BENCH_DIR);
/** Debian's interpreter: the python3 first on PATH has no Celery. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export type SystemId = 'celeriac' | 'bullmq' | 'celery' | 'celery-node';

export interface LaunchOptions {
  /** Extra node flags for Node children (e.g. --cpu-prof). */
  nodeFlags?: string[];
  timeoutMs: number;
}

/** Where Node children run from: compiled JavaScript (default) or the TypeScript sources through tsx. */
let compiledDir: string | null = null;
export function useCompiledChildren(dir: string | null): void {
  compiledDir = dir;
}

function command(system: SystemId, spec: ChildSpec, nodeFlags: string[] = []): [string, string[]] {
  const json = JSON.stringify(spec);
  if (system === 'celery') return [SYSTEM_PYTHON, [path.join(BENCH_DIR, 'python', 'celery_peer.py'), json]];
  if (compiledDir) return [process.execPath, [...nodeFlags, path.join(compiledDir, 'bench', 'systems', `${system}.js`), json]];
  return [process.execPath, [...nodeFlags, '--import', 'tsx', path.join(BENCH_DIR, 'systems', `${system}.ts`), json]];
}

export interface RunningChild {
  proc: ChildProcess;
  /** Resolves with the child's result (or a failed result on crash/timeout). */
  result: Promise<ChildResult>;
  /** Resolves once the child printed READY_LINE. */
  ready: Promise<void>;
  stop(): Promise<void>;
}

const failed = (error: string): ChildResult => ({ ok: false, error, count: 0, elapsedMs: 0, rate: 0, maxRssBytes: 0, cpuMs: 0 });

export function launch(system: SystemId, spec: ChildSpec, opts: LaunchOptions): RunningChild {
  const [cmd, args] = command(system, spec, opts.nodeFlags);
  const proc = spawn(cmd, args, { cwd: REPO_DIR, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' } });
  let stderrTail = '';
  let buffered = '';
  let resultLine: ChildResult | undefined;
  let resolveReady!: () => void;
  let rejectReady!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => { resolveReady = res; rejectReady = rej; });
  ready.catch(() => {});
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));

  proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line === READY_LINE) resolveReady();
      else if (line.startsWith(RESULT_PREFIX)) {
        try { resultLine = JSON.parse(line.slice(RESULT_PREFIX.length)) as ChildResult; } catch { /* keep looking */ }
      }
    }
  });
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderrTail = (stderrTail + chunk).slice(-4000); });

  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  };

  const result = new Promise<ChildResult>((resolve) => {
    const timer = setTimeout(() => {
      void stop().then(() => resolve(failed(`timed out after ${Math.round(opts.timeoutMs / 1000)} s; stderr: ${stderrTail.slice(-800)}`)));
    }, opts.timeoutMs);
    // Poll for the result line so a worker that never exits by itself can be stopped once it reported.
    const poll = setInterval(() => {
      if (!resultLine) return;
      clearInterval(poll);
      clearTimeout(timer);
      const r = resultLine;
      const grace = setTimeout(() => void stop(), 5000);
      void exited.then(() => clearTimeout(grace));
      resolve(r.ok ? r : { ...r, error: `${r.error ?? 'failed'}\n${stderrTail.slice(-800)}` });
    }, 20);
    void exited.then((code) => {
      rejectReady(new Error(`exited with ${code} before ready; stderr: ${stderrTail.slice(-800)}`));
      setTimeout(() => {
        if (resultLine) return; // the poll above resolves it
        clearInterval(poll);
        clearTimeout(timer);
        resolve(failed(`exited with code ${code} without a result; stderr: ${stderrTail.slice(-1500)}`));
      }, 50);
    });
  });
  return { proc, result, ready, stop };
}
