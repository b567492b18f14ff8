"""Batch claims (issue 5): ``Storage.dequeue_many``, ``Storage.release_unstarted`` and
``Storage.complete_many``, on every backend of the storage contract.

A worker claims several messages in one step into a local buffer, runs them in
``(-priority, seq)`` order, settles finished ones together and, when it stops, gives the
unstarted ones back to their places. These tests hold each backend to that.
"""
from __future__ import annotations

import random
import threading

import pytest

from sqlq.storage import EMPTY
from tests.storage._helpers import DEAD, _in_thread, as_owner, run_threads


def run_order(claims):
    """The order a worker runs a batch in."""
    return sorted(claims, key=lambda c: (-c.priority, c.seq))


def same_queue(make_storage, storage, backend):
    """Another handle on ``storage``'s queue with its own owner id (memory storages are
    independent instances: there the same one is shared)."""
    return storage if backend == 'memory' else make_storage()


# ---------------------------------------------------------------------- dequeue_many

def test_dequeue_many_claims_at_most_limit_in_dequeue_order(storage):
    rng = random.Random(5)
    priorities = {}
    for i in range(30):
        data, priority = b'm%02d' % i, rng.choice((-3, 0, 0, 1, 7))
        priorities[data] = priority
        if i % 3:
            storage.enqueue(data, priority)
        else:
            storage.enqueue_many([(data, priority)])
    expected = storage.enqueued_items()
    got = []
    for limit in (1, 4, 7, 100):
        claims = storage.dequeue_many(limit)
        assert len(claims) == min(limit, 30 - len(got))
        assert all((c.attempts, c.recoveries) == (1, 0) for c in claims)
        assert all(c.priority == priorities[c.data] for c in claims)
        got += [c.data for c in run_order(claims)]
        assert storage.claimed_size() == len(got)
    assert got == expected
    assert storage.dequeue_many(5) == []
    assert storage.queue_size() == 0


def test_dequeue_many_with_limit_zero_claims_nothing(storage):
    storage.enqueue_many([(b'a', 0), (b'b', 0)])
    assert storage.dequeue_many(0) == []
    assert (storage.queue_size(), storage.claimed_size()) == (2, 0)


def test_released_messages_keep_their_seq_among_later_ones(storage):
    storage.enqueue_many([(b'a', 1), (b'b', 1), (b'c', 0)])
    first = run_order(storage.dequeue_many(2))
    storage.enqueue_many([(b'd', 1), (b'e', 0)])
    assert storage.release(first[1].receipt) is True  # b: back before d
    assert storage.release_unstarted([first[0].receipt]) == 1  # a: back before b
    claims = storage.dequeue_many(10)
    assert [c.data for c in run_order(claims)] == [b'a', b'b', b'd', b'c', b'e']


def test_concurrent_batches_claim_each_message_once(make_storage, storage, backend):
    n = 300
    storage.enqueue_many((b'%d' % i, i % 3) for i in range(n))
    handles = [storage, same_queue(make_storage, storage, backend)]
    seen = []
    lock = threading.Lock()

    def worker(i):
        s = handles[i % 2]
        while True:
            claims = s.dequeue_many(7)
            if not claims:
                return
            assert len(claims) <= 7
            for claim in claims:
                assert s.ack(claim.receipt) is True
            with lock:
                seen.extend(c.data for c in claims)

    run_threads(worker, 4)
    assert sorted(seen) == sorted(b'%d' % i for i in range(n))
    assert storage.queue_size() == storage.claimed_size() == 0


def test_batch_claims_are_fenced_like_single_claims(storage):
    storage.enqueue_many([(b'a', 0), (b'b', 0), (b'c', 0)])
    a, b, c = run_order(storage.dequeue_many(3))
    assert storage.ack(a.receipt) is True
    assert storage.ack(a.receipt) is False
    assert storage.release_unstarted([b.receipt]) == 1
    # the given-back claim is gone: its receipt settles nothing
    assert storage.ack(b.receipt) is False
    assert storage.release(b.receipt) is False
    assert storage.bury(b.receipt, 'stale') is False
    assert storage.release_unstarted([b.receipt]) == 0
    assert (storage.queue_size(), storage.claimed_size(), storage.dead_letter_count()) == (1, 1, 0)
    assert storage.bury(c.receipt, 'boom') is True
    assert storage.dead_letters()[0].attempts == 1


def test_a_given_back_claim_taken_by_another_owner_is_fenced(storage):
    storage.enqueue(b'x')
    [mine] = storage.dequeue_many(4)
    assert storage.release_unstarted([mine.receipt]) == 1
    with as_owner(storage, DEAD):
        [theirs] = storage.dequeue_many(4)
    assert theirs.data == b'x' and theirs.attempts == 2
    assert storage.ack(mine.receipt) is False
    assert storage.claim_owners() == {DEAD: 1}
    assert storage.ack(theirs.receipt) is True


