"""Build canvases with Python Celery, apply them, and print what each gave as one JSON line (the last line).

Usage: python canvas_produce.py '<spec json>'
spec: {"calls": [{"canvas": C, "options": {...apply_async options}, "stamp": {...}, "wait": true}], "timeout": 30}
C is one of
  {"s": name, "args": [...], "kwargs": {...}, "options": {...}, "immutable": false, "link": [C], "link_error": [C]}
  {"chain": [C, ...]}  {"group": [C, ...]}  {"chord": [C, ...], "body": C}
  {"map": C, "it": [...]}  {"starmap": C, "it": [[...], ...]}  {"chunks": C, "it": [[...], ...], "n": 2}
Each call prints {"id", "kind": "task" | "group", "ids": member ids (groups), "parents": ids up the parent
links, "state", "result", "error", "children": child ids, "by_id"}; error is null or {"type", "module", "args",
"repr"}. result/error are what the applied result's get() gave: Celery's get() also looks at the parents (a
chord's header, a chain's earlier steps) and may raise a parent's error first. by_id is {"result", "error"} of
AsyncResult(id).get() for a task result: the result alone, as any other client reads it.
"""
import json
import sys

from celery import chain, chord, group
from celery.canvas import chunks, xmap, xstarmap
from celery.result import GroupResult

from canvasapp import app


def build(c):
    if 's' in c:
        sig = app.signature(c['s'], args=tuple(c.get('args', [])), kwargs=c.get('kwargs', {}),
                            options=c.get('options', {}), immutable=c.get('immutable', False))
        for cb in c.get('link', []):
            sig.link(build(cb))
        for eb in c.get('link_error', []):
            sig.link_error(build(eb))
        return sig
    if 'chain' in c:
        return chain(*[build(x) for x in c['chain']])
    if 'group' in c:
        return group(*[build(x) for x in c['group']])
    if 'chord' in c:
        return chord([build(x) for x in c['chord']], build(c['body']))
    if 'map' in c:
        return xmap(build(c['map']), c['it'], app=app)
    if 'starmap' in c:
        return xstarmap(build(c['starmap']), [tuple(x) for x in c['it']], app=app)
    if 'chunks' in c:
        return chunks(build(c['chunks']), [tuple(x) for x in c['it']], c['n'], app=app)
    raise ValueError('unknown canvas %r' % (c,))


def describe_error(exc):
    return {
        'type': type(exc).__name__,
        'module': type(exc).__module__,
        'args': [a if isinstance(a, (str, int, float, bool, type(None), list, dict)) else repr(a) for a in exc.args],
        'repr': repr(exc),
    }


def main():
    spec = json.loads(sys.argv[1])
    timeout = spec.get('timeout', 30)
    applied = []
    for call in spec['calls']:
        canvas = build(call['canvas'])
        if call.get('stamp'):
            canvas.stamp(**call['stamp'])
        applied.append((call, canvas.apply_async(**call.get('options', {}))))
    out = []
    for call, res in applied:
        is_group = isinstance(res, GroupResult)
        entry = {'id': res.id, 'kind': 'group' if is_group else 'task', 'ids': [r.id for r in res.results] if is_group else None,
                 'parents': [], 'state': None, 'result': None, 'error': None, 'children': None}
        node = res.parent
        while node is not None:
            entry['parents'].append(node.id)
            node = node.parent
        if call.get('wait', True):
            try:
                entry['result'] = res.get(timeout=timeout, propagate=True)
            except Exception as exc:  # the test compares exactly what Python raised
                entry['error'] = describe_error(exc)
            if is_group:
                for r in res.results:  # every member finished, so the states are final
                    try:
                        r.get(timeout=timeout, propagate=False)
                    except Exception:
                        pass
                entry['state'] = [r.state for r in res.results]
            else:
                alone = app.AsyncResult(res.id)
                entry['by_id'] = {'result': None, 'error': None}
                try:
                    entry['by_id']['result'] = alone.get(timeout=timeout, propagate=True)
                except Exception as exc:
                    entry['by_id']['error'] = describe_error(exc)
                # Read once the result itself is final (get() may have raised a parent's error before).
                entry['state'] = alone.state
                entry['children'] = [c.id for c in (alone.children or [])]
        out.append(entry)
    sys.stdout.write(json.dumps(out) + '\n')
    sys.stdout.flush()


if __name__ == '__main__':
    main()
