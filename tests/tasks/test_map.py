"""``TaskWrapper.map`` stores what one enqueue per item stores (issue 17, item 6: its batch
path builds, checks and encodes a batch's tasks together). Each test compares a ``map`` with
the same calls enqueued through ``s()`` and ``enqueue_many``, the general path."""
from __future__ import annotations

import collections
import datetime

import pytest

from sqlq import ResultGroup, Task
from sqlq.serializer import Serializer
from sqlq.signals import SIGNAL_ENQUEUED
from tests._clock import FakeClock
from tests._helpers import drain

Point = collections.namedtuple('Point', 'x y')


def stored(queue):
    """The ready messages, oldest first, decoded and with their ids apart."""
    messages = [queue.task_codec.codec.decode(data) if hasattr(queue.task_codec, 'codec')
                else queue.codec.decode(data) for data in queue.storage.enqueued_items()]
    return [m._replace(id='') for m in messages], [m.id for m in messages]


def mapped_and_called(queue, task, items):
    """(messages of ``task.map(items)``, messages of the same calls one by one), each with
    their ids; the queue is flushed in between."""
    group = task.map(items)
    first, first_ids = stored(queue)
    queue.flush()
    queue.enqueue_many([task.s(*(item if isinstance(item, tuple) else (item,)))
                        for item in items])
    second, second_ids = stored(queue)
    queue.flush()
    return group, (first, first_ids), (second, second_ids)


ITEMS = [1, (2,), Point(3, 4), ('a', [5]), (), None, {'k': 6}]


def test_map_stores_the_messages_of_single_calls(make_queue):
    queue = make_queue(clock=FakeClock())

    @queue.task()
    def anything(*args):
        return args

    group, (mapped, ids), (called, _) = mapped_and_called(queue, anything, ITEMS)
    assert mapped == called
    assert [m.args for m in mapped] == [(1,), (2,), (3, 4), ('a', [5]), (), (None,),
                                        ({'k': 6},)]
    assert type(mapped[2].args) is tuple  # a namedtuple item is its fields, as a call
    assert [r.id for r in group] == ids and len(set(ids)) == len(ITEMS)


@pytest.mark.parametrize('options', [
    dict(retries=2, retry_delay=1.5, priority=7, timeout=30),
    dict(expires=60, retry_backoff=2.0),
    dict(expires=datetime.timedelta(seconds=5), priority=-3),
])
def test_map_stores_the_options_of_single_calls(make_queue, options):
    queue = make_queue(clock=FakeClock())

    @queue.task(**options)
    def job(x):
        return x

    _, (mapped, _), (called, _) = mapped_and_called(queue, job, [1, 2, 3])
    assert mapped == called
    assert mapped[0].options.priority == options.get('priority')


def test_map_of_a_context_task_and_a_custom_task_base(make_queue):
    queue = make_queue(clock=FakeClock())
    made = []

    class Counted(Task):
        def __init__(self, *args, **kwargs):
            made.append(1)
            super().__init__(*args, **kwargs)

    @queue.task(context=True, task_base=Counted)
    def job(x, task=None):
        return (x, task.id)

    group, (mapped, _), (called, _) = mapped_and_called(queue, job, [1, 2])
    assert mapped == called and len(made) == 4  # its __init__ ran for every task
    drain(queue)


def test_map_sends_the_enqueued_signal_per_task_in_order(queue):
    seen = []

    @queue.task()
    def job(x):
        return x

    @queue.signal(SIGNAL_ENQUEUED)
    def enqueued(signal, task):
        seen.append((task.args, task.id))

    group = job.map(range(4))
    assert seen == [((i,), r.id) for i, r in zip(range(4), group)]


def test_map_checks_every_call_before_writing(queue):
    @queue.task()
    def pair(a, b):
        return a + b

    with pytest.raises(TypeError, match='pair'):
        pair.map([(1, 2), (3, 4), (5,), (6, 7)])
    with pytest.raises(TypeError, match='pair'):
        pair.map([(1, 2), (3, 4, 5)])
    assert queue.pending_count() == 0
    assert isinstance(pair.map([(1, 2)] * 3), ResultGroup)
    assert queue.pending_count() == 3


class Tagging(Serializer):
    """A custom serializer: what it makes of the arguments is stored."""

    def _serialize(self, data):
        return b'tag' + super()._serialize(data)

    def _deserialize(self, data):
        assert data[:3] == b'tag'
        return super()._deserialize(data[3:])


@pytest.mark.parametrize('serializer', [Tagging(), Serializer(compression=True)],
                         ids=['custom', 'compressed'])
def test_map_through_a_custom_serializer(make_queue, serializer):
    queue = make_queue(serializer=serializer, clock=FakeClock())

    @queue.task()
    def job(x):
        return x * 2

    group, (mapped, _), (called, _) = mapped_and_called(queue, job, [1, 2, 3])
    assert mapped == called
    group = job.map([4, 5])
    drain(queue)
    assert group.get() == [8, 10]


def test_map_of_a_unique_task_keeps_one_per_call(queue):
    @queue.task(unique=True)
    def job(x):
        return x

    first = job.map([1, 2, 1])
    assert queue.pending_count() == 2
    ids = [result.id for result in first]
    assert ids[0] == ids[2] != ids[1]


def test_map_in_immediate_mode_runs_the_calls(make_queue):
    queue = make_queue(immediate=True)

    @queue.task()
    def job(x):
        return x + 1

    assert job.map([1, 2, 3]).get() == [2, 3, 4]


def test_fresh_tasks_are_what_task_init_makes(queue):
    from sqlq.task import fresh_tasks

    @queue.task(retries=3)
    def job(x):
        return x

    made = job.task_class((1,), {}, id='a')
    fresh = fresh_tasks(job.task_class, [(1,)], ['a'])[0]
    assert type(fresh) is type(made)
    assert list(vars(fresh).items()) == list(vars(made).items())  # same attributes, in order
    assert fresh.options is made.options and fresh.kwargs is not made.kwargs
