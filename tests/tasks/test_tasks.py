"""Task decorators and the enqueue side of the huey-compatible API.

Covers: calling a task, ``.s()``, ``.schedule()``, ``.map()``, ``.call_local()``, per-task and
per-call options, pending/scheduled counts, ``enqueue_many``, ``len(queue)``, ``flush()``, the
key/value helpers and immediate mode (including toggling it at runtime).
"""
from __future__ import annotations

import datetime

import pytest

from sqlq import Result, ResultGroup
from tests._clock import FakeClock
from tests._helpers import drain
from tests.storage._helpers import _in_thread as in_thread

# --------------------------------------------------------------------------- calling tasks

def test_call_enqueues_and_returns_result_handle(queue):
    calls = []

    @queue.task()
    def add(a, b):
        calls.append((a, b))
        return a + b

    res = add(1, 2)
    assert isinstance(res, Result)
    assert calls == []                      # not run at call time
    assert queue.pending_count() == 1
    assert len(queue) == 1
    assert res.get() is None                # not ready yet

    task = queue.dequeue()
    assert task is not None and task.id == res.id
    assert task.args == (1, 2)
    queue.execute(task)
    assert calls == [(1, 2)]
    assert res.get() == 3
    assert queue.pending_count() == 0


def test_kwargs_are_passed_through(queue):
    @queue.task()
    def fmt(a, b=0, *, c='x'):
        return '%s-%s-%s' % (a, b, c)

    res = fmt(1, c='z')
    drain(queue)
    assert res.get() == '1-0-z'


def test_results_false_returns_none_and_stores_nothing(make_queue):
    queue = make_queue(results=False)

    @queue.task()
    def add(a, b):
        return a + b

    assert add(1, 2) is None
    assert drain(queue) == 1
    assert queue.result_count() == 0


def test_s_builds_task_without_enqueueing(queue):
    @queue.task()
    def add(a, b):
        return a + b

    task = add.s(3, 4)
    assert queue.pending_count() == 0
    assert task.args == (3, 4)
    res = queue.enqueue(task)
    assert isinstance(res, Result) and res.id == task.id
    assert queue.pending_count() == 1
    drain(queue)
    assert res.get() == 7


def test_each_call_gets_a_distinct_id(queue):
    @queue.task()
    def noop():
        return 1

    ids = {noop().id for _ in range(20)}
    assert len(ids) == 20


def test_call_local_runs_synchronously_without_queueing(queue):
    @queue.task()
    def mul(a, b):
        return a * b

    assert mul.call_local(6, 7) == 42
    assert queue.pending_count() == 0


def test_task_name_defaults_and_can_be_overridden(queue):
    @queue.task()
    def plain():
        return 1

    @queue.task(name='custom.name')
    def renamed():
        return 2

    assert plain.name.endswith('plain')
    assert renamed.name == 'custom.name'
    r = renamed()
    task = queue.dequeue()
    assert task.name == 'custom.name'
    queue.execute(task)
    assert r.get() == 2


# --------------------------------------------------------------------------- map / enqueue_many

def test_map_enqueues_one_task_per_item_and_returns_result_group(queue):
    @queue.task()
    def square(x):
        return x * x

    @queue.task()
    def add(a, b):
        return a + b

    rg = square.map(range(5))
    assert isinstance(rg, ResultGroup)
    assert len(rg) == 5
    assert queue.pending_count() == 5
    rg2 = add.map([(1, 2), (3, 4)])              # tuples are argument lists
    drain(queue)
    assert rg.get() == [0, 1, 4, 9, 16]
    assert rg2.get() == [3, 7]


def test_enqueue_many_writes_all_tasks(queue):
    @queue.task()
    def add(a, b):
        return a + b

    rg = queue.enqueue_many([add.s(i, i) for i in range(10)])
    assert isinstance(rg, ResultGroup)
    assert len(rg) == 10
    assert queue.pending_count() == 10
    drain(queue)
    assert rg.get() == [2 * i for i in range(10)]


