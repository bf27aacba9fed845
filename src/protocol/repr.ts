// Python's repr(), used for the argsrepr / kwargsrepr headers and log lines.

function reprString(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + quote;
}

function reprNumber(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  return String(n);
}

export function repr(v: unknown, depth = 0): string {
  if (depth > 20) return '...';
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return reprNumber(v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'string') return reprString(v);
  if (v instanceof Date) return `datetime.datetime.fromisoformat('${v.toISOString()}')`;
  if (Buffer.isBuffer(v)) return 'b' + reprString(v.toString('latin1'));
  if (Array.isArray(v)) return '[' + v.map((x) => repr(x, depth + 1)).join(', ') + ']';
  // An object with a JSON form (a signature, a result) reads as what it is sent as.
  if (typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') return repr((v as { toJSON(): unknown }).toJSON(), depth + 1);
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    return '{' + entries.map(([k, x]) => reprString(k) + ': ' + repr(x, depth + 1)).join(', ') + '}';
  }
  return reprString(String(v));
}

/** repr(tuple(args)): "(2, 2)", "(1,)", "()". */
export function reprArgs(args: readonly unknown[]): string {
  if (args.length === 1) return '(' + repr(args[0]) + ',)';
  return '(' + args.map((a) => repr(a)).join(', ') + ')';
}

/** Celery truncates argsrepr/kwargsrepr to 1024 characters (saferepr maxlen). */
export function truncateRepr(s: string, max = 1024): string {
  return s.length > max ? s.slice(0, max - 3) + '...' : s;
}
