// Shared by the embedded-transport tests: messages, temp databases, child processes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Message } from '../../src/protocol/message.js';
import { createSettings } from '../../src/app/settings.js';
import { createLogger, type Logger } from '../../src/app/log.js';

export function testMessage(id: string, priority?: number): Message {
  return {
    headers: { id, task: 'tests.noop', lang: 'py' },
    properties: { correlation_id: id, ...(priority === undefined ? {} : { priority }) },
    body: Buffer.from(JSON.stringify([[id], {}, { callbacks: null, errbacks: null, chain: null, chord: null }])),
    contentType: 'application/json',
    contentEncoding: 'utf-8',
  };
}

/** A fresh directory; the database file inside it does not exist yet. */
export function tempDb(name = 'celeriac.db'): { dir: string; file: string; url: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'celeriac-sqlite-'));
  const file = path.join(dir, 'nested', name);
  return { dir, file, url: `sqlite:///${file}` }; // file is absolute, so this is the four-slash form
}

export interface CapturedLog {
  logger: Logger;
  lines: string[];
}

export function captureLogger(): CapturedLog {
  const lines: string[] = [];
  return { lines, logger: createLogger('info', (l) => lines.push(l)) };
}

export function ctx(transportOptions: Record<string, unknown> = {}, extra: Record<string, unknown> = {}, log = captureLogger()) {
  return { settings: createSettings({ broker_transport_options: transportOptions, ...extra }), logger: log.logger };
}

const here = path.dirname(fileURLToPath(import.meta.url));
const CHILD = path.join(here, 'sqlite-child.ts');

export interface Child {
  proc: ChildProcess;
  stdout: string[];
  stderr: string;
  exited: Promise<number | null>;
  waitFor(line: string, timeoutMs?: number): Promise<void>;
}

export function spawnChild(args: string[], env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const child: Child = {
    proc,
    stdout: [],
    stderr: '',
    exited: new Promise((r) => proc.on('exit', (code) => r(code))),
    waitFor: (line, timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        if (child.stdout.includes(line)) return resolve();
        const t = setTimeout(() => reject(new Error(`child ${proc.pid} did not print ${line} within ${timeoutMs} ms; stderr: ${child.stderr}`)), timeoutMs);
        const on = () => {
          if (child.stdout.includes(line)) { clearTimeout(t); proc.stdout!.off('data', on); resolve(); }
        };
        proc.stdout!.on('data', on);
        proc.once('exit', () => { clearTimeout(t); if (!child.stdout.includes(line)) reject(new Error(`child ${proc.pid} exited before printing ${line}; stderr: ${child.stderr}`)); });
      }),
  };
  let buf = '';
  // Registered before any waitFor listener, so lines are split before it looks.
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop()!;
    child.stdout.push(...parts);
  });
  proc.stderr!.on('data', (d: Buffer) => { child.stderr += d.toString(); });
  return child;
}

export function readLedger(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}