def test_a_given_back_claim_taken_again_by_the_same_owner_is_fenced(storage):
    storage.enqueue(b'x')
    [old] = storage.dequeue_many(4)
    assert storage.release_unstarted([old.receipt]) == 1
    [new] = storage.dequeue_many(4)
    assert new.data == b'x' and new.receipt != old.receipt
    # "a receipt only settles the claim it came from ... even if the same message was
    # claimed again since" (the storage contract)
    assert storage.ack(old.receipt) is False
    assert storage.release_unstarted([old.receipt]) == 0
    assert storage.claimed_size() == 1
    assert storage.ack(new.receipt) is True


def test_dequeue_many_in_a_rolled_back_transaction_claims_nothing(storage):
    storage.enqueue_many([(b'a', 0), (b'b', 0), (b'c', 0)])
    with pytest.raises(ZeroDivisionError):
        with storage.transaction():
            assert len(storage.dequeue_many(2)) == 2
            1 / 0
    assert (storage.queue_size(), storage.claimed_size()) == (3, 0)
    with storage.transaction():
        claims = storage.dequeue_many(2)
    assert [c.data for c in run_order(claims)] == [b'a', b'b']
    assert [c.attempts for c in claims] == [1, 1]  # the undone claims never happened
    assert (storage.queue_size(), storage.claimed_size()) == (1, 2)


@pytest.mark.parametrize('in_transaction', [False, True], ids=['alone', 'in-transaction'])
def test_claims_tell_whether_a_key_with_the_flag_prefix_exists(make_storage, storage,
                                                                backend, in_transaction):
    """A worker skips reading revoke flags when its claim saw none (``flagged`` False); a
    backend that does not check says None, never False."""
    watching = make_storage(flag_prefix='revoke')
    other = make_storage('other-queue', flag_prefix='revoke')

    def claim():
        watching.enqueue(b'm', 0)
        if in_transaction:
            with watching.transaction():
                claims = watching.dequeue_many(5)
        else:
            claims = watching.dequeue_many(5)
        assert [c.data for c in claims] == [b'm']
        assert watching.dequeue_many(5) == [] and claims[0].attempts == 1
        watching.ack(claims[0].receipt)
        return claims[0].flagged

    # neighbours of the prefix range, and the prefix in another queue, do not count
    watching.put_data('revokd', b'x')
    watching.put_data('revokf', b'x')
    watching.put_data('revok', b'x')
    other.put_data('revoke:id', b'x')
    first = claim()
    if backend == 'redis':
        assert first is None
        return
    assert first is False
    watching.put_data('revoke-all:task', b'x')
    assert claim() is True
    watching.delete_data('revoke-all:task')
    assert claim() is False
    watching.put_data('revoke', b'x')  # the prefix itself
    assert claim() is True
    assert watching.dequeue_many(1) == []
    storage.enqueue(b'n', 0)
    assert storage.dequeue_many(1)[0].flagged is None  # no prefix: not checked


# ---------------------------------------------------------------------- release_unstarted

def test_release_unstarted_returns_claims_to_their_place(storage):
    storage.enqueue_many([(b'a', 5), (b'b', 5), (b'c', 0), (b'd', 0)])
    a, b, c = run_order(storage.dequeue_many(3))
    storage.enqueue(b'e', 5)
    assert storage.release_unstarted([c.receipt, b.receipt]) == 2
    assert storage.enqueued_items() == [b'b', b'e', b'c', b'd']
    assert storage.release_unstarted([a.receipt]) == 1
    assert storage.enqueued_items() == [b'a', b'b', b'e', b'c', b'd']
    assert (storage.queue_size(), storage.claimed_size()) == (5, 0)


def test_release_unstarted_counts_the_attempt_like_release(storage):
    # attempts are what fence receipts: a given-back claim still counts, once
    storage.enqueue_many([(b'unstarted', 1), (b'released', 0)])
    unstarted, released = run_order(storage.dequeue_many(2))
    assert storage.release_unstarted([unstarted.receipt]) == 1
    assert storage.release(released.receipt) is True
    again = {c.data: c for c in storage.dequeue_many(2)}
    assert (again[b'unstarted'].attempts, again[b'released'].attempts) == (2, 2)
    assert [i.attempts for i in storage.claimed_items()] == [2, 2]


