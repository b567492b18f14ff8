"""A storage that keeps nothing, as huey's BlackHoleStorage: usable through
``storage_class=``, and the proof that immediate mode never touches the regular storage."""
from __future__ import annotations

from typing import Any, List

import pytest

from sqlq import TaskException, TaskLockedException
from sqlq.storage import EMPTY, BlackHoleStorage
from tests._helpers import drain


class WatchedBlackHole(BlackHoleStorage):
    """A BlackHoleStorage that records the name of every storage method called on it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        object.__setattr__(self, 'calls', [])
        super().__init__(*args, **kwargs)

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if callable(value) and not name.startswith('_'):
            calls: List[str] = object.__getattribute__(self, 'calls')
            calls.append(name)
        return value


def test_black_hole_storage_keeps_nothing():
    """huey: BlackHoleStorage discards writes; reads find nothing; put_if_empty always
    succeeds; a counter never gets past its first increment."""
    storage = BlackHoleStorage('void')
    storage.enqueue(b'task', 5)
    assert storage.dequeue() is None and storage.queue_size() == 0
    assert storage.enqueued_items() == []
    storage.add_to_schedule(b'later', 10.0)
    assert storage.read_schedule(20.0) == [] and storage.schedule_size() == 0
    storage.put_data('k', b'v', is_result=True)
    assert storage.peek_data('k') is EMPTY and storage.pop_data('k') is EMPTY
    assert not storage.has_data_for_key('k') and storage.delete_data('k') is False
    assert storage.put_if_empty('lock', b'1') and storage.put_if_empty('lock', b'1')
    assert storage.incr('n') == 1 and storage.incr('n', 3) == 3
    assert storage.result_store_size() == 0 and storage.result_items() == {}
    assert storage.wait_for_change(0.01, 'data') is False
    storage.close()


def test_black_hole_takes_keys_and_tracks_nothing():
    """The storage contract's message keys are accepted (and dropped); the Tracking
    capability keeps nothing: no location, no history, no claim to finish."""
    storage = BlackHoleStorage('void')
    storage.enqueue(b'task', 0, 'id-1')
    assert storage.enqueue_many([(b'a', 0), (b'b', 1)], keys=['id-2', None]) == 2
    storage.add_to_schedule(b'later', 10.0, 'id-3')
    assert storage.add_dead_letter(b'bad', 'why', key='id-4') == 0
    assert storage.locate('id-1') == [] and not storage.tracks_tasks
    assert storage.finish((1, storage.owner_id, 1)) is False
    assert storage.complete_many([((1, storage.owner_id, 1), None, None, None)],
                                 history=[None]) == [False]
    assert storage.history() == [] and storage.history_stats() == []
    storage.close()


def test_queue_on_a_black_hole_enqueues_into_nothing(make_queue):
    """huey: a BlackHoleHuey accepts tasks and never runs or stores anything; any queue class
    takes it as ``storage_class`` (backend options are ignored)."""
    queue = make_queue(storage_class=BlackHoleStorage)
    assert isinstance(queue.storage, BlackHoleStorage)

    @queue.task()
    def add(a, b):
        return a + b

    result = add(1, 2)
    assert queue.pending() == [] and len(queue) == 0
    assert drain(queue) == 0
    assert result.get() is None
    assert queue.status(result.id).state == 'unknown' and queue.history() == []
    with queue.lock_task('x'):
        with queue.lock_task('x'):       # nothing is ever held
            pass


def test_immediate_mode_never_touches_the_regular_storage(make_queue):
    """huey: immediate mode runs tasks on its own in-memory storage: the queue's storage
    (a black hole watching its calls) is never used while it is on."""
    queue = make_queue(storage_class=WatchedBlackHole)
    watched = queue.storage
    assert isinstance(watched, WatchedBlackHole)
    queue.immediate = True
    watched.calls.clear()

    @queue.task(retries=1)
    def add(a, b):
        return a + b

    @queue.task()
    def fail():
        raise ValueError('no')

    assert add(1, 2).get() == 3                       # stored and read back: not a black hole
    assert queue.enqueue(add.s(1, 2).then(add, 10)).get() == [3, 13]
    assert [r.get() for r in add.map([(1, 1), (2, 2)])] == [2, 4]
    with pytest.raises(TaskException):
        fail().get()
    with queue.lock_task('held'):
        with pytest.raises(TaskLockedException):       # a real lock: memory storage
            with queue.lock_task('held'):
                pass
    queue.put('key', 'value')
    assert queue.get('key') == 'value'
    assert watched.calls == []
    queue.immediate = False
    assert queue.storage is watched
