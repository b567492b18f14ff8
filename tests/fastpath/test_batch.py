"""The fast path's batch functions (issue 17, item 6: ``map`` against the physical limit):
``encode_messages`` is ``encode_message`` once per (id, payload) with every other field shared,
and ``new_task_ids(n)`` is ``n`` calls of ``new_task_id`` -- the compiled ``sqlq._fastpath`` and
its pure twin alike, with the same results, errors and error messages."""
from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fastpath._helpers import HYPOTHESIS, outcome

#: encode_messages' shared fields, in its parameter order after ``payloads``.
SHARED = dict(priority=5, retries=3, retry_delay=10.0, retry_backoff=2.0, eta=None,
              expires_at=None, timeout=None, trace=None)
VARIANTS = [
    {},
    dict(priority=0, retries=0, retry_delay=0.0, retry_backoff=0.0),
    dict(eta=1700000000.25, expires_at=1700000360.0, timeout=30.0),
    dict(priority=-(1 << 63), retries=-1, retry_delay=3, retry_backoff=1, timeout=2),
    dict(trace=b'traceparent:00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'),
    dict(expires_at=1.5, trace=b''),
]


def per_message(codec, ids, name, payloads, shared):
    return [codec.encode_message(id_, name, payload, shared['priority'], shared['retries'],
                                 shared['retry_delay'], shared['retry_backoff'],
                                 shared['eta'], shared['expires_at'], shared['timeout'],
                                 None, None, None, shared['trace'])
            for id_, payload in zip(ids, payloads)]


def batch(codec, ids, name, payloads, shared):
    return codec.encode_messages(ids, name, payloads, shared['priority'], shared['retries'],
                                 shared['retry_delay'], shared['retry_backoff'], shared['eta'],
                                 shared['expires_at'], shared['timeout'], shared['trace'])


@pytest.mark.parametrize('changes', VARIANTS)
def test_encode_messages_is_encode_message_per_message(codec, changes):
    shared = dict(SHARED, **changes)
    ids = ['018f-%d' % i for i in range(5)] + ['', 'id-\u00e9\U0001f600']
    payloads = [b'\x80\x05K%c.' % i for i in range(5)] + [b'', b'x' * 1000]
    got = batch(codec, ids, 'app.tasks.add', payloads, shared)
    assert got == per_message(codec, ids, 'app.tasks.add', payloads, shared)
    assert all(type(data) is bytes for data in got)
    assert batch(codec, [], 'n', [], shared) == []
    assert batch(codec, ('a',), 'n', (b'p',), shared) == per_message(codec, ['a'], 'n', [b'p'],
                                                                     shared)


@HYPOTHESIS
@given(calls=st.lists(st.tuples(st.text(max_size=40), st.binary(max_size=60)), max_size=20),
       name=st.text(max_size=30), priority=st.integers(-(1 << 63), (1 << 63) - 1))
def test_property_encode_messages_same_as_per_message_and_twin(both, calls, name, priority):
    ids, payloads = [c[0] for c in calls], [c[1] for c in calls]
    shared = dict(SHARED, priority=priority)
    results = [outcome(batch, codec, ids, name, payloads, shared) for codec in both]
    assert results[0] == results[1]
    assert results[0] == outcome(per_message, both[1], ids, name, payloads, shared)


BAD = [
    # (ids, payloads, shared changes): what encode_message would raise for the first bad
    # message, or the length mismatch
    (['a', 7, 'c'], [b'', b'', b''], {}),
    (['a', 'b', 'c'], [b'', b'', 'p']),
    (['a', 'b\ud800'], [b'', b'']),
    (['a', 'b'], [b'', bytearray(b'x')]),
    (['a'], [b''], dict(priority='5')),
    (['a'], [b''], dict(priority=1 << 63)),
    (['a'], [b''], dict(retries=1 << 31)),
    (['a'], [b''], dict(retry_delay=None)),
    (['a'], [b''], dict(eta='now')),
    (['a'], [b''], dict(timeout=10 ** 400)),
    (['a'], [b''], dict(trace='tp')),
    (['a', 'b'], [b'']),
    (['a'], [b'', b'']),
]


@pytest.mark.parametrize('case', BAD, ids=[str(i) for i in range(len(BAD))])
def test_encode_messages_errors_same_in_both(both, case):
    ids, payloads = case[0], case[1]
    shared = dict(SHARED, **(case[2] if len(case) > 2 else {}))
    got = [outcome(batch, codec, ids, 'app.add', payloads, shared) for codec in both]
    assert got[0] == got[1]
    assert got[0][0] == 'raise'
    if len(ids) == len(payloads):  # the error of the first message that fails on its own
        assert got[0] == outcome(per_message, both[1], ids, 'app.add', payloads, shared)
    else:
        assert got[0] == ('raise', ValueError,
                          'ids and payloads differ in length: %d and %d'
                          % (len(ids), len(payloads)))


def test_encode_messages_with_a_bad_name_and_no_messages_raises_nothing(both):
    for codec in both:
        assert batch(codec, [], None, [], SHARED) == []


def test_new_task_ids_are_distinct_time_ordered_uuid7(codec):
    ids = codec.new_task_ids(3000)
    assert isinstance(ids, list) and len(ids) == 3000 and len(set(ids)) == 3000
    for text in ids:
        assert type(text) is str
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
    stamps = [int(text.replace('-', '')[:12], 16) for text in ids]
    assert stamps == sorted(stamps)
    assert ids == sorted(ids)  # each later than the one before: rows append to the key index
    before = codec.new_task_id()
    after = codec.new_task_ids(1)[0]
    assert int(before.replace('-', '')[:12], 16) <= int(after.replace('-', '')[:12], 16)
    assert codec.new_task_ids(0) == []


def test_new_task_ids_errors_same_in_both(both):
    for bad in (-1, 1.5, '3', None):
        got = [outcome(codec.new_task_ids, bad) for codec in both]
        assert got[0] == got[1] and got[0][0] == 'raise', got


def test_new_task_ids_count_on_within_a_millisecond_and_carry(codec):
    import time
    before = time.time_ns() // 1000000
    ids = codec.new_task_ids(10000)
    after = time.time_ns() // 1000000
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # 12 bits after the version: a counter from a random start below 2048, carrying into the
    # timestamp past 4095; so the stamps stay within a millisecond per 2048 ids of the clock
    values = [int(text.replace('-', '')[:16], 16) for text in ids]
    stamps = [value >> 16 for value in values]
    counts = [value & 0xFFF for value in values]
    assert before <= stamps[0] and stamps[-1] <= after + len(ids) // 2048 + 1
    assert counts[0] < 2048
    for (s1, c1), (s2, c2) in zip(zip(stamps, counts), zip(stamps[1:], counts[1:])):
        assert (s2, c2) > (s1, c1)
        assert s2 > s1 or c2 == c1 + 1
