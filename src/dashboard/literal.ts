// Reads back the Python reprs task events carry for args and kwargs ("(2, 'a')", "{'x': [1.5, None]}"),
// as ast.literal_eval would, so the dashboard can send a failed task again with the same arguments.
// Only literals: str, int, float, True/False/None, tuples, lists, dicts and sets. Anything else (an
// object's repr, a repr cut at 1,024 characters) is refused with the reason.

export class LiteralError extends Error {
  override name = 'LiteralError';
}

class Reader {
  i = 0;
  constructor(readonly s: string) {}

  fail(what: string): never {
    throw new LiteralError(`${what} at character ${this.i} of ${JSON.stringify(this.s.length > 80 ? this.s.slice(0, 77) + '...' : this.s)}`);
  }

  ws(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i]!)) this.i++;
  }

  peek(): string {
    this.ws();
    return this.s[this.i] ?? '';
  }

  eat(c: string): boolean {
    if (this.peek() === c) {
      this.i++;
      return true;
    }
    return false;
  }

  value(): unknown {
    const c = this.peek();
    if (c === '(') return this.seq('(', ')');
    if (c === '[') return this.seq('[', ']');
    if (c === '{') return this.dict();
    if (c === "'" || c === '"') return this.str();
    if (/[-+0-9.]/.test(c)) return this.number();
    for (const [word, v] of [['None', null], ['True', true], ['False', false]] as const) {
      if (this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return v;
      }
    }
    if (this.s.startsWith('set()', this.i)) {
      this.i += 5;
      return [];
    }
    return this.fail('not a Python literal');
  }

  seq(open: string, close: string): unknown[] {
    this.eat(open);
    const out: unknown[] = [];
    while (!this.eat(close)) {
      if (this.i >= this.s.length) this.fail(`missing '${close}'`);
      out.push(this.value());
      if (!this.eat(',') && this.peek() !== close) this.fail(`expected ',' or '${close}'`);
    }
    return out;
  }

  dict(): Record<string, unknown> | unknown[] {
    this.eat('{');
    const out: Record<string, unknown> = {};
    const set: unknown[] = [];
    while (!this.eat('}')) {
      if (this.i >= this.s.length) this.fail("missing '}'");
      const key = this.value();
      if (this.eat(':')) {
        if (typeof key !== 'string' && typeof key !== 'number') this.fail('a dict key that is not a string or a number');
        out[String(key)] = this.value();
      } else set.push(key);
      if (!this.eat(',') && this.peek() !== '}') this.fail("expected ',' or '}'");
    }
    return set.length ? set : out;
  }

  str(): string {
    this.ws();
    const q = this.s[this.i++]!;
    let out = '';
    while (this.i < this.s.length) {
      const c = this.s[this.i++]!;
      if (c === q) return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = this.s[this.i++];
      const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '0': '\0', a: '\x07', b: '\b', f: '\f', v: '\v' };
      if (e !== undefined && e in simple) out += simple[e];
      else if (e === 'x' || e === 'u' || e === 'U') {
        const len = e === 'x' ? 2 : e === 'u' ? 4 : 8;
        const hex = this.s.slice(this.i, this.i + len);
        if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) this.fail('a bad escape');
        out += String.fromCodePoint(parseInt(hex, 16));
        this.i += len;
      } else this.fail('an unknown escape');
    }
    return this.fail('an unterminated string');
  }

  number(): number {
    this.ws();
    const m = /^[-+]?(?:\d[\d_]*\.?[\d_]*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|inf|nan)/.exec(this.s.slice(this.i));
    if (!m) this.fail('not a number');
    this.i += m[0].length;
    return Number(m[0].replace(/_/g, '').replace('inf', 'Infinity').replace('nan', 'NaN'));
  }
}

function parse(s: string): unknown {
  const r = new Reader(s);
  const v = r.value();
  r.ws();
  if (r.i !== s.length) r.fail('text after the literal');
  return v;
}

/** The arguments of a task event's `args` repr ("(1, 2)" or "[1, 2]"). */
export function parseArgsRepr(s: string | null): unknown[] {
  if (s === null || s.trim() === '') return [];
  if (s.endsWith('...')) throw new LiteralError('the arguments were cut at 1,024 characters in the events, so they cannot be sent again');
  const v = parse(s);
  if (!Array.isArray(v)) throw new LiteralError(`args ${s} is not a tuple or a list`);
  return v;
}

/** The keyword arguments of a task event's `kwargs` repr ("{'x': 1}"). */
export function parseKwargsRepr(s: string | null): Record<string, unknown> {
  if (s === null || s.trim() === '') return {};
  if (s.endsWith('...')) throw new LiteralError('the keyword arguments were cut at 1,024 characters in the events, so they cannot be sent again');
  const v = parse(s);
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new LiteralError(`kwargs ${s} is not a dict`);
  return v as Record<string, unknown>;
}