def test_enqueue_many_of_nothing_is_a_noop(queue):
    rg = queue.enqueue_many([])
    assert len(rg) == 0
    assert queue.pending_count() == 0


# --------------------------------------------------------------------------- priority

def test_higher_priority_runs_first_fifo_within_priority(queue):
    order = []

    @queue.task()
    def rec(tag):
        order.append(tag)

    @queue.task(priority=10)
    def urgent(tag):
        order.append(tag)

    rec('a')
    rec('b')
    urgent('u1')
    rec.schedule(('p5',), priority=5)
    urgent('u2')
    drain(queue)
    assert order == ['u1', 'u2', 'p5', 'a', 'b']


# --------------------------------------------------------------------------- schedule

def test_due_tasks_move_to_the_queue_in_bounded_transactions(make_queue, backend):
    """A burst of due tasks is moved in transactions of at most ``Schedule.chunk`` tasks
    (issue 14: 100k due at once held SQLite's write lock for 1.67 s), earliest first, until
    none is due; each chunk is committed before the next is taken."""
    clock = FakeClock()
    queue = make_queue(clock=clock)
    queue.scheduling.chunk = 10

    @queue.task()
    def job(i):
        return i

    for i in range(25):
        job.schedule((i,), delay=1 + i / 100)
    job.schedule(('later',), delay=3600)
    taken = []
    read_schedule = queue.storage.read_schedule

    def observed(timestamp, limit=None):
        # What another connection sees: the chunks before this one are committed.
        seen = None if backend == 'memory' else in_thread(queue.storage.queue_size)
        items = read_schedule(timestamp) if limit is None else read_schedule(timestamp, limit)
        taken.append((limit, len(items), seen))
        return items

    queue.storage.read_schedule = observed
    clock.now += 2
    moved = queue.enqueue_due()
    assert [t.args[0] for t in moved] == list(range(25))
    assert [(limit, count) for limit, count, _ in taken] == [(10, 10), (10, 10), (10, 5)]
    if backend != 'memory':
        assert [seen for _, _, seen in taken] == [0, 10, 20]
    assert queue.pending_count() == 25 and queue.scheduled_count() == 1
    assert [t.args[0] for t in queue.pending()] == list(range(25))


def test_schedule_with_delay_is_not_ready_until_due(make_queue):
    queue = make_queue(utc=False)
    ran = []

    @queue.task()
    def job(x):
        ran.append(x)
        return x

    before = datetime.datetime.now()
    res = job.schedule((1,), delay=60)
    after = datetime.datetime.now()
    assert isinstance(res, Result)
    drain(queue)                                   # a worker pass must not run it
    assert ran == []
    assert queue.pending_count() == 0
    assert queue.scheduled_count() == 1
    [sched] = queue.scheduled()
    assert sched.id == res.id
    assert before + datetime.timedelta(seconds=59) <= sched.eta
    assert sched.eta <= after + datetime.timedelta(seconds=61)


def test_schedule_accepts_eta_datetime_and_timedelta_delay(make_queue):
    queue = make_queue(utc=False)

    @queue.task()
    def job():
        return 'ok'

    eta = datetime.datetime.now() + datetime.timedelta(hours=1)
    job.schedule(eta=eta)
    job.schedule(delay=datetime.timedelta(minutes=30))
    drain(queue)
    assert queue.scheduled_count() == 2
    etas = sorted(t.eta for t in queue.scheduled())
    assert abs((etas[1] - eta).total_seconds()) < 1
    assert 1700 < (etas[0] - datetime.datetime.now()).total_seconds() <= 1800


def test_schedule_overrides_decorator_options(make_queue):
    queue = make_queue(utc=False)

    @queue.task(retries=1, retry_delay=5, priority=1)
    def job():
        return 1

    job.schedule(retries=4, retry_delay=9, priority=7, delay=3600)
    [t] = queue.scheduled()
    assert (t.retries, t.retry_delay, t.priority) == (4, 9, 7)
    job()
    t2 = queue.dequeue()
    assert (t2.retries, t2.retry_delay, t2.priority) == (1, 5, 1)


