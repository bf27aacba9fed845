// `celery events --dump` lines (celery.events.dumper.Dumper): one line per event, task names filled in
// from the task-received (or task-sent) event of the same task id.
import type { CeleryEvent } from './event.js';

const HUMAN_TYPES: Record<string, string> = {
  'worker-offline': 'shutdown',
  'worker-online': 'started',
  'worker-heartbeat': 'heartbeat',
};

export function humanizeType(type: string): string {
  return HUMAN_TYPES[type.toLowerCase()] ?? type.toLowerCase().replaceAll('-', ' ');
}

/** Python's str(datetime) for an aware UTC time: 2026-12-06 21:24:10.590123+00:00 (no fraction when whole). */
export function pythonUtcTime(seconds: number): string {
  const d = new Date(Math.floor(seconds * 1000));
  const iso = d.toISOString();
  const micros = Math.round((seconds - Math.floor(seconds)) * 1e6) % 1_000_000;
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${micros ? '.' + String(micros).padStart(6, '0') : ''}+00:00`;
}

/** A field value as Python's str() prints it. */
function str(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`).join(', ')}}`;
  return String(v);
}

function pyRepr(v: unknown): string {
  return typeof v === 'string' ? `'${v.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'` : str(v);
}

function fieldsOf(ev: Record<string, unknown>): string {
  return Object.keys(ev).sort().map((k) => `${k}=${str(ev[k])}`).join(', ');
}

/** Formats events as Celery's Dumper does; remembers task names by id (at most 4,095, as Celery). */
export class Dumper {
  private readonly names = new Map<string, string>();

  format(event: CeleryEvent): string {
    const { timestamp, type, hostname, ...rest } = event as Record<string, unknown>;
    const when = pythonUtcTime(typeof timestamp === 'number' ? timestamp : Date.now() / 1000);
    const kind = String(type).toLowerCase();
    if (kind.startsWith('task-')) {
      const { uuid, ...ev } = rest;
      const id = String(uuid);
      let task: string;
      if (kind === 'task-received' || kind === 'task-sent') {
        const { name, args, kwargs, ...others } = ev;
        task = `${str(name)}(${id}) args=${str(args)} kwargs=${str(kwargs)}`;
        this.remember(id, task);
        return this.line(hostname, when, kind, others, task);
      }
      return this.line(hostname, when, kind, ev, this.names.get(id) ?? '');
    }
    return this.line(hostname, when, kind, rest);
  }

  private line(hostname: unknown, when: string, kind: string, ev: Record<string, unknown>, task?: string): string {
    const fields = fieldsOf(ev);
    const sep = fields ? ':' : '';
    return task === undefined
      ? `${str(hostname)} [${when}] ${humanizeType(kind)}${sep} ${fields}`
      : `${str(hostname)} [${when}] ${humanizeType(kind)}${sep} ${task} ${fields}`;
  }

  private remember(id: string, task: string): void {
    this.names.delete(id);
    this.names.set(id, task);
    if (this.names.size > 0xfff) this.names.delete(this.names.keys().next().value!);
  }
}
