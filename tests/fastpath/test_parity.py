"""The fast path's ``ClaimBuffer`` and ``new_task_id`` (issue 5): the compiled ``sqlq._fastpath``
and its pure twin ``sqlq._fastpath_py`` behave the same (order, errors and their messages), the
compiled one keeps no stray references, and task ids are distinct, time-ordered UUID7 strings,
also across fork.
"""
from __future__ import annotations

import gc
import os
import random
import sys
import time
import uuid
import weakref

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqlq import _wire
from sqlq.storage import Claim
from tests.fastpath._helpers import HYPOTHESIS, outcome

I64_MIN, I64_MAX = _wire.I64_MIN, _wire.I64_MAX


def reference_order(pushes):
    """Indexes of ``(priority, seq)`` pushes in the order the buffer must give them back:
    highest priority first, then lowest seq, then first pushed."""
    return sorted(range(len(pushes)), key=lambda i: (-pushes[i][0], pushes[i][1], i))


def run_ops(module, ops):
    """Apply ``ops`` (('push', priority, seq) / ('pop',) / ('len',)) to a new buffer of
    ``module``; what each op gave, then the drained rest."""
    buffer = module.ClaimBuffer()
    trace = []
    for n, op in enumerate(ops):
        if op[0] == 'push':
            trace.append(outcome(buffer.push, op[1], op[2], n))
        elif op[0] == 'pop':
            trace.append(outcome(buffer.pop))
        else:
            trace.append((len(buffer), bool(buffer)))
    trace.append(('drain', buffer.drain(), len(buffer), bool(buffer)))
    return trace


# ties are what matters for the order: mostly small keys, sometimes the extremes
keys = st.integers(-3, 3) | st.integers(I64_MIN + 1, I64_MAX)
ops = st.lists(st.tuples(st.just('push'), keys, keys) | st.just(('pop',)) | st.just(('len',)),
               max_size=120)


@HYPOTHESIS
@given(ops=ops)
def test_property_same_results_as_the_twin(both, ops):
    compiled, twin = both
    assert run_ops(compiled, ops) == run_ops(twin, ops)


@HYPOTHESIS
@given(pushes=st.lists(st.tuples(keys, keys), max_size=200))
def test_property_pop_and_drain_follow_priority_then_seq_then_insertion(codec, pushes):
    popped, drained = codec.ClaimBuffer(), codec.ClaimBuffer()
    for i, (priority, seq) in enumerate(pushes):
        popped.push(priority, seq, i)
        drained.push(priority, seq, i)
    assert len(popped) == len(pushes)
    assert [popped.pop() for _ in pushes] == reference_order(pushes)
    assert drained.drain() == reference_order(pushes)
    assert len(drained) == 0 and drained.drain() == []


def test_many_items_with_interleaved_pops(codec):
    rng = random.Random(11)
    buffer = codec.ClaimBuffer()
    live = {}
    taken = []
    for i in range(3000):
        key = (rng.randint(-5, 5), rng.randint(0, 50))
        buffer.push(key[0], key[1], i)
        live[i] = key
        if rng.random() < 0.3:
            item = buffer.pop()
            best = min(live, key=lambda j: (-live[j][0], live[j][1], j))
            assert item == best
            taken.append(live.pop(item))
    assert len(buffer) == len(live)
    assert buffer.drain() == sorted(live, key=lambda j: (-live[j][0], live[j][1], j))


def test_len_bool_and_empty_pop(both):
    for module in both:
        buffer = module.ClaimBuffer()
        assert (len(buffer), bool(buffer)) == (0, False)
        buffer.push(0, 0, 'x')
        assert (len(buffer), bool(buffer)) == (1, True)
        assert buffer.pop() == 'x'
        assert (len(buffer), bool(buffer)) == (0, False)
    got = [outcome(module.ClaimBuffer().pop) for module in both]
    assert got[0] == got[1] == ('raise', IndexError, 'pop from an empty ClaimBuffer')


def test_extend_takes_claims_in_run_order(codec):
    buffer = codec.ClaimBuffer()
    claims = [Claim(b'a', 1, 1, 0, 0, 3), Claim(b'b', 2, 1, 0, 5, 9), Claim(b'c', 3, 1, 0, 0, 1),
              Claim(b'd', 4, 1, 0, 5, 2)]
    buffer.extend(claims)
    assert [c.data for c in buffer.drain()] == [b'd', b'b', b'c', b'a']