def test_schedule_with_explicit_id(queue):
    @queue.task()
    def job():
        return 'x'

    res = job.schedule(id='my-fixed-id')
    assert res.id == 'my-fixed-id'
    drain(queue)
    assert queue.result('my-fixed-id') == 'x'


# --------------------------------------------------------------------------- introspection

def test_pending_lists_tasks_and_len_matches(queue):
    @queue.task()
    def job(i):
        return i

    for i in range(4):
        job(i)
    pend = queue.pending()
    assert [t.args for t in pend] == [(0,), (1,), (2,), (3,)]
    assert len(queue.pending(limit=2)) == 2
    assert len(queue) == queue.pending_count() == 4


def test_flush_empties_queue_schedule_and_results(make_queue):
    queue = make_queue(utc=False)

    @queue.task()
    def job(i):
        return i

    job(1)
    drain(queue)
    job(2)
    job.schedule((3,), delay=3600)
    assert queue.result_count() == 1
    queue.flush()
    assert queue.pending_count() == 0
    assert queue.scheduled_count() == 0
    assert queue.result_count() == 0
    assert len(queue) == 0


def test_all_results_and_result_count(queue):
    @queue.task()
    def job(i):
        return i * 10

    rs = [job(i) for i in range(3)]
    drain(queue)
    assert queue.result_count() == 3
    results = queue.all_results()
    assert set(results) == {r.id for r in rs}
    # reading a result is destructive
    assert rs[0].get() == 0
    assert queue.result_count() == 2


# --------------------------------------------------------------------------- kv helpers

def test_put_get_is_destructive_unless_peek(queue):
    queue.put('k', {'a': 1})
    assert queue.get('k', peek=True) == {'a': 1}
    assert queue.get('k') == {'a': 1}
    assert queue.get('k') is None


def test_put_if_empty_and_delete(queue):
    assert queue.put_if_empty('slot', 'first') is True
    assert queue.put_if_empty('slot', 'second') is False
    assert queue.get('slot', peek=True) == 'first'
    assert queue.delete('slot') is True
    assert queue.delete('slot') is False
    assert queue.get('slot') is None
    assert queue.put_if_empty('slot', 'third') is True


def test_kv_values_round_trip_arbitrary_picklables(queue):
    value = {'when': datetime.datetime(2024, 1, 2, 3, 4, 5), 'items': [1, (2, 3)], 'b': b'\x00'}
    queue.put('v', value)
    assert queue.get('v') == value


# --------------------------------------------------------------------------- immediate mode

def test_immediate_mode_runs_at_call_time(make_queue):
    queue = make_queue(immediate=True)

    @queue.task()
    def add(a, b):
        return a + b

    res = add(2, 3)
    assert res.get() == 5
    assert queue.pending_count() == 0


def test_immediate_mode_raises_task_errors_via_result(make_queue):
    from sqlq import TaskException
    queue = make_queue(immediate=True)

    @queue.task()
    def bad():
        raise ValueError('boom')

    res = bad()
    with pytest.raises(TaskException) as excinfo:
        res.get()
    assert 'boom' in excinfo.value.metadata['error']


def test_immediate_mode_can_be_toggled(queue):
    @queue.task()
    def add(a, b):
        return a + b

    assert queue.immediate is False
    queue.immediate = True
    assert queue.immediate is True
    assert add(1, 1).get() == 2
    assert queue.pending_count() == 0

    queue.immediate = False
    res = add(2, 2)
    assert res.get() is None
    assert queue.pending_count() == 1
    drain(queue)
    assert res.get() == 4


def test_immediate_mode_does_not_run_future_scheduled_tasks(make_queue):
    queue = make_queue(immediate=True, utc=False)
    ran = []

    @queue.task()
    def job():
        ran.append(1)

    job.schedule(delay=3600)
    assert ran == []
    assert queue.scheduled_count() == 1


