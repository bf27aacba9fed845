// Mapping Python keyword arguments onto a JS handler's parameters, by name.
import { parse, type AssignmentPattern, type Function as FunctionNode, type Pattern, type RestElement } from 'acorn';

type Param = Pattern | AssignmentPattern | RestElement;

/** The name a keyword argument fills, or undefined (a destructured or rest parameter has none). */
function nameOf(p: Param): string | undefined {
  const target = p.type === 'AssignmentPattern' ? p.left : p;
  return target.type === 'Identifier' ? target.name : undefined;
}

/** The function node of a handler's source: a function or arrow expression, or a method (`name(a) {}`). */
function functionNode(src: string): FunctionNode | undefined {
  for (const wrapped of [`(${src})`, `({${src}})`]) {
    let program;
    try {
      program = parse(wrapped, { ecmaVersion: 'latest', sourceType: 'module' });
    } catch {
      continue;
    }
    const stmt = program.body[0];
    if (program.body.length !== 1 || stmt?.type !== 'ExpressionStatement') continue;
    const e = stmt.expression;
    if (e.type === 'FunctionExpression' || e.type === 'ArrowFunctionExpression') return e;
    if (e.type === 'ObjectExpression' && e.properties.length === 1) {
      const prop = e.properties[0]!;
      if (prop.type === 'Property' && prop.value.type === 'FunctionExpression') return prop.value;
    }
  }
  return undefined;
}

/**
 * Parameter names of a function, read from its source with a JavaScript parser; undefined where a
 * parameter has no name, and null when the source cannot be read (a native or bound function): such
 * a task refuses keyword arguments rather than guess where they go.
 */
export function parameterNames(fn: (...args: never[]) => unknown): (string | undefined)[] | null {
  const node = functionNode(Function.prototype.toString.call(fn));
  return node ? (node.params as Param[]).map(nameOf) : null;
}

/**
 * Python semantics for f(*args, **kwargs) on a positional JS handler: each keyword fills the
 * parameter of that name; an unknown keyword is a TypeError, as in Python.
 */
export function bindArguments(taskName: string, params: readonly (string | undefined)[] | null, args: readonly unknown[], kwargs: Record<string, unknown>, allowExtra: boolean): unknown[] {
  const keys = Object.keys(kwargs);
  if (keys.length === 0) return args as unknown[];
  if (params === null) {
    throw new TypeError(`${taskName}() got keyword arguments (${keys.join(', ')}), but its handler's parameter names cannot be read from its source: declare the task with { params: [...] }`);
  }
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
