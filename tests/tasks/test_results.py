"""Result and ResultGroup: reading, blocking with timeouts, preserve, revoke, reschedule, reset."""
from __future__ import annotations

import threading
import time

import pytest

from sqlq import Result, ResultGroup, ResultTimeout, TaskException
from tests._helpers import drain


def test_get_and_call_are_equivalent(queue):
    @queue.task()
    def add(a, b):
        return a + b

    res = add(1, 2)
    assert res() is None
    drain(queue)
    assert res() == 3
    assert res.get() == 3                      # handle caches the value it read


def test_read_is_destructive_for_other_readers(queue):
    @queue.task()
    def val():
        return 'v'

    res = val()
    drain(queue)
    assert queue.result_count() == 1
    assert res.get() == 'v'
    assert queue.result_count() == 0
    assert queue.result(res.id) is None        # another reader finds nothing
    assert res.get() == 'v'                    # but this handle remembers it


def test_preserve_keeps_the_result(queue):
    @queue.task()
    def val():
        return 'kept'

    res = val()
    drain(queue)
    assert res.get(preserve=True) == 'kept'
    assert queue.result(res.id, preserve=True) == 'kept'
    assert queue.result_count() == 1
    assert queue.result(res.id) == 'kept'
    assert queue.result(res.id) is None


def test_is_ready_keeps_the_value_for_get(queue):
    @queue.task()
    def val():
        return 1

    res = val()
    assert res.is_ready() is False
    drain(queue)
    assert res.is_ready() is True
    assert res.is_ready() is True
    assert res.get() == 1


def test_falsy_results_are_distinguished_from_missing(queue):
    @queue.task()
    def val(x):
        return x

    rs = [val(0), val(''), val(False), val([])]
    drain(queue)
    assert [r.is_ready() for r in rs] == [True] * 4
    assert [r.get() for r in rs] == [0, '', False, []]


def test_blocking_get_times_out_with_result_timeout(queue):
    @queue.task()
    def never_run():
        return 1

    res = never_run()
    start = time.monotonic()
    with pytest.raises(ResultTimeout):
        res.get(blocking=True, timeout=0.2, backoff=1.5, max_delay=0.05)
    elapsed = time.monotonic() - start
    assert 0.15 <= elapsed < 2.0
    assert res.is_revoked() is False


def test_blocking_get_revoke_on_timeout(queue):
    ran = []

    @queue.task()
    def job():
        ran.append(1)

    res = job()
    with pytest.raises(ResultTimeout):
        res.get(blocking=True, timeout=0.05, max_delay=0.02, revoke_on_timeout=True)
    assert res.is_revoked() is True
    drain(queue)
    assert ran == []


def test_blocking_get_returns_when_worker_finishes(queue):
    started = threading.Event()

    @queue.task()
    def slow(x):
        return x + 1

    res = slow(41)

    def worker():
        started.set()
        task = queue.dequeue()
        queue.execute(task)

    t = threading.Thread(target=worker)
    t.start()
    try:
        assert started.wait(5)
        assert res.get(blocking=True, timeout=10, max_delay=0.05) == 42
    finally:
        t.join(10)
    assert not t.is_alive()


def test_blocking_get_raises_task_exception(queue):
    @queue.task()
    def bad():
        raise ValueError('nope')

    res = bad()
    drain(queue)
    with pytest.raises(TaskException) as excinfo:
        res.get(blocking=True, timeout=5)
    assert 'nope' in excinfo.value.metadata['error']


def test_reset_forgets_cached_value(queue):
    @queue.task()
    def val(x):
        return x

    res = val(5)
    drain(queue)
    assert res.get() == 5
    res.reset()
    assert res.get() is None                   # the stored copy was consumed by the first read


def test_reschedule_runs_the_task_again_with_new_id(make_queue):
    import datetime
    queue = make_queue(utc=False)
    calls = []

    @queue.task()
    def job(x):
        calls.append(x)
        return x * 3

    res = job(2)
    drain(queue)
    assert res.get() == 6
    again = res.reschedule()
    assert isinstance(again, Result)
    assert again.id != res.id
    drain(queue)
    assert again.get() == 6
    assert calls == [2, 2]

    later = res.reschedule(delay=3600)
    drain(queue)
    assert calls == [2, 2]
    [sched] = queue.scheduled()
    assert sched.id == later.id and sched.args == (2,)
    assert sched.eta > datetime.datetime.now() + datetime.timedelta(seconds=3500)


def test_reschedule_after_revoke(queue):
    @queue.task()
    def job():
        return 'second time lucky'

    res = job()
    res.revoke()
    drain(queue)
    assert res.get() is None
    again = res.reschedule()
    drain(queue)
    assert again.get() == 'second time lucky'


def test_result_group_len_iter_and_get(queue):
    @queue.task()
    def sq(x):
        return x * x

    rg = sq.map([1, 2, 3])
    assert isinstance(rg, ResultGroup)
    assert len(rg) == 3
    assert all(isinstance(r, Result) for r in rg)
    assert [r.id for r in rg] == [r.id for r in rg.results]
    drain(queue)
    assert rg.results[1].get(preserve=True) == 4
    assert rg.get() == [1, 4, 9]
    assert rg() == [1, 4, 9]


def test_result_group_blocking_get_times_out(queue):
    @queue.task()
    def sq(x):
        return x * x

    rg = sq.map([1, 2])
    task = queue.dequeue()
    queue.execute(task)                         # only one of two done
    with pytest.raises(ResultTimeout):
        rg.get(blocking=True, timeout=0.1, max_delay=0.02)


def test_as_completed_orders_early_finishers_first(queue):
    @queue.task()
    def ident(x):
        return x

    rg = ident.map(['slow', 'fast'])
    tasks = {t.args[0]: t for t in (queue.dequeue(), queue.dequeue())}
    queue.execute(tasks['fast'])
    gen = rg.as_completed(max_delay=0.02)
    assert next(gen) == 'fast'
    queue.execute(tasks['slow'])
    assert next(gen) == 'slow'


def test_queue_result_by_id_blocking(queue):
    @queue.task()
    def val():
        return 'x'

    res = val()
    with pytest.raises(ResultTimeout):
        queue.result(res.id, blocking=True, timeout=0.05, max_delay=0.02)
    drain(queue)
    assert queue.result(res.id, blocking=True, timeout=5) == 'x'
