"""huey 3.5's groups and chords (docs: api.rst ``group``, ``chord``, ``ChordResult``; guide.rst
"Groups and Chords").

Confirmed against huey 3.5.4 (MemoryHuey): ``group.then`` makes a chord whose callback gets
``then``'s arguments before the list of results; ``chord.then`` fills ``pipeline_results``;
``chord([], cb)`` enqueues ``cb([])`` at once; a pipeline member contributes its last step's
value (``ChordResult.results`` holds the last steps' Results) or the Error of the step where
it failed; a nested chord contributes its callback's value; the callback's ENQUEUED signal
follows the last member's COMPLETE.
"""
from __future__ import annotations

import pytest

from sqlq import SKIPPED, ChordResult, Error, ResultGroup, TaskException, chord, group
from sqlq.signals import SIGNAL_COMPLETE, SIGNAL_ENQUEUED
from tests._helpers import drain
from tests.huey_compat._tasks import define_tasks


@pytest.fixture
def t(queue):
    return define_tasks(queue)


# -- group.then / group.error ----------------------------------------------------------------
def test_group_then_makes_a_chord(queue, t):
    """huey: ``group.then(task)`` converts the group into a chord with that callback."""
    c = group([t.incr.s(i) for i in range(3)]).then(t.total)
    assert isinstance(c, chord)
    res = queue.enqueue(c)
    assert isinstance(res, ChordResult)
    drain(queue)
    assert res.get() == 6


def test_group_then_passes_its_arguments_before_the_results(queue, t):
    """huey: ``group.then(task, *args, **kwargs)``: the callback gets ``args`` then the list."""
    res = queue.enqueue(group([t.incr.s(1), t.incr.s(2)]).then(t.record, 'x', k=1))
    drain(queue)
    assert res.get() == [['x', [2, 3]], {'k': 1}]


def test_group_error_attaches_a_handler_to_every_member(queue, t):
    """huey: ``group.error(task)``: each member that fails enqueues the handler with the
    exception."""
    g = group([t.boom.s(1), t.boom.s(2), t.incr.s(0)]).error(t.handled, 'E')
    assert g.tasks[0].on_error.id != g.tasks[1].on_error.id    # an invocation each
    rg = queue.enqueue(g)
    assert isinstance(rg, ResultGroup)
    assert drain(queue) == 5                   # three members, two handlers
    assert queue.result(g.tasks[0].on_error.id) == ['handled', 'E', 'ValueError']
    assert queue.result(g.tasks[1].on_error.id) == ['handled', 'E', 'ValueError']
    assert g.tasks[2].on_error is not None and queue.result(g.tasks[2].on_error.id) is None


def test_group_error_with_a_task_instance_and_then(queue, t):
    """huey: ``group.error(handler).then(callback)`` chains: handlers and a chord."""
    res = queue.enqueue(group([t.boom.s(1), t.incr.s(1)]).error(t.handled.s('E')).then(t.record))
    drain(queue)
    value = res.get()
    assert isinstance(value[0][0][0], Error) and value[0][0][1] == 2


# -- chord.then / chord.error / pipeline_results ---------------------------------------------
def test_chord_then_chains_after_the_callback_and_fills_pipeline_results(queue, t):
    """huey guide: ``group(...).then(total).then(incr)``: result() is total's value and
    ``pipeline_results`` the ResultGroup of [total, incr]."""
    res = queue.enqueue(group([t.incr.s(i) for i in range(3)]).then(t.total).then(t.incr))
    drain(queue)
    assert res.get() == 6
    assert isinstance(res.pipeline_results, ResultGroup)
    assert res.pipeline_results.get() == [6, 7]


def test_chord_then_passes_arguments(queue, t):
    """huey: ``chord.then(task, *args, **kwargs)`` works as ``Task.then``."""
    res = queue.enqueue(chord([t.incr.s(1)], t.total.s()).then(t.record, 'x', k=1))
    drain(queue)
    assert res.pipeline_results.get() == [2, [['x', 2], {'k': 1}]]


def test_pipeline_results_is_none_without_then(queue, t):
    """huey: ``ChordResult.pipeline_results`` is None if no task was chained to the
    callback."""
    res = queue.enqueue(chord([t.incr.s(1)], t.total))
    drain(queue)
    assert res.pipeline_results is None
    assert res.get() == 2


def test_chord_error_handles_a_failing_callback(queue, t):
    """huey: ``chord.error(task)`` attaches an error handler to the callback."""
    c = chord([t.incr.s(1)], t.boom.s()).error(t.handled, 'cb')
    res = queue.enqueue(c)
    drain(queue)
    with pytest.raises(TaskException):
        res.get()
    assert queue.result(c.callback.on_error.id) == ['handled', 'cb', 'ValueError']


def test_chord_result_attributes(queue, t):
    """huey: ChordResult has ``results`` (a ResultGroup of the members), ``callback`` (the
    callback's Result), ``get``/``__call__`` and ``reset``."""
    res = queue.enqueue(chord([t.incr.s(1), t.incr.s(2)], t.total))
    drain(queue)
    assert isinstance(res.results, ResultGroup) and len(res.results) == 2
    assert res.results.get() == [2, 3]
    assert res.callback.get() == 5
    assert res() == 5
    res.reset()