# --------------------------------------------------------------------------- transactions

def test_transaction_commits_enqueues_together(queue):
    @queue.task()
    def job(i):
        return i

    with queue.transaction():
        job(1)
        job(2)
    assert queue.pending_count() == 2


def test_transaction_rollback_leaves_no_task(queue):
    @queue.task()
    def job(i):
        return i

    with pytest.raises(RuntimeError):
        with queue.transaction():
            job(1)
            job.map([2, 3])
            raise RuntimeError('abort')
    assert queue.pending_count() == 0
    assert queue.dequeue() is None


def test_transaction_shares_connection_with_app_writes(tmp_path, fastpath):
    from sqlq import SqliteQueue
    queue = SqliteQueue(str(tmp_path / 'app.db'), name='app')
    try:
        @queue.task()
        def ship(order_id):
            return order_id

        with queue.transaction() as conn:
            conn.execute('CREATE TABLE orders (id INTEGER PRIMARY KEY)')
        with queue.transaction() as conn:
            conn.execute('INSERT INTO orders VALUES (1)')
            ship(1)
        with pytest.raises(ValueError):
            with queue.transaction() as conn:
                conn.execute('INSERT INTO orders VALUES (2)')
                ship(2)
                raise ValueError('payment failed')
        with queue.transaction() as conn:
            rows = [r[0] for r in conn.execute('SELECT id FROM orders ORDER BY id')]
        assert rows == [1]
        assert queue.pending_count() == 1
        task = queue.dequeue()
        assert task.args == (1,)
    finally:
        queue.close()


# --------------------------------------------------------------------------- utc handling

@pytest.fixture
def non_utc_local_time(monkeypatch):
    """Run the test with a local time zone that is not UTC (huey's conversion matters then)."""
    import time
    monkeypatch.setenv('TZ', 'Asia/Kolkata')                  # UTC+05:30, no DST
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_utc_queue_treats_naive_eta_as_local_time(make_queue, non_utc_local_time):
    # huey: utc=True "uses UTC internally, converts naive datetimes from local time to UTC".
    # A huey user writes job.schedule(eta=datetime.now() + timedelta(hours=1)) and expects
    # the task to run in one hour, not 5.5 hours off.
    queue = make_queue(utc=True)

    @queue.task()
    def job():
        return 1

    now_epoch = datetime.datetime.now().timestamp()
    local_eta = datetime.datetime.fromtimestamp(now_epoch + 3600)        # naive local
    job.schedule(eta=local_eta)
    [task] = queue.scheduled()
    utc_eta = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=now_epoch + 3600)
    assert abs((task.eta - utc_eta).total_seconds()) < 1           # shown as naive UTC
    early = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=now_epoch + 3590)
    assert queue.read_schedule(early) == []


def test_utc_queue_accepts_aware_eta_exactly(make_queue, non_utc_local_time):
    queue = make_queue(utc=True)

    @queue.task()
    def job():
        return 1

    aware = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
    job.schedule(eta=aware)
    [task] = queue.scheduled()
    assert task.eta == datetime.datetime(2030, 1, 1, 12, 0)


def test_named_queues_on_one_sqlite_file_are_isolated(tmp_path, fastpath):
    from sqlq import SqliteQueue
    path = str(tmp_path / 'shared.db')
    q1 = SqliteQueue(path, name='emails')
    q2 = SqliteQueue(path, name='reports')
    try:
        @q1.task(name='send')
        def send(i):
            return ('sent', i)

        @q2.task(name='build')
        def build(i):
            return ('built', i)

        r1 = send(1)
        build(2)
        build(3)
        assert (q1.pending_count(), q2.pending_count()) == (1, 2)
        t = q1.dequeue()
        assert t.name == 'send'
        q1.execute(t)
        assert q1.dequeue() is None
        assert r1.get() == ('sent', 1)
        assert q2.result_count() == 0
        q1.flush()
        assert q2.pending_count() == 2
    finally:
        q1.close()
        q2.close()
