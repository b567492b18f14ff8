"""Bad input is refused at the call site and nothing is written; bad messages are kept.

These are sqlq's deliberate improvements over huey: argument binding and serialization are
checked when a task is called, and a message that cannot be turned into a task is moved to the
dead letters instead of being dropped.
"""
from __future__ import annotations

import datetime
import threading

import pytest

from sqlq import SerializationError, crontab
from tests._helpers import drain


def counts(queue):
    return queue.pending_count(), queue.scheduled_count()


# --------------------------------------------------------------------------- argument binding

def test_call_with_unbindable_arguments_raises_type_error(queue):
    @queue.task()
    def add(a, b):
        return a + b

    for args, kwargs in [((1,), {}), ((1, 2, 3), {}), ((1, 2), {'c': 3}), ((), {'a': 1})]:
        with pytest.raises(TypeError):
            add(*args, **kwargs)
    with pytest.raises(TypeError):
        add.schedule((1,), delay=10)
    with pytest.raises(TypeError):
        add.map([(1, 2), (1,)])
    assert counts(queue) == (0, 0)


def test_unbindable_signature_task_is_refused_before_enqueue(queue):
    @queue.task()
    def add(a, b):
        return a + b

    # a task built with .s() is checked at .s() or at enqueue, either way before it is written
    with pytest.raises(TypeError):
        queue.enqueue(add.s(1))
    with pytest.raises(TypeError):
        queue.enqueue_many([add.s(1, 2), add.s(1)])
    assert counts(queue) == (0, 0)


def test_varargs_functions_accept_anything(queue):
    @queue.task()
    def anything(*args, **kwargs):
        return len(args) + len(kwargs)

    r = anything(1, 2, x=3)
    drain(queue)
    assert r.get() == 3


def test_context_task_reserves_task_keyword(queue):
    @queue.task(context=True)
    def job(x, task=None):
        return x

    with pytest.raises(TypeError):
        job(1, task='mine')
    assert counts(queue) == (0, 0)
    r = job(1)
    drain(queue)
    assert r.get() == 1


# --------------------------------------------------------------------------- serialization

@pytest.mark.parametrize('bad', [lambda: None, threading.Lock()], ids=['lambda', 'lock'])
def test_unpicklable_argument_raises_and_writes_nothing(queue, bad):
    @queue.task()
    def job(x):
        return x

    job(1)
    with pytest.raises(SerializationError):
        job(bad)
    with pytest.raises(SerializationError):
        job.schedule((bad,), delay=60)
    with pytest.raises(SerializationError):
        job.schedule(kwargs={'x': bad})
    assert counts(queue) == (1, 0)


def test_map_is_all_or_nothing(queue):
    @queue.task()
    def job(x):
        return x

    with pytest.raises(SerializationError):
        job.map([1, 2, threading.Lock(), 4])
    assert counts(queue) == (0, 0)


def test_enqueue_many_is_all_or_nothing(queue):
    @queue.task()
    def job(x):
        return x

    good = [job.s(i) for i in range(3)]
    with pytest.raises(SerializationError):
        queue.enqueue_many(good + [job.s(lambda: 1)])
    assert counts(queue) == (0, 0)


# --------------------------------------------------------------------------- option types

@pytest.mark.parametrize('kwargs', [
    {'eta': '2024-01-01'}, {'eta': [1]},
    {'delay': '10'}, {'delay': object()},
    {'priority': 'high'}, {'priority': 1.5},
], ids=['eta-str', 'eta-list', 'delay-str', 'delay-obj', 'priority-str', 'priority-float'])
def test_wrong_option_types_raise_type_error(queue, kwargs):
    @queue.task()
    def job():
        return 1

    with pytest.raises(TypeError):
        job.schedule(**kwargs)
    assert counts(queue) == (0, 0)


def test_numeric_eta_and_timedelta_delay_are_accepted(make_queue):
    import time
    queue = make_queue(utc=False)

    @queue.task()
    def job():
        return 1

    job.schedule(eta=time.time() + 3600)
    job.schedule(delay=datetime.timedelta(hours=1))
    assert counts(queue) == (0, 2)


# --------------------------------------------------------------------------- dead letters

def test_unregistered_task_message_goes_to_dead_letters(queue, caplog):
    @queue.task()
    def gone():
        return 1

    @queue.task()
    def fine():
        return 'fine'

    gone()
    r = fine()
    gone.unregister()
    with caplog.at_level('ERROR'):
        task = queue.dequeue()
    assert task is not None and task.id == r.id          # skipped to the next valid one
    queue.execute(task)
    assert r.get() == 'fine'
    assert queue.dead_letter_count() == 1
    [dead] = queue.dead_letters()
    assert 'gone' in dead.reason
    assert isinstance(dead.data, bytes) and dead.data
    assert any(rec.levelname == 'ERROR' for rec in caplog.records)
    assert queue.dequeue() is None


