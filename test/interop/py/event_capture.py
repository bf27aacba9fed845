"""Capture Celery events with Celery's own receiver (app.events.Receiver, what `celery events` and Flower
use) and report what one worker sent.

Argument: one JSON object
  broker     broker URL
  hostname   the worker whose events count (others on the exchange are ignored)
  expect     stop once this many distinct tasks have a task-succeeded or task-failed event
  keep       task ids whose events are reported in full
  timeout    seconds without any event before giving up

Prints CAPTURING once the receiver is set up, SEEN_WORKER at the worker's first event, then one JSON
line: counts by type, distinct task ids by type, duplicates, whether the worker's clock only moved
forward, and the kept events as the receiver handed them over.
"""
import json
import socket
import sys

from celery import Celery

arg = json.loads(sys.argv[1])
app = Celery('event-capture', broker=arg['broker'])
host = arg['hostname']
expect = int(arg['expect'])
keep = set(arg.get('keep', []))

counts = {}
ids = {}
kept = []
st = {'seen': False, 'duplicates': 0, 'last_clock': -1, 'clock_backwards': 0, 'finished': 0}
recv = None


def on_event(event):
    if event.get('hostname') != host:
        return
    if not st['seen']:
        st['seen'] = True
        print('SEEN_WORKER', flush=True)
    kind = event['type']
    counts[kind] = counts.get(kind, 0) + 1
    if not kind.startswith('task-'):
        return
    clock = event['clock']
    if clock <= st['last_clock']:
        st['clock_backwards'] += 1
    st['last_clock'] = clock
    seen = ids.setdefault(kind, set())
    if event['uuid'] in seen:
        st['duplicates'] += 1
    seen.add(event['uuid'])
    if event['uuid'] in keep:
        kept.append(event)
    if kind in ('task-succeeded', 'task-failed'):
        st['finished'] = len(ids.get('task-succeeded', ())) + len(ids.get('task-failed', ()))
        if st['finished'] >= expect:
            recv.should_stop = True


with app.connection() as conn:
    recv = app.events.Receiver(conn, handlers={'*': on_event})
    print('CAPTURING', flush=True)
    timed_out = False
    try:
        recv.capture(limit=None, timeout=float(arg.get('timeout', 60)), wakeup=False)
    except socket.timeout:
        timed_out = True

print(json.dumps({
    'timed_out': timed_out,
    'counts': counts,
    'distinct': {k: len(v) for k, v in ids.items()},
    'duplicates': st['duplicates'],
    'clock_backwards': st['clock_backwards'],
    'kept': kept,
}, default=repr), flush=True)
