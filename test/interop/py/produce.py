"""Send tasks from Python Celery and print what happened as one JSON line (the last line of stdout).

Usage: /usr/bin/python3 produce.py '<spec json>'
spec: {"calls": [{"task": name, "args": [...], "kwargs": {...}, "options": {...send_task options...},
                  "wait": true} | {"get": task_id}], "timeout": 30}
A {"get": id} call sends nothing: it reads the result of a task someone else sent.
Each call prints {"id", "state", "result", "error"}; error is null or
{"type", "module", "args", "repr", "is_builtin"} describing what AsyncResult.get() raised.
The app comes from pyapp (configured by CELERIAC_PY_* environment variables).
"""
import builtins
import json
import sys

from pyapp import app


def describe_error(exc):
    name = type(exc).__name__
    return {
        'type': name,
        'module': type(exc).__module__,
        'args': [a if isinstance(a, (str, int, float, bool, type(None), list, dict)) else repr(a) for a in exc.args],
        'repr': repr(exc),
        # True only when .get() raised the real Python built-in class, not a synthetic look-alike.
        'is_builtin': getattr(builtins, name, None) is type(exc),
    }


def main():
    spec = json.loads(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read())
    timeout = spec.get('timeout', 30)
    sent = []
    for call in spec['calls']:
        if 'get' in call:
            sent.append((call, app.AsyncResult(call['get'])))
            continue
        # A tuple, as task.delay(2, 2) passes, so argsrepr reads "(2, 2)" as in ordinary Python code.
        result = app.send_task(call['task'], args=tuple(call.get('args', [])), kwargs=call.get('kwargs', {}),
                               **call.get('options', {}))
        sent.append((call, result))
    out = []
    for call, result in sent:
        entry = {'id': result.id, 'state': None, 'result': None, 'error': None}
        if call.get('wait', True):
            try:
                entry['result'] = result.get(timeout=timeout, propagate=True)
            except Exception as exc:  # the test wants to see exactly what Python raised
                entry['error'] = describe_error(exc)
            entry['state'] = result.state
        out.append(entry)
    sys.stdout.write(json.dumps(out) + '\n')
    sys.stdout.flush()


if __name__ == '__main__':
    main()