def test_undecodable_message_goes_to_dead_letters(queue):
    queue.storage.enqueue(b'\x00\x01 definitely not a task message')
    assert queue.dequeue() is None
    assert queue.dead_letter_count() == 1
    [dead] = queue.dead_letters()
    assert dead.data == b'\x00\x01 definitely not a task message'
    assert dead.reason


# --------------------------------------------------------------------------- result_count

def test_result_count_ignores_revoke_flags_and_locks(queue):
    @queue.task()
    def job():
        return 1

    job.revoke()
    r = job()
    r.revoke()
    queue.lock_task('some-lock').acquire()
    assert queue.result_count() == 0
    assert queue.all_results() == {}


# --------------------------------------------------------------------------- crontab

@pytest.mark.parametrize('spec', [
    {'minute': '61'}, {'hour': '24'}, {'day': '0'}, {'month': '13'}, {'day_of_week': '8'},
    {'minute': '*/0'}, {'minute': 'abc'}, {'day_of_week': '*/3'}, {'minute': '1,,2'},
])
def test_invalid_crontab_raises_value_error(spec):
    with pytest.raises(ValueError):
        crontab(**spec)


def test_valid_crontab_matches():
    check = crontab(minute='0,30', hour='9-17', day_of_week='1-5')
    assert check(datetime.datetime(2024, 1, 1, 9, 30)) is True      # Monday
    assert check(datetime.datetime(2024, 1, 1, 9, 31)) is False
    assert check(datetime.datetime(2024, 1, 6, 9, 30)) is False     # Saturday


def test_message_signed_with_another_secret_goes_to_dead_letters(tmp_path, fastpath):
    from sqlq import SignedSerializer, SqliteQueue
    path = str(tmp_path / 'signed.db')
    producer = SqliteQueue(path, name='q', serializer=SignedSerializer('old-secret'))
    consumer = SqliteQueue(path, name='q', serializer=SignedSerializer('new-secret'))
    try:
        @producer.task(name='job')
        def produce(x):
            return x

        @consumer.task(name='job')
        def consume(x):
            return x

        produce(1)
        assert consumer.pending_count() == 1
        assert consumer.dequeue() is None            # refused, not executed, not dropped
        assert consumer.dead_letter_count() == 1
        [dead] = consumer.dead_letters()
        assert dead.reason and dead.data
        assert consumer.pending_count() == 0
    finally:
        producer.close()
        consumer.close()


# --------------------------------------------------------------------------- poison rows

#: ``task.data`` values of other types than BLOB, as an SQL expression: what the ``sqlite3``
#: shell writes for ``'hello'``, numbers, text that is not even UTF-8, an empty blob.
POISON = {'text': "'hello'", 'integer': '42', 'real': '1.5',
          'bad-utf8': "CAST(x'ff41' AS TEXT)", 'empty': "x''"}


def _insert_poison(queue, priority=0):
    with queue.storage.transaction() as conn:
        for value in POISON.values():
            conn.execute("INSERT INTO task (queue, priority, body, enqueued_at) "
                         "VALUES (?, ?, %s, 0)" % value, (queue.name, priority))


@pytest.mark.parametrize('backend', ['sqlite'], indirect=True)
def test_rows_of_any_column_type_become_dead_letters(queue):
    """A row whose data is TEXT, INTEGER, REAL (even invalid UTF-8) is buried with its reason,
    and the task behind it runs; every listing still works."""
    @queue.task()
    def add(a, b):
        return a + b

    _insert_poison(queue, priority=1)               # ahead of the real task
    r = add(1, 2)
    assert len(queue.pending()) == 1               # listings skip what they cannot decode
    assert all(isinstance(data, bytes) for data in queue.storage.enqueued_items())
    task = queue.dequeue()
    assert task is not None and task.id == r.id
    queue.execute(task)
    assert r.get() == 3
    letters = queue.dead_letters()
    assert len(letters) == len(POISON)
    assert [letter.data for letter in letters] == [b'hello', b'42', b'1.5', b'\xffA', b'']
    assert all(letter.reason for letter in letters)
    assert len(queue.failed()) == len(POISON)
    assert queue.pending_count() == 0 and queue.running_count() == 0
