"""Pipelines (``.then`` / ``.error``), ``group`` and ``chord``.

huey passes a parent's return value to the child as its last positional argument (a tuple is
splatted into several positional arguments, a dict is merged into the keyword arguments); an
``.error`` handler receives its own arguments followed by the exception.
"""
from __future__ import annotations

import pytest

from sqlq import SKIPPED, Error, ResultGroup, TaskException, chord, group
from tests._helpers import drain


@pytest.fixture
def tasks(queue):
    ns = {}

    @queue.task()
    def add(a, b):
        return a + b

    @queue.task()
    def record(*args, **kwargs):
        return [list(args), kwargs]

    @queue.task()
    def pair():
        return (5, 6)

    @queue.task()
    def mapping():
        return {'x': 1, 'y': 2}

    @queue.task()
    def boom(msg='boom'):
        raise ValueError(msg)

    @queue.task()
    def on_error(*args):
        return ['handled'] + [a if isinstance(a, str) else
                              (type(a).__name__, str(a)) for a in args]

    @queue.task()
    def collect(results):
        return [r if not isinstance(r, Error) else 'ERR:' + r.metadata['error']
                for r in results]

    ns.update(add=add, record=record, pair=pair, mapping=mapping, boom=boom,
              on_error=on_error, collect=collect)
    return ns


def test_then_chain_passes_result_as_last_argument(queue, tasks):
    add, record = tasks['add'], tasks['record']
    pipe = add.s(1, 2).then(add, 10).then(record, 'tag')
    rg = queue.enqueue(pipe)
    assert isinstance(rg, ResultGroup)
    assert len(rg) == 3
    assert queue.pending_count() == 1           # children wait for their parent
    assert drain(queue) == 3
    assert rg.get() == [3, 13, [['tag', 13], {}]]


def test_then_splats_tuple_and_merges_dict(queue, tasks):
    record = tasks['record']
    rg1 = queue.enqueue(tasks['pair'].s().then(record, 0))
    rg2 = queue.enqueue(tasks['mapping'].s().then(record, 0, z=3))
    drain(queue)
    assert rg1.get()[1] == [[0, 5, 6], {}]
    assert rg2.get()[1] == [[0], {'x': 1, 'y': 2, 'z': 3}]


def test_failed_parent_stops_the_chain(queue, tasks):
    add = tasks['add']
    first, second = queue.enqueue(tasks['boom'].s().then(add, 1))
    assert drain(queue) == 1
    with pytest.raises(TaskException):
        first.get()
    with pytest.raises(TaskException):          # the step that never runs has the error
        second.get()
    assert queue.pending_count() == 0


def test_error_handler_receives_exception(queue, tasks):
    boom, on_error = tasks['boom'], tasks['on_error']
    task = boom.s('kaput').error(on_error, 'ctx')
    queue.enqueue(task)
    assert drain(queue) == 2
    err_task_id = task.on_error.id
    assert queue.result(err_task_id) == ['handled', 'ctx', ('ValueError', 'kaput')]


def test_error_handler_not_run_on_success(queue, tasks):
    add, on_error = tasks['add'], tasks['on_error']
    task = add.s(1, 1).error(on_error)
    res = queue.enqueue(task)
    assert drain(queue) == 1
    result = res.results[0] if isinstance(res, ResultGroup) else res
    assert result.get() == 2


def test_error_handler_runs_only_after_retries_exhausted(queue):
    attempts = []

    @queue.task(retries=2)
    def flaky():
        attempts.append(1)
        raise ValueError('x')

    @queue.task()
    def handler(exc):
        return 'handled %s after %d' % (type(exc).__name__, len(attempts))

    task = flaky.s().error(handler)
    queue.enqueue(task)
    drain(queue)
    assert queue.result(task.on_error.id) == 'handled ValueError after 3'


def test_group_enqueues_all_and_returns_result_group(queue, tasks):
    add = tasks['add']
    rg = queue.enqueue(group([add.s(i, i) for i in range(4)]))
    assert isinstance(rg, ResultGroup)
    assert queue.pending_count() == 4
    drain(queue)
    assert rg.get() == [0, 2, 4, 6]


def test_chord_callback_receives_results_in_member_order(queue, tasks):
    add, record = tasks['add'], tasks['record']
    cres = queue.enqueue(chord([add.s(1, 1), add.s(2, 2), add.s(3, 3)], record.s('all')))
    # the callback runs exactly once, after the last member
    assert drain(queue) == 4
    assert cres.get() == [['all', [2, 4, 6]], {}]


def test_chord_callback_waits_for_all_members(queue, tasks):
    add, record = tasks['add'], tasks['record']
    cres = queue.enqueue(chord([add.s(1, 1), add.s(2, 2)], record))
    first = queue.dequeue()
    queue.execute(first)
    assert cres.get() is None
    assert queue.pending_count() == 1            # only the other member, no callback yet
    drain(queue)
    assert cres.get() == [[[2, 4]], {}]


def test_chord_failed_member_contributes_error(queue, tasks):
    add, boom, collect = tasks['add'], tasks['boom'], tasks['collect']
    cres = queue.enqueue(chord([add.s(1, 1), boom.s('m2'), add.s(3, 3)], collect))
    drain(queue)
    value = cres.get()
    assert value[0] == 2 and value[2] == 6
    assert value[1].startswith('ERR:') and 'm2' in value[1]


def test_chord_revoked_member_contributes_skipped(queue, tasks):
    add = tasks['add']

    @queue.task()
    def mark(results):
        return ['SKIPPED' if r is SKIPPED else r for r in results]

    cres = queue.enqueue(chord([add.s(1, 1), add.s(2, 2)], mark))
    member_results = cres.results if hasattr(cres, 'results') else None
    assert member_results is not None, 'chord result must expose member results'
    member_results.results[1].revoke()
    drain(queue)
    assert cres.get() == [2, 'SKIPPED']


def test_child_runs_once_after_parent_succeeds_on_retry(queue, tasks):
    record = tasks['record']
    attempts = []

    @queue.task(retries=2)
    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise ValueError('again')
        return 'ok'

    rg = queue.enqueue(flaky.s().then(record))
    drain(queue)
    assert len(attempts) == 3
    assert rg.get() == ['ok', [['ok'], {}]]