# -- members -----------------------------------------------------------------------------------
def test_empty_chord_runs_the_callback_with_an_empty_list(queue, t):
    """huey: ``chord([], cb)`` enqueues ``cb([])`` at once."""
    res = queue.enqueue(chord([], t.record.s('none')))
    assert queue.pending_count() == 1
    assert drain(queue) == 1
    assert res.get() == [['none', []], {}]
    assert len(res.results) == 0


def test_chord_of_pipelines_calls_back_after_each_last_step(queue, t):
    """huey guide "Pipelines inside chords": ``chord([incr.s(i).then(incr).then(incr) ...],
    total)`` runs total([3, 4, 5]); the callback waits for every pipeline's last step."""
    res = queue.enqueue(chord([t.incr.s(i).then(t.incr).then(t.incr) for i in range(3)],
                              t.total))
    for _ in range(6):                          # the first two steps of each pipeline
        queue.execute(queue.dequeue())
    assert res.get() is None and queue.pending_count() == 3   # last steps; no callback yet
    drain(queue)
    assert res.get() == 12
    assert res.results.get() == [3, 4, 5]       # the Results of the last steps


def test_chord_pipeline_member_failing_midway_contributes_its_error(queue, t):
    """huey 3.3 changelog: a pipelined member that dies before its tail still contributes
    (the failed stage's error), and the callback fires."""
    res = queue.enqueue(chord([t.incr.s(1).then(t.boom).then(t.incr), t.incr.s(2)], t.record))
    drain(queue)
    (values,), _ = res.get()
    assert isinstance(values[0], Error) and 'boom' in values[0].metadata['error']
    assert values[1] == 3


def test_chord_pipeline_member_revoked_midway_contributes_skipped(queue, t):
    """huey: a revoked stage of a pipelined member contributes SKIPPED."""
    member = t.incr.s(1).then(t.incr).then(t.incr)
    res = queue.enqueue(chord([member, t.incr.s(2)], t.record))
    queue.revoke_by_id(member.on_complete.id)
    drain(queue)
    assert res.get() == [[[SKIPPED, 3]], {}]


def test_chord_as_a_chord_member(queue, t):
    """huey guide "chords inside chords": an inner chord contributes its callback's value."""
    inner1 = chord([t.incr.s(1), t.incr.s(2)], t.total.s())
    inner2 = chord([t.incr.s(3), t.incr.s(4)], t.total.s())
    res = queue.enqueue(chord([inner1, inner2, t.incr.s(10)], t.record.s()))
    drain(queue)
    assert res.get() == [[[5, 9, 11]], {}]
    assert res.results.get() == [5, 9, 11]


def test_chord_with_then_as_a_chord_member(queue, t):
    """huey: the inner chord's callback *pipeline* is the synchronization point."""
    inner = chord([t.incr.s(1), t.incr.s(2)], t.total.s()).then(t.incr)
    res = queue.enqueue(chord([inner, t.incr.s(0)], t.record))
    drain(queue)
    assert res.get() == [[[6, 1]], {}]


def test_group_as_a_chord_member_contributes_the_list_of_its_values(queue, t):
    """A group member contributes the list of its tasks' values (huey 3.5 rejects a group
    member with ValueError; sqlq runs it)."""
    res = queue.enqueue(chord([group([t.incr.s(1), t.incr.s(2)]), t.incr.s(5),
                               group([])], t.record))
    drain(queue)
    assert res.get() == [[[[2, 3], 6, []]], {}]


def test_group_then_as_a_chord_member(queue, t):
    """huey: a group made a chord with ``.then`` is a valid member."""
    res = queue.enqueue(chord([group([t.incr.s(1)]).then(t.record), t.incr.s(5)], t.record))
    drain(queue)
    assert res.get() == [[[[[[2]], {}], 6]], {}]


def test_chord_rejects_members_that_are_not_tasks(queue, t):
    """A member that is neither a task, a chord nor a group is a TypeError."""
    with pytest.raises(TypeError):
        chord([t.incr], t.total)  # the wrapper, not a Task


# -- signals -----------------------------------------------------------------------------------
def test_callback_enqueued_signal_follows_the_last_members_complete(queue, t):
    """huey: the chord callback's ENQUEUED comes after the last member's COMPLETE (so does a
    pipeline follower's after its parent's)."""
    log = []

    @queue.signal(SIGNAL_ENQUEUED, SIGNAL_COMPLETE)
    def receiver(signal, task, *extra):
        log.append((signal, task.name, task.args))

    queue.enqueue(chord([t.incr.s(1), t.incr.s(2).then(t.incr)], t.total))
    drain(queue)
    assert log == [
        (SIGNAL_ENQUEUED, 'incr', (1,)), (SIGNAL_ENQUEUED, 'incr', (2,)),
        (SIGNAL_COMPLETE, 'incr', (1,)),
        (SIGNAL_COMPLETE, 'incr', (2,)), (SIGNAL_ENQUEUED, 'incr', (3,)),
        (SIGNAL_COMPLETE, 'incr', (3,)), (SIGNAL_ENQUEUED, 'total', ([2, 4],)),
        (SIGNAL_COMPLETE, 'total', ([2, 4],)),
    ]


def test_immediate_mode_runs_chords(make_queue):
    """huey immediate mode: a chord runs its members, then the callback, at enqueue."""
    queue = make_queue(immediate=True)
    t = define_tasks(queue)
    res = queue.enqueue(chord([t.incr.s(1).then(t.incr), chord([t.incr.s(5)], t.total.s())],
                              t.total))
    assert res.get() == 9