@pytest.mark.parametrize('priority, seq', [
    (1.0, 0), ('1', 0), (None, 0), (0, 2.5), (0, b'1'), (0, None),
    (I64_MAX + 1, 0), (I64_MIN - 1, 0), (I64_MIN, 0), (2 ** 64, 0), (-(2 ** 70), 0),
    (0, I64_MAX + 1), (0, I64_MIN - 1), (0, 2 ** 100),
])
def test_bad_keys_fail_identically_and_change_nothing(both, priority, seq):
    results = []
    for module in both:
        buffer = module.ClaimBuffer()
        buffer.push(1, 1, 'kept')
        results.append(outcome(buffer.push, priority, seq, 'bad'))
        assert buffer.drain() == ['kept']
    assert results[0] == results[1]
    assert results[0][0] == 'raise' and results[0][1] in (TypeError, OverflowError)


def test_the_extreme_keys_that_fit_are_accepted(both):
    pushes = [(I64_MIN + 1, I64_MIN), (I64_MAX, I64_MAX), (I64_MAX, I64_MIN), (True, False)]
    for module in both:
        buffer = module.ClaimBuffer()
        for i, (priority, seq) in enumerate(pushes):
            buffer.push(priority, seq, i)
        assert buffer.drain() == reference_order(pushes) == [2, 1, 3, 0]


def test_pushed_and_popped_items_are_not_leaked(codec):
    item = object()
    buffer = codec.ClaimBuffer()
    before = sys.getrefcount(item)
    for _ in range(200):  # past the first growth of the compiled heap
        buffer.push(0, 0, item)
    assert sys.getrefcount(item) > before
    for _ in range(100):
        assert buffer.pop() is item
    drained = buffer.drain()
    assert len(drained) == 100 and all(x is item for x in drained)
    del drained
    assert sys.getrefcount(item) == before
    for _ in range(1000):
        buffer.push(1, 2, item)
        buffer.pop()
    assert sys.getrefcount(item) == before


def test_items_left_in_a_dropped_buffer_are_released(codec):
    class Item:
        pass

    items = [Item() for _ in range(50)]
    refs = [weakref.ref(i) for i in items]
    buffer = codec.ClaimBuffer()
    for n, i in enumerate(items):
        buffer.push(n % 3, n, i)
    del items, i
    assert all(r() is not None for r in refs)
    del buffer
    gc.collect()
    assert all(r() is None for r in refs)


# ---------------------------------------------------------------------- task ids

def assert_uuid7(task_id):
    parsed = uuid.UUID(task_id)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert str(parsed) == task_id  # canonical: lower-case hex, dashes in place


def unix_ms(task_id):
    return int.from_bytes(uuid.UUID(task_id).bytes[:6], 'big')


def test_new_task_id_gives_distinct_canonical_uuid7_strings(codec):
    before = time.time_ns() // 1_000_000
    ids = [codec.new_task_id() for _ in range(5000)]  # many refills of the compiled pool
    after = time.time_ns() // 1_000_000
    assert all(type(i) is str for i in ids)
    for task_id in ids:
        assert_uuid7(task_id)
        assert before <= unix_ms(task_id) <= after  # the creation time, in ms
    assert len(set(ids)) == len(ids)
    # the random bits really vary: every hex digit after the timestamp, outside the fixed
    # ones (version and variant digits), is seen in each place
    fixed = {14, 19}
    for pos in range(15, 36):
        if ids[0][pos] != '-' and pos not in fixed:
            assert len({i[pos] for i in ids}) == 16, pos


def test_ids_made_in_a_later_millisecond_sort_later(codec):
    first = codec.new_task_id()
    deadline = time.monotonic() + 1.0
    while time.time_ns() // 1_000_000 <= unix_ms(first) and time.monotonic() < deadline:
        pass  # bounded: the next millisecond comes within 1 ms
    later = codec.new_task_id()
    assert unix_ms(later) > unix_ms(first)
    assert later > first  # as strings too: results of later tasks sort (and are stored) later


@pytest.mark.subprocess
def test_a_forked_child_does_not_repeat_its_parents_ids(codec):
    codec.new_task_id()  # the compiled pool now holds unused random bytes
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(read_end)
            payload = '\n'.join(codec.new_task_id() for _ in range(300)).encode()
            with os.fdopen(write_end, 'wb') as out:
                out.write(payload)
        finally:
            os._exit(0)
    os.close(write_end)
    parent_ids = {codec.new_task_id() for _ in range(300)}
    with os.fdopen(read_end, 'rb') as inp:
        child_ids = inp.read().decode().split('\n')
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert len(child_ids) == 300
    for task_id in child_ids:
        assert_uuid7(task_id)
    assert not parent_ids & set(child_ids)
