"""The benchmark's side channel: a task reports when it started to the bench process.

Each task sends one datagram ``tag enqueued started`` (monotonic seconds; CLOCK_MONOTONIC is
system-wide on Linux, so both processes read the same clock) to the AF_UNIX socket named by
``BENCH_LEDGER``. The bench blocks on that socket: it learns of a start at once without
polling either queue's database, so neither system is slowed or favoured by the measuring.
"""
import os
import socket
import time

_sock = None
_pid = None


def report(tag, enqueued):
    """Called first thing in a task: returns the monotonic start time after reporting it."""
    started = time.monotonic()
    global _sock, _pid
    path = os.environ.get('BENCH_LEDGER')
    if path:
        if _sock is None or _pid != os.getpid():  # one socket per (forked) process
            _sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            _pid = os.getpid()
        _sock.sendto(('%s %r %r' % (tag, enqueued, started)).encode('ascii'), path)
    return started


_first_sent = None


def report_first():
    """Called first thing in the drain benchmark's no-op task: the first task run in each
    process (thread workers share one) sends ``first 0 <started>`` once; later calls cost one
    comparison."""
    global _first_sent
    if _first_sent != os.getpid():
        _first_sent = os.getpid()
        report('first', 0.0)


def add_noop(app):
    """Register bench/compare.py's drain task on a sqlq queue or a huey (same decorator API).
    It returns its argument: neither system stores a None result by default."""
    @app.task(name='bench.noop')
    def noop(i):
        report_first()
        return i

    return noop


#: bench/scale.py's urgent task's priority: above every background task's (0-9).
URGENT_PRIORITY = 10


def add_scale_tasks(app):
    """Register bench/scale.py's tasks on a sqlq queue or a huey: ``sized(i, data)`` (a
    payload of any size; returns ``i``), ``prio(i)`` (a background task of the priority
    scenario; returns the monotonic time it started) and ``urgent(tag, enqueued)`` (reports its
    start over the ledger, at priority :data:`URGENT_PRIORITY`)."""
    @app.task(name='bench.sized')
    def sized(i, data):
        report_first()
        return i

    @app.task(name='bench.prio')
    def prio(i):
        report_first()
        return time.monotonic()

    @app.task(name='bench.urgent', priority=URGENT_PRIORITY)
    def urgent(tag, enqueued):
        return report(tag, enqueued)

    return sized, prio, urgent
