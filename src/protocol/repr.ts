// Python's repr(), used for the argsrepr / kwargsrepr headers and log lines. Built bounded: it stops
// reading a value once the text is longer than the limit, so a 130 MB argument costs what its first
// kilobyte costs (Celery's saferepr does the same).

/** Celery truncates argsrepr/kwargsrepr to 1024 characters (saferepr maxlen). */
export const REPR_MAXLEN = 1024;

/** An output buffer that stops taking text past its limit. */
class Out {
  text = '';
  constructor(readonly limit: number) {}

  get full(): boolean {
    return this.text.length > this.limit;
  }

  add(s: string): void {
    if (!this.full) this.text += s.length > this.limit + 1 ? s.slice(0, this.limit + 1) : s;
  }
}

function reprString(s: string, out: Out): void {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  out.add(quote);
  // Only as many characters as can still show: each takes at least one character of output.
  const room = out.limit - out.text.length + 1;
  const head = s.length > room ? s.slice(0, Math.max(0, room)) : s;
  let piece = '';
  for (const ch of head) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\') piece += '\\\\';
    else if (ch === quote) piece += '\\' + ch;
    else if (ch === '\n') piece += '\\n';
    else if (ch === '\r') piece += '\\r';
    else if (ch === '\t') piece += '\\t';
    else if (c < 0x20 || c === 0x7f) piece += '\\x' + c.toString(16).padStart(2, '0');
    else piece += ch;
  }
  out.add(piece);
  out.add(quote);
}

function reprNumber(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  return String(n);
}

function reprDate(d: Date): string {
  const ms = d.getTime();
  // An invalid Date has no ISO form (toISOString throws); say what it is instead.
  return Number.isNaN(ms) ? '<Invalid Date>' : `datetime.datetime.fromisoformat('${d.toISOString()}')`;
}

function write(v: unknown, depth: number, out: Out): void {
  if (out.full) return;
  if (depth > 20) return out.add('...');
  if (v === null || v === undefined) return out.add('None');
  if (typeof v === 'boolean') return out.add(v ? 'True' : 'False');
  if (typeof v === 'number') return out.add(reprNumber(v));
  if (typeof v === 'bigint') return out.add(v.toString());
  if (typeof v === 'string') return reprString(v, out);
  if (v instanceof Date) return out.add(reprDate(v));
  if (Buffer.isBuffer(v)) {
    out.add('b');
    return reprString(v.subarray(0, out.limit + 1).toString('latin1'), out);
  }
  if (Array.isArray(v)) {
    out.add('[');
    for (let i = 0; i < v.length && !out.full; i++) {
      if (i > 0) out.add(', ');
      write(v[i], depth + 1, out);
    }
    return out.add(']');
  }
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') {
    // An object with a JSON form (a signature, a result) reads as what it is sent as.
    let json: unknown;
    try {
      json = (v as { toJSON(): unknown }).toJSON();
    } catch {
      return out.add('<unrepresentable>');
    }
    return write(json, depth + 1, out);
  }
  if (typeof v === 'object') {
    out.add('{');
    let n = 0;
    // for…in stops early; Object.entries would copy every key of a huge object first.
    for (const k in v as Record<string, unknown>) {
      if (out.full) break;
      if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
      const x = (v as Record<string, unknown>)[k];
      if (x === undefined) continue;
      if (n++ > 0) out.add(', ');
      reprString(k, out);
      out.add(': ');
      write(x, depth + 1, out);
    }
    return out.add('}');
  }
  return reprString(String(v), out);
}

function finish(out: Out): string {
  return out.full ? out.text.slice(0, out.limit - 3) + '...' : out.text;
}

/** repr(v), at most `maxlen` characters (longer text ends in '...'). */
export function repr(v: unknown, maxlen = REPR_MAXLEN): string {
  const out = new Out(maxlen);
  write(v, 0, out);
  return finish(out);
}

/** repr(tuple(args)): "(2, 2)", "(1,)", "()", at most `maxlen` characters. */
export function reprArgs(args: readonly unknown[], maxlen = REPR_MAXLEN): string {
  const out = new Out(maxlen);
  out.add('(');
  for (let i = 0; i < args.length && !out.full; i++) {
    if (i > 0) out.add(', ');
    write(args[i], 0, out);
  }
  out.add(args.length === 1 ? ',)' : ')');
  return finish(out);
}

/** Celery truncates argsrepr/kwargsrepr to 1024 characters (saferepr maxlen). */
export function truncateRepr(s: string, max = REPR_MAXLEN): string {
  return s.length > max ? s.slice(0, max - 3) + '...' : s;
}
