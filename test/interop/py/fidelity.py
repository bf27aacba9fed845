"""The fidelity matrix, Python side: the values, the echo task, and the Python -> TS echo -> Python run.

Environment: CELERIAC_FID_BROKER, CELERIAC_FID_BACKEND, CELERIAC_FID_SERIALIZER (json | msgpack).
Worker:   python -m celery -A fidelity worker -Q <queue>   (serves fid.py_echo)
Producer: python fidelity.py '{"queue": "<ts queue>", "timeout": 30}'
          sends fid.ts_echo(value) for every row, reads each result, and prints one JSON line:
          [{"row", "id", "outcome", "detail"}] with outcome one of
            exact      the same type and value came back;
            as-python  what a Python -> Python round trip through kombu gives (tuple -> list, ...);
            refused    Python itself cannot send it with this serializer (kombu's EncodeError);
            failed     the task failed (detail: the exception type);
            changed    anything else (detail: repr of what came back).
"""
import datetime as dt
import json
import math
import os
import sys
import uuid
from decimal import Decimal

from celery import Celery
from kombu.exceptions import EncodeError
from kombu.serialization import dumps, loads

SERIALIZER = os.environ.get('CELERIAC_FID_SERIALIZER', 'json')

app = Celery('fidelity', broker=os.environ.get('CELERIAC_FID_BROKER'), backend=os.environ.get('CELERIAC_FID_BACKEND'))
app.conf.update(
    task_serializer=SERIALIZER,
    result_serializer=SERIALIZER,
    accept_content=['json', 'msgpack'],
    result_accept_content=['json', 'msgpack'],
    worker_prefetch_multiplier=4,
    result_expires=3600,
    broker_connection_retry_on_startup=True,
)


@app.task(name='fid.py_echo')
def py_echo(value):
    return value


UTC = dt.timezone.utc
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))

ROWS = [
    ('int small', 42),
    ('int negative', -7),
    ('int 2^53-1', 2**53 - 1),
    ('int 2^53+1', 2**53 + 1),
    ('int -(2^53+1)', -(2**53 + 1)),
    ('int 2^64+1', 2**64 + 1),
    ('int -2^70', -2**70),
    ('int 10^30', 10**30),
    ('float 1.5', 1.5),
    ('float 0.1', 0.1),
    ('float 2.0', 2.0),
    ('float -0.0', -0.0),
    ('float 1e16', 1e16),
    ('float nan', float('nan')),
    ('float inf', float('inf')),
    ('float -inf', float('-inf')),
    ('str ascii', 'hello'),
    ('str non-BMP', 'caf\u00e9 \U0001F600 \U0001D11E'),
    ('str lone surrogate', 'a\udc80b'),
    ('str NUL', 'a\x00b'),
    ('str NUL-prefixed NaN beside NaN', ['\x00NaN', float('nan'), '\x00Infinity', '\x00-Infinity']),
    ('str 1 MB', 'x\u00e9' * (2**19)),
    ('bytes UTF-8', b'hello \xc3\xa9'),
    ('bytes not UTF-8', bytes.fromhex('ff008041')),
    ('bytes empty', b''),
    ('datetime naive us', dt.datetime(2024, 1, 2, 3, 4, 5, 123456)),
    ('datetime UTC us', dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)),
    ('datetime +05:30', dt.datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=IST)),
    ('date', dt.date(2024, 2, 29)),
    ('time', dt.time(3, 4, 5, 6)),
    ('Decimal', Decimal('1.10')),
    ('UUID', uuid.UUID('12345678-1234-5678-1234-567812345678')),
    ('tuple', (1, 'a', None)),
    ('nested list and dict', {'a': [1, {'b': [True, None]}], 'c': {'d': {}}, 'e': []}),
    ('dict with __type__/__value__ only', {'__type__': 'widget', '__value__': 3}),
    ('dict with __type__ and more', {'__type__': 'uuid', '__value__': 5, 'x': 1}),
    ('None', None),
    ('True', True),
    ('False', False),
    ('list of mixed', [1, 2.5, 'x', None, False]),
]


def same(a, b):
    """Equal in value and in type, all the way down (NaN equals NaN, -0.0 is not 0.0, naive is not aware)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (dt.datetime, dt.time)):
        return a == b and a.utcoffset() == b.utcoffset() and (a.tzinfo is None) == (b.tzinfo is None)
    return a == b


def python_round_trip(value):
    """What a Python peer gets for this value through kombu (or the error kombu raises)."""
    content_type, encoding, data = dumps(value, serializer=SERIALIZER)
    return loads(data, content_type, encoding, accept=[content_type])


def main():
    spec = json.loads(sys.argv[1])
    sent = []
    for name, value in ROWS:
        try:
            r = app.send_task('fid.ts_echo', args=(value,), queue=spec['queue'], serializer=SERIALIZER)
        except EncodeError as exc:
            sent.append((name, value, None, exc))
            continue
        sent.append((name, value, r, None))
    out = []
    for name, value, r, refused in sent:
        if refused is not None:
            out.append({'row': name, 'id': None, 'outcome': 'refused', 'detail': repr(refused)[:200]})
            continue
        try:
            got = r.get(timeout=spec.get('timeout', 30))
        except Exception as exc:  # the test wants to see what Python raised
            out.append({'row': name, 'id': r.id, 'outcome': 'failed', 'detail': type(exc).__name__})
            continue
        if same(value, got):
            outcome, detail = 'exact', ''
        else:
            try:
                expected = python_round_trip(value)
            except Exception as exc:
                expected = exc
            outcome = 'as-python' if not isinstance(expected, Exception) and same(expected, got) else 'changed'
            detail = repr(got)[:200]
        out.append({'row': name, 'id': r.id, 'outcome': outcome, 'detail': detail})
    sys.stdout.write(json.dumps(out) + '\n')
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: pending AsyncResult cleanups there only print noise


if __name__ == '__main__':
    main()
