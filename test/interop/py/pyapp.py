"""Python Celery app for Celeriac's interop tests, configured from environment variables.

CELERIAC_PY_BROKER            broker URL (default redis://127.0.0.1:6379/2)
CELERIAC_PY_BACKEND           result backend URL (default: the broker URL)
CELERIAC_PY_QUEUE             task_default_queue (default "celery")
CELERIAC_PY_VISIBILITY_TIMEOUT broker_transport_options.visibility_timeout in seconds
CELERIAC_PY_ACKS_LATE         "1" for task_acks_late
CELERIAC_PY_PROTOCOL          task_protocol (1 or 2, default 2)
CELERIAC_PY_RETRY_QUEUE       queue that interop.flaky sends its retry to (default: same queue)
CELERIAC_PY_HOLD              "1": interop.slow blocks for an hour (a worker that holds messages until killed)
"""
import os
import time

from celery import Celery

BROKER = os.environ.get('CELERIAC_PY_BROKER', 'redis://127.0.0.1:6379/2')
BACKEND = os.environ.get('CELERIAC_PY_BACKEND', BROKER)

app = Celery('pyapp', broker=BROKER, backend=BACKEND)

transport_options = {}
if os.environ.get('CELERIAC_PY_VISIBILITY_TIMEOUT'):
    transport_options['visibility_timeout'] = float(os.environ['CELERIAC_PY_VISIBILITY_TIMEOUT'])

app.conf.update(
    task_default_queue=os.environ.get('CELERIAC_PY_QUEUE', 'celery'),
    broker_transport_options=transport_options,
    task_acks_late=os.environ.get('CELERIAC_PY_ACKS_LATE') == '1',
    task_protocol=int(os.environ.get('CELERIAC_PY_PROTOCOL', '2')),
    worker_prefetch_multiplier=1,
    result_expires=3600,
    broker_connection_retry_on_startup=True,
)


@app.task(name='py.add')
def add(x, y):
    return x + y


@app.task(name='py.mul')
def mul(x, y):
    return x * y


@app.task(name='py.fail')
def fail():
    raise ValueError('bad thing')


@app.task(name='py.echo_request', bind=True)
def echo_request(self, *args, **kwargs):
    r = self.request
    return {
        'lang': 'py',
        'args': list(args),
        'kwargs': kwargs,
        'request_args': list(r.args or []),
        'request_kwargs': dict(r.kwargs or {}),
        'id': r.id,
        'task': r.task,
        'retries': r.retries,
        'root_id': r.root_id,
        'parent_id': r.parent_id,
        'group': r.group,
        'shadow': getattr(r, 'shadow', None),
        'timelimit': list(r.timelimit) if r.timelimit else None,
        'eta': r.eta,
        'expires': r.expires,
        'origin': r.origin,
        'headers': r.headers or {},
        # Celery 5.2 puts apply_async(headers=...) keys straight onto the request.
        'custom_headers': {k: v for k, v in vars(r).items() if k.startswith('x-')},
        'delivery_info': dict(r.delivery_info or {}),
        'reply_to': r.reply_to,
        'correlation_id': r.correlation_id,
    }


@app.task(name='py.sleep')
def sleep(seconds, tag=None):
    time.sleep(seconds)
    return tag


@app.task(name='interop.slow', bind=True)
def slow(self, tag, seconds):
    """Shared with the TS app: which language ran it tells the test who got the message."""
    time.sleep(3600 if os.environ.get('CELERIAC_PY_HOLD') == '1' else seconds)
    return {'lang': 'py', 'tag': tag, 'redelivered': bool((self.request.delivery_info or {}).get('redelivered'))}


@app.task(name='interop.flaky', bind=True, max_retries=3)
def flaky(self, tag):
    """Shared with the TS app: on Python it retries once (optionally into another queue)."""
    if self.request.retries == 0:
        queue = os.environ.get('CELERIAC_PY_RETRY_QUEUE')
        options = {'queue': queue} if queue else {}
        raise self.retry(countdown=1, **options)
    return {'lang': 'py', 'tag': tag, 'retries': self.request.retries}
