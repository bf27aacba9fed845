// Reading a task ledger: one "start <id>" / "end <id>" line per execution, appended by test tasks.
import { existsSync, readFileSync } from 'node:fs';

export interface Ledger {
  starts: Map<string, number>;
  ends: Map<string, number>;
}

/** How many times each task id started and ended, from the ledger file (empty if it does not exist yet). */
export function readLedger(file: string): Ledger {
  const starts = new Map<string, number>();
  const ends = new Map<string, number>();
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  for (const line of text.split('\n').filter(Boolean)) {
    const [kind, id] = line.split(' ');
    const m = kind === 'start' ? starts : ends;
    m.set(id!, (m.get(id!) ?? 0) + 1);
  }
  return { starts, ends };
}
