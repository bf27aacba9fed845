"""Python Celery peer for the Celeriac benchmarks (run with Debian's /usr/bin/python3).

Usage: /usr/bin/python3 bench/python/celery_peer.py '<ChildSpec JSON>'

Prints one line 'BENCH_RESULT {json}' (same fields as bench/lib/spec.ts ChildResult) and, for the
'worker' role, 'BENCH_READY' once the worker consumes. A task is counted in the task_postrun signal,
which Celery sends after the result is stored; with Celery's default early acknowledgement the
message was acked before the task ran.
"""
import json
import os
import resource
import sys
import threading
import time
import uuid

import celery
import kombu
from celery import Celery
from celery.signals import task_postrun, worker_ready

SPEC = json.loads(sys.argv[1])
RESULT_PREFIX = 'BENCH_RESULT '

app = Celery('bench', broker=SPEC['brokerUrl'],
             backend=SPEC['backendUrl'] if SPEC['results'] or SPEC['role'] == 'latency' else None)
app.conf.update(
    task_ignore_result=not SPEC['results'],
    task_default_queue=SPEC['queue'],
    worker_hijack_root_logger=False,
    worker_redirect_stdouts=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name='bench.noop')
def noop(*args, **kwargs):
    return None


@app.task(name='bench.count')
def count(results):
    """S9's chord body: how many header results it was given."""
    return len(results)


@app.task(name='bench.io')
def io(*args, **kwargs):
    time.sleep(SPEC['ioMs'] / 1000.0)
    return None


def cpu_ms():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return (ru.ru_utime + ru.ru_stime) * 1000.0


def max_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


NOTES = {'celery': celery.__version__, 'kombu': kombu.__version__,
         'python': '%d.%d.%d' % sys.version_info[:3]}


def emit(result):
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + '\n')
    sys.stdout.flush()


def timed(n, body, notes=None):
    c0, t0 = cpu_ms(), time.perf_counter()
    body()
    elapsed = (time.perf_counter() - t0) * 1000.0
    emit({'ok': True, 'count': n, 'elapsedMs': elapsed, 'rate': n * 1000.0 / elapsed,
          'maxRssBytes': max_rss_bytes(), 'cpuMs': cpu_ms() - c0, 'notes': dict(NOTES, **(notes or {}))})


def task_for_spec():
    return io if SPEC['task'] == 'io' else noop


def prefill_redis_by_cloning(n):
    """Fast pre-fill: publish one message with Celery's own producer, then push copies with fresh ids."""
    import redis
    template_queue = SPEC['queue'] + '.template'
    task_for_spec().apply_async(queue=template_queue, routing_key=template_queue)
    client = redis.Redis.from_url(SPEC['brokerUrl'])
    raw = client.rpop(template_queue)
    if raw is None:
        raise RuntimeError('template message not found in %s' % template_queue)
    template = json.loads(raw)
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        tid = str(uuid.uuid4())
        template['headers']['id'] = tid
        template['headers']['root_id'] = tid
        template['properties']['correlation_id'] = tid
        template['properties']['delivery_tag'] = str(uuid.uuid4())
        template['properties']['delivery_info']['routing_key'] = SPEC['queue']
        pipe.lpush(SPEC['queue'], json.dumps(template))
        if (i + 1) % SPEC['batch'] == 0:
            pipe.execute()
    pipe.execute()


def publish_with_one_producer(n):
    task = task_for_spec()
    with app.producer_or_acquire() as producer:
        for _ in range(n):
            task.apply_async(producer=producer)


class Counter:
    def __init__(self, target):
        self.target = target
        self.count = 0
        self.first = 0.0
        self.cpu0 = 0.0
        self.lock = threading.Lock()

    def tick(self):
        with self.lock:
            now = time.perf_counter()
            if self.count == 0:
                self.first = now
                self.cpu0 = cpu_ms()
            self.count += 1
            if self.count != self.target:
                return
        elapsed = (now - self.first) * 1000.0
        emit({'ok': True, 'count': self.count, 'elapsedMs': elapsed,
              'rate': (self.count - 1) * 1000.0 / elapsed if elapsed > 0 else 0,
              'maxRssBytes': max_rss_bytes(), 'cpuMs': cpu_ms() - self.cpu0,
              'notes': dict(NOTES, pool=SPEC.get('pool') or 'solo', concurrency=SPEC['concurrency'],
                            prefetch_multiplier=app.conf.worker_prefetch_multiplier)})
        os._exit(0)


def run_worker():
    pool = SPEC.get('pool') or 'solo'
    argv = ['worker', '-P', pool, '-Q', SPEC['queue'], '-l', 'WARNING',
            '--without-mingle', '--without-gossip', '--without-heartbeat']
    if pool != 'solo':
        argv += ['-c', str(SPEC['concurrency'])]
    if SPEC.get('events'):
        argv += ['-E']
    app.worker_main(argv=argv)


def main():
    role, n = SPEC['role'], SPEC['n']
    is_redis = SPEC['brokerUrl'].startswith('redis')
    if role == 'publish-single':
        task = task_for_spec()
        timed(n, lambda: [task.apply_async() for _ in range(n)], {'api': 'apply_async'})
    elif role == 'publish-bulk':
        timed(n, lambda: publish_with_one_producer(n), {'api': 'apply_async with one producer'})
    elif role == 'prefill':
        if is_redis:
            timed(n, lambda: prefill_redis_by_cloning(n), {'api': 'cloned message, pipelined LPUSH'})
        else:
            timed(n, lambda: publish_with_one_producer(n), {'api': 'apply_async with one producer'})
    elif role == 'drain':
        counter = Counter(n)
        task_postrun.connect(lambda **kw: counter.tick(), weak=False)
        run_worker()
    elif role == 'worker':
        worker_ready.connect(lambda **kw: (sys.stdout.write('BENCH_READY\n'), sys.stdout.flush()), weak=False)
        run_worker()
    elif role == 'canvas':
        from celery import chord, group

        def run():
            members = [noop.s() for _ in range(n)]
            if SPEC.get('canvas') == 'chord':
                got = chord(members)(count.s()).get(timeout=600)
                if got != n:
                    raise RuntimeError('the chord body counted %r results, not %d' % (got, n))
            else:
                got = group(members).apply_async().get(timeout=600)
                if len(got) != n:
                    raise RuntimeError('the group gave %d results, not %d' % (len(got), n))
        timed(n, run, {'canvas': SPEC.get('canvas') or 'group'})
    elif role == 'latency':
        task = task_for_spec()
        for _ in range(SPEC['warmup']):
            task.apply_async().get(timeout=30)
        lat = []
        c0, t0 = cpu_ms(), time.perf_counter()
        for _ in range(n):
            s = time.perf_counter()
            task.apply_async().get(timeout=30)
            lat.append((time.perf_counter() - s) * 1000.0)
        elapsed = (time.perf_counter() - t0) * 1000.0
        lat.sort()
        emit({'ok': True, 'count': n, 'elapsedMs': elapsed, 'rate': n * 1000.0 / elapsed, 'latenciesMs': lat,
              'maxRssBytes': max_rss_bytes(), 'cpuMs': cpu_ms() - c0, 'notes': NOTES})
    else:
        raise SystemExit('unknown role %r' % role)


if __name__ == '__main__':
    try:
        main()
    except Exception as exc:  # report, never hang the orchestrator
        import traceback
        emit({'ok': False, 'error': traceback.format_exc(), 'count': 0, 'elapsedMs': 0, 'rate': 0,
              'maxRssBytes': max_rss_bytes(), 'cpuMs': 0})
        sys.exit(1)
