"""huey 3.5's per-call options (docs: api.rst ``TaskWrapper.s``: "The following keyword argument
names are reserved and will be intercepted by Huey rather than passed to your task function").

Confirmed against huey 3.5.4 (MemoryHuey): ``add(1, 2, priority=5)``, ``retries=``,
``retry_delay=``, ``retry_backoff=``, ``timeout=``, ``expires=``, ``id=``, ``eta=`` and
``delay=`` set the invocation's options and never reach the function, on a call and on
``.s()``; a function declaring such a parameter is decorated without complaint, and a value
passed to it positionally reaches it (huey's documented workaround). sqlq adds a
ConfigurationError for a keyword-only one (it could never receive a value) and a UserWarning
for the others.
"""
from __future__ import annotations

import datetime
import warnings

import pytest

from sqlq import ConfigurationError
from sqlq.options import CALL_KEYWORDS
from sqlq.signals import SIGNAL_COMPLETE, SIGNAL_ENQUEUED, SIGNAL_EXECUTING
from tests._helpers import drain


@pytest.fixture
def add(queue):
    @queue.task()
    def add(a, b):
        return a + b

    return add


@pytest.fixture
def record(queue):
    @queue.task()
    def record(*args, **kwargs):
        return [list(args), kwargs]

    return record


def test_the_reserved_keywords_are_hueys():
    """huey: eta, delay, retries, retry_delay, retry_backoff, priority, expires, timeout, id."""
    assert CALL_KEYWORDS == {'eta', 'delay', 'retries', 'retry_delay', 'retry_backoff',
                             'priority', 'expires', 'timeout', 'id'}


def test_call_with_priority_sets_the_task_priority(queue, add):
    """huey: ``add(1, 2, priority=5)`` enqueues add(1, 2) with priority 5."""
    res = add(1, 2, priority=5)
    (task,) = queue.pending()
    assert (task.args, task.kwargs, task.priority) == ((1, 2), {}, 5)
    drain(queue)
    assert res.get() == 3


def test_call_with_retries_zero_overrides_the_default(queue):
    """huey: ``add(1, 2, retries=0)`` runs without the decorator's retries."""
    runs = []

    @queue.task(retries=3)
    def fails():
        runs.append(1)
        raise ValueError('x')

    fails(retries=0)
    drain(queue)
    assert len(runs) == 1


def test_call_options_reach_the_task_not_the_function(queue, record):
    """huey: retries, retry_delay, retry_backoff, timeout, expires and id are options."""
    res = record(1, x=2, retries=3, retry_delay=7, retry_backoff=2, timeout=9, expires=100,
                 id='my-id')
    (task,) = queue.pending()
    assert (task.retries, task.retry_delay, task.retry_backoff, task.timeout) == (3, 7, 2, 9)
    assert task.expires_resolved is not None    # 100 s after the enqueue
    assert task.id == res.id == 'my-id'
    drain(queue)
    assert res.get() == [[1], {'x': 2}]


def test_call_with_delay_or_eta_schedules_it(queue, record):
    """huey: ``add(1, 2, delay=60)`` and ``eta=`` run the call later."""
    record(1, delay=60)
    record(2, eta=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1))
    assert queue.pending_count() == 0
    assert sorted(t.args for t in queue.scheduled()) == [(1,), (2,)]
    assert all(t.kwargs == {} for t in queue.scheduled())


def test_s_takes_the_same_keywords(queue, add, record):
    """huey: ``add.s(1, 2, delay=60)`` is a Task with an eta; ``.s(priority=...)`` sets the
    priority of that step."""
    task = add.s(1, 2, delay=60)
    assert task.eta is not None and (task.args, task.kwargs) == ((1, 2), {})
    queue.enqueue(task)
    assert queue.scheduled_count() == 1 and queue.pending_count() == 0
    step = record.s(retries=2, id='xyz', priority=4, flag=True)
    assert (step.retries, step.id, step.priority, step.kwargs) == (2, 'xyz', 4, {'flag': True})


def test_pipeline_step_options_are_kept(queue, add):
    """huey: options given to ``.s()`` of a later step apply to that step when it runs."""
    head = add.s(1, 2)
    head.then(add.s(10, priority=7, retries=2))
    queue.enqueue(head)
    queue.execute(queue.dequeue())
    (follower,) = queue.pending()
    assert (follower.priority, follower.retries, follower.args) == (7, 2, (10, 3))


def test_wrong_option_values_fail_at_the_call(queue, add):
    """A value the option cannot take is a TypeError at the call (huey fails later)."""
    with pytest.raises(TypeError, match='priority'):
        add(1, 2, priority='high')
    with pytest.raises(TypeError, match='id'):
        add(1, 2, id=5)
    assert queue.pending_count() == 0


def test_function_with_var_keywords_never_gets_the_reserved_ones(queue, record):
    """huey: the keywords are intercepted even when the function takes ``**kwargs``."""
    res = record(a=1, priority=4, eta=None, delay=None)
    (task,) = queue.pending()
    assert (task.kwargs, task.priority, task.eta) == ({'a': 1}, 4, None)
    drain(queue)
    assert res.get() == [[], {'a': 1}]


def test_other_keywords_still_reach_the_function(queue, add):
    """Keywords that are not reserved are the function's arguments."""
    res = add(a=1, b=2)
    drain(queue)
    assert res.get() == 3


def test_immediate_mode_call_sends_enqueued_first(make_queue):
    """huey immediate mode: a call sends ENQUEUED, then EXECUTING and COMPLETE."""
    queue = make_queue(immediate=True)
    log = []

    @queue.signal()
    def receiver(signal, task, *extra):
        log.append(signal)

    @queue.task()
    def add(a, b):
        return a + b

    assert add(1, 2, priority=3).get() == 3
    assert log == [SIGNAL_ENQUEUED, SIGNAL_EXECUTING, SIGNAL_COMPLETE]


# -- a function that declares a reserved name ------------------------------------------------
def test_keyword_only_reserved_parameter_is_an_error_at_decoration(queue):
    """A keyword-only parameter named like a task option could never receive a value:
    ConfigurationError when decorating (huey accepts it, then the call fails in the worker)."""
    with pytest.raises(ConfigurationError, match='delay'):
        @queue.task()
        def notify(user, *, delay):
            return user


def test_positional_reserved_parameter_warns_at_decoration(queue):
    """huey documents: "rename the parameter or pass the value positionally": the task is
    made (with a UserWarning naming the parameter), and a positional value reaches it."""
    with pytest.warns(UserWarning, match="priority"):
        @queue.task()
        def job(name, priority):
            return [name, priority]

    res = job('a', 2)
    (task,) = queue.pending()
    assert (task.args, task.priority) == (('a', 2), None)
    drain(queue)
    assert res.get() == ['a', 2]


def test_reserved_parameter_given_by_keyword_is_the_option(queue):
    """huey: ``job('a', priority=2)`` sets the task's priority; the function misses its
    argument, which sqlq reports at the call, naming the reserved keyword."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')

        @queue.task()
        def job(name, priority):
            return [name, priority]

        @queue.task()
        def job_default(name, priority=0):
            return [name, priority]

    with pytest.raises(TypeError, match='task option keyword'):
        job('a', priority=2)
    res = job_default('a', priority=2)
    (task,) = queue.pending()
    assert task.priority == 2
    drain(queue)
    assert res.get() == ['a', 0]