def test_release_unstarted_keeps_recoveries(storage):
    storage.enqueue(b'x')
    with as_owner(storage, DEAD):
        storage.dequeue_many(1)
    assert storage.release_owner(DEAD) == 1
    [recovered] = storage.dequeue_many(1)
    assert (recovered.attempts, recovered.recoveries) == (2, 1)
    assert storage.release_unstarted([recovered.receipt]) == 1
    [again] = storage.dequeue_many(1)
    assert (again.attempts, again.recoveries) == (3, 1)


def test_release_unstarted_skips_unknown_and_stale_receipts(make_storage, storage):
    other = make_storage('other')
    other.enqueue(b'theirs')
    [theirs] = other.dequeue_many(1)
    storage.enqueue_many([(b'a', 0), (b'b', 0), (b'c', 0), (b'd', 0)])
    a, b, c, d = run_order(storage.dequeue_many(4))
    assert storage.ack(b.receipt) is True
    assert storage.release(c.receipt) is True
    fake = (a.receipt[0] + 10_000,) + tuple(a.receipt[1:])
    receipts = [a.receipt, b.receipt, c.receipt, fake, theirs.receipt, d.receipt, a.receipt]
    assert storage.release_unstarted(receipts) == 2  # a (once) and d
    assert storage.release_unstarted([]) == 0
    assert storage.enqueued_items() == [b'a', b'c', b'd']
    assert storage.claimed_size() == 0
    assert (other.queue_size(), other.claimed_size()) == (0, 1)  # another queue's claim: kept
    assert other.ack(theirs.receipt) is True


def test_release_unstarted_rejects_a_foreign_receipt_form(storage):
    storage.enqueue(b'x')
    storage.dequeue_many(1)
    with pytest.raises(TypeError):
        storage.release_unstarted(['not a receipt'])
    assert storage.claimed_size() == 1


@pytest.mark.parametrize('settle', [
    lambda s, claims: s.release_unstarted([c.receipt for c in claims]) == 2,
    lambda s, claims: s.complete_many([(c.receipt, c.data.decode(), b'r', None)
                                       for c in claims]) == [True, True],
], ids=['release_unstarted', 'complete_many'])
def test_batch_settling_is_undone_with_its_transaction(storage, settle):
    storage.enqueue_many([(b'a', 0), (b'b', 0)])
    claims = storage.dequeue_many(2)
    with pytest.raises(ZeroDivisionError):
        with storage.transaction():
            assert settle(storage, claims)
            1 / 0
    assert (storage.queue_size(), storage.claimed_size()) == (0, 2)
    assert storage.result_items() == {}
    assert all(storage.ack(c.receipt) for c in claims)


def test_release_unstarted_wakes_queue_waiters(storage):
    storage.enqueue(b'x')
    [claim] = storage.dequeue_many(1)
    assert storage.wait_for_change(30, 'queue') is True  # tracking starts
    assert storage.wait_for_change(0.01, 'queue') is False
    assert _in_thread(storage.release_unstarted, [claim.receipt]) == 1
    assert storage.wait_for_change(30, 'queue') is True  # at once: the change is not lost


# ---------------------------------------------------------------------- complete_many

def test_complete_many_acks_held_claims_and_stores_their_results(storage, clock):
    storage.enqueue_many([(b'a', 0), (b'b', 0), (b'c', 0), (b'd', 0)])
    a, b, c, d = run_order(storage.dequeue_many(4))
    assert storage.ack(b.receipt) is True  # gone before the group commits
    held = storage.complete_many([(a.receipt, 'ka', b'ra', None), (b.receipt, 'kb', b'rb', None),
                                  (c.receipt, None, None, None), (d.receipt, 'kd', b'', 10)])
    assert held == [True, False, True, True]
    assert (storage.queue_size(), storage.claimed_size()) == (0, 0)
    assert storage.result_items() == {'ka': b'ra', 'kd': b''}  # nothing for the stale one
    clock.advance(11)
    assert storage.peek_data('kd') is EMPTY and storage.peek_data('ka') == b'ra'
    assert storage.complete_many([]) == []
    assert storage.complete_many([(a.receipt, 'ka', b'again', None)]) == [False]
    assert storage.peek_data('ka') == b'ra'


@pytest.mark.parametrize('order', ['stale first', 'held first'])
def test_complete_many_tells_a_stale_receipt_from_a_held_one_of_the_same_message(
        storage, order):
    storage.enqueue(b'x')
    [old] = storage.dequeue_many(1)
    assert storage.release(old.receipt) is True
    [new] = storage.dequeue_many(1)
    items = [(old.receipt, 'k', b'old run', None), (new.receipt, 'k', b'new run', None)]
    if order == 'held first':
        items.reverse()
    held = storage.complete_many(items)
    assert held == ([False, True] if order == 'stale first' else [True, False])
    assert storage.peek_data('k') == b'new run'
    assert storage.claimed_size() == 0
