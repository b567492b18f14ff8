"""Locks and serializers as in huey 3.5: flush_locks(*names), the TaskLock API, and a
compressing serializer that still reads what was stored uncompressed."""
from __future__ import annotations

import gzip
import pickle
import zlib

import pytest

from sqlq import Serializer, TaskLock, TaskLockedException
from tests._helpers import drain

# -- flush_locks ---------------------------------------------------------------------------------

def test_flush_locks_with_names_releases_them_and_every_declared_lock(queue):
    """huey: flush_locks('x') flushes the locks this process declared AND the named ones,
    returning those that were held."""
    @queue.task()
    @queue.lock_task('reports-lock')
    def generate_report():
        return 'report'

    queue.lock_task('reports-lock').acquire()   # held, e.g. by a consumer that died
    TaskLock(queue, 'db-backup').acquire()     # taken in a function body: not declared
    assert queue.is_locked('reports-lock') and queue.is_locked('db-backup')
    assert queue.flush_locks('db-backup', 'never-held') == {'reports-lock', 'db-backup'}
    assert not queue.is_locked('reports-lock') and not queue.is_locked('db-backup')


def test_flush_locks_without_names_releases_the_declared_locks(queue):
    """huey: flush_locks() clears every lock declared with lock_task -- as a decorator or
    as a context manager -- and returns those that were held."""
    held = queue.lock_task('held')
    queue.lock_task('idle')                     # declared, never taken
    held.acquire()
    assert queue.flush_locks() == {'held'}
    assert not held.is_locked()
    assert queue.flush_locks() == set()


def test_task_lock_api(queue):
    """huey: TaskLock.acquire() returns True or raises TaskLockedException; release() and
    clear() free it; locked()/is_locked(); ``with lock_task(...) as lock`` binds the lock."""
    lock = queue.lock_task('api')
    assert lock.acquire() is True
    with pytest.raises(TaskLockedException, match='unable to acquire lock api'):
        lock.acquire()
    assert lock.locked() and lock.is_locked() and queue.is_locked('api')
    assert lock.release() is True and lock.release() is False
    assert not lock.locked()
    with queue.lock_task('api') as bound:
        assert bound.locked()
        with pytest.raises(TaskLockedException):
            with queue.lock_task('api'):
                pass
    lock.acquire()
    assert lock.clear() is True


# -- serializers ----------------------------------------------------------------------------------

def define_add(queue):
    @queue.task()
    def add(a, b):
        return a + b

    return add


def test_turning_compression_on_still_reads_stored_tasks_and_results(make_queue, backend):
    """huey: a serializer with compression reads data stored without it, so turning
    compression on does not strand the tasks and results already stored."""
    before = make_queue()
    after = make_queue(compression=True)
    if backend == 'memory':                      # one in-process storage for both
        after.storage = before.storage
    done = define_add(before)(1, 2)
    drain(before)
    pending = define_add(before)(20, 22)
    add = define_add(after)
    assert drain(after) == 1                    # the task stored uncompressed runs
    assert after.result(done.id) == 3           # a result stored uncompressed is read
    assert after.result(pending.id) == 42
    assert add(5, 5) is not None and drain(after) == 1


def test_compressing_serializer_reads_zlib_gzip_and_raw_data():
    """huey: compressed data reads back; sqlq also reads huey's default gzip framing and
    plain pickles (stored before compression was on)."""
    value = {'numbers': list(range(50))}
    raw = pickle.dumps(value)
    compressing = Serializer(compression=True)
    assert compressing.deserialize(compressing.serialize(value)) == value
    assert compressing.deserialize(raw) == value
    assert compressing.deserialize(gzip.compress(raw)) == value
    assert compressing.deserialize(zlib.compress(raw)) == value
    assert len(compressing.serialize(value)) < len(raw)


def test_use_zlib_option_is_accepted(make_queue):
    """huey: Huey(use_zlib=...) and Serializer(use_zlib=...) are accepted (sqlq always
    compresses with zlib)."""
    queue = make_queue(compression=True, use_zlib=False)
    result = define_add(queue)(2, 3)
    drain(queue)
    assert result.get() == 5
    assert Serializer(compression=True, use_zlib=False).use_zlib is True


def test_serializer_takes_hueys_pickle_protocol(make_queue):
    """huey: Serializer(pickle_protocol=...) picks the pickle protocol of stored data."""
    serializer = Serializer(pickle_protocol=2)
    assert serializer.serialize(('x', 1))[:2] == b'\x80\x02'
    queue = make_queue(serializer=serializer)
    result = define_add(queue)(40, 2)
    drain(queue)
    assert result.get() == 42
    with pytest.raises(ValueError):
        Serializer(pickle_protocol=99)
