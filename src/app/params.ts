// Mapping Python keyword arguments onto a JS handler's parameters, by name.

/** Parameter names of a function, read from its source; undefined where a name can't be known. */
export function parameterNames(fn: (...args: never[]) => unknown): (string | undefined)[] {
  const src = Function.prototype.toString.call(fn);
  let params: string;
  const arrow = /^(?:async\s*)?(?:\(([^)]*)\)|([A-Za-z_$][\w$]*))\s*=>/.exec(src);
  if (arrow) params = arrow[1] ?? arrow[2] ?? '';
  else {
    const m = /^[^(]*\(([^)]*)\)/.exec(src);
    params = m?.[1] ?? '';
  }
  params = params.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  if (!params.trim()) return [];
  const out: (string | undefined)[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of params) {
    if ('([{'.includes(ch)) depth++;
    if (')]}'.includes(ch)) depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur);
  return out.map((p) => {
    const name = (p ?? '').trim().replace(/^\.\.\./, '').split('=')[0]!.split(':')[0]!.trim();
    return /^[A-Za-z_$][\w$]*$/.test(name) ? name : undefined;
  });
}

/**
 * Python semantics for f(*args, **kwargs) on a positional JS handler: each keyword fills the
 * parameter of that name; an unknown keyword is a TypeError, as in Python.
 */
export function bindArguments(taskName: string, params: readonly (string | undefined)[], args: readonly unknown[], kwargs: Record<string, unknown>, allowExtra: boolean): unknown[] {
  const keys = Object.keys(kwargs);
  if (keys.length === 0) return args as unknown[];
  const out = [...args];
  const rest = new Set(keys);
  params.forEach((name, i) => {
    if (!name || !(name in kwargs)) return;
    if (i < args.length) throw new TypeError(`${taskName}() got multiple values for argument '${name}'`);
    out[i] = kwargs[name];
    rest.delete(name);
  });
  if (rest.size > 0 && !allowExtra) {
    const known = params.filter(Boolean).join(', ') || 'none';
    throw new TypeError(`${taskName}() got an unexpected keyword argument '${[...rest][0]}' (parameters: ${known}; if a bundler renamed them, declare the task with { params: [...] })`);
  }
  return out;
}
