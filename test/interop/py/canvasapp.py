"""Python tasks for Celeriac's canvas interop tests, on pyapp's app (configured by CELERIAC_PY_* variables).

CELERIAC_PY_ROUTES   JSON task_routes, e.g. {"ts.*": {"queue": "q-ts"}, "py.*": {"queue": "q-py"}}
The record tasks RPUSH to the Redis at CELERIAC_PY_BACKEND, so a test can see that a callback ran.
"""
import json
import os

import redis

from pyapp import app, BACKEND

if os.environ.get('CELERIAC_PY_ROUTES'):
    app.conf.task_routes = json.loads(os.environ['CELERIAC_PY_ROUTES'])

_redis = None


def _r():
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(BACKEND)
    return _redis


@app.task(name='py.tsum')
def tsum(xs):
    return sum(xs)


@app.task(name='py.double')
def double(x):
    return x * 2


@app.task(name='py.fail_any')
def fail_any(*args):
    raise ValueError('bad thing')


@app.task(name='py.record', bind=True)
def record(self, value, key):
    """A callback (value = the result) or an errback (value = the failed task's id): bound, so never called in-process."""
    _r().rpush(key, json.dumps({'lang': 'py', 'value': value, 'id': self.request.id, 'parent_id': self.request.parent_id}))
    return value


@app.task(name='py.collect', bind=True)
def collect(self, results, key):
    """A chord body that counts its calls."""
    _r().rpush(key, json.dumps({'lang': 'py', 'n': len(results), 'id': self.request.id}))
    return results


@app.task(name='py.stamps', bind=True)
def stamps(self, value):
    """What stamping headers reached this task (Celery >= 5.3)."""
    return {'value': value, 'stamped_headers': getattr(self.request, 'stamped_headers', None),
            'stamps': getattr(self.request, 'stamps', None)}
