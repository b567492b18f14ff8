"""The storage contract, run against every backend.

Builds storages directly (no queue/task layer; fixtures in ``tests/storage/conftest.py``).
Storages made in one test share one backend (the same SQLite file) so that queue-name
isolation is real for SQLite.
"""
from __future__ import annotations

import pickle
import threading
import time

import pytest

from sqlq.exceptions import StorageError
from sqlq.storage import EMPTY, Claim, DeadLetter, OwnerInfo
from tests.storage._helpers import DEAD, _in_thread, as_owner, run_threads

# ---------------------------------------------------------------------- ready queue

def test_priority_then_fifo(storage):
    storage.enqueue(b'low-1', 0)
    storage.enqueue(b'high-1', 10)
    storage.enqueue(b'low-2')
    storage.enqueue(b'neg', -5)
    storage.enqueue(b'high-2', 10)
    expected = [b'high-1', b'high-2', b'low-1', b'low-2', b'neg']
    assert storage.enqueued_items() == expected
    assert storage.enqueued_items(limit=2) == expected[:2]
    assert storage.queue_size() == 5
    got = [storage.dequeue().data for _ in range(5)]
    assert got == expected
    assert storage.dequeue() is None


def test_enqueue_many_is_ordered_counted_and_all_or_nothing(storage):
    assert storage.enqueue_many([(b'a', 0), (b'b', 1), (b'c', 0)]) == 3
    assert storage.enqueue_many([]) == 0
    assert storage.enqueued_items() == [b'b', b'a', b'c']

    def broken():
        yield (b'x', 0)
        raise RuntimeError('producer failed')

    with pytest.raises(RuntimeError):
        storage.enqueue_many(broken())
    assert storage.queue_size() == 3


def test_storage_rejects_non_bytes(storage):
    with pytest.raises(TypeError):
        storage.enqueue('text')  # type: ignore[arg-type]
    assert storage.queue_size() == 0


def test_dequeue_claims_without_deleting(storage, clock):
    storage.enqueue(b'one')
    storage.enqueue(b'two')
    claim = storage.dequeue()
    assert isinstance(claim, Claim)
    assert claim.data == b'one' and claim.attempts == 1
    assert storage.queue_size() == 1
    assert storage.claimed_size() == 1
    assert storage.enqueued_items() == [b'two']
    [item] = storage.claimed_items()
    assert (item.data, item.owner, item.claimed_at, item.attempts, item.recoveries) == \
        (b'one', storage.owner_id, clock.now, 1, 0)
    assert isinstance(item.id, int)
    # A claimed message is invisible to the next dequeue.
    assert storage.dequeue().data == b'two'
    assert storage.dequeue() is None
    assert storage.claimed_size() == 2


def test_receipt_is_hashable_and_picklable(storage):
    storage.enqueue(b'x')
    claim = storage.dequeue()
    hash(claim.receipt)
    receipt = pickle.loads(pickle.dumps(claim.receipt))
    assert storage.ack(receipt) is True
    assert storage.claimed_size() == 0


def test_concurrent_dequeue_claims_each_message_once(storage):
    n = 200
    storage.enqueue_many((b'%d' % i, 0) for i in range(n))
    seen: list[bytes] = []
    lock = threading.Lock()

    def worker(_):
        while True:
            claim = storage.dequeue()
            if claim is None:
                return
            assert storage.ack(claim.receipt)
            with lock:
                seen.append(claim.data)

    run_threads(worker, 4)
    assert sorted(seen) == sorted(b'%d' % i for i in range(n))
    assert storage.queue_size() == storage.claimed_size() == 0


def test_ack_deletes_once(storage):
    storage.enqueue(b'x')
    claim = storage.dequeue()
    assert storage.ack(claim.receipt) is True
    assert storage.claimed_size() == 0 and storage.queue_size() == 0
    assert storage.ack(claim.receipt) is False
    assert storage.release(claim.receipt) is False
    assert storage.bury(claim.receipt, 'late') is False
    assert storage.dead_letter_count() == 0 and storage.queue_size() == 0


def test_stale_receipt_after_reclaim_changes_nothing(storage):
    storage.enqueue(b'x')
    first = storage.dequeue()
    assert storage.release(first.receipt) is True
    second = storage.dequeue()
    assert second.data == b'x' and second.attempts == 2
    # The first claim is gone even though the same message is claimed again.
    assert storage.ack(first.receipt) is False
    assert storage.release(first.receipt) is False
    assert storage.bury(first.receipt, 'stale') is False
    assert storage.claimed_size() == 1 and storage.queue_size() == 0
    assert storage.dead_letter_count() == 0
    assert storage.ack(second.receipt) is True


def test_release_keeps_priority_and_fifo_position(storage):
    storage.enqueue_many([(b'a', 1), (b'b', 1), (b'c', 1), (b'low', 0)])
    claim_a = storage.dequeue()
    claim_b = storage.dequeue()
    storage.enqueue(b'd', 1)
    assert storage.release(claim_b.receipt) is True
    assert storage.release(claim_a.receipt) is True
    assert storage.release(claim_a.receipt) is False
    assert storage.enqueued_items() == [b'a', b'b', b'c', b'd', b'low']
    again = storage.dequeue()
    assert again.data == b'a' and again.attempts == 2


def test_bury_moves_claim_to_dead_letters(storage, clock):
    storage.enqueue(b'poison')
    storage.release(storage.dequeue().receipt)
    claim = storage.dequeue()
    clock.advance(5)
    assert storage.bury(claim.receipt, 'boom') is True
    assert storage.claimed_size() == 0 and storage.queue_size() == 0
    [letter] = storage.dead_letters()
    assert isinstance(letter, DeadLetter)
    assert (letter.data, letter.reason, letter.failed_at, letter.attempts) == \
        (b'poison', 'boom', clock.now, 2)
    assert storage.bury(claim.receipt, 'again') is False
    assert storage.dead_letter_count() == 1


def test_flush_queue_removes_ready_and_claimed(storage):
    storage.enqueue_many([(b'a', 0), (b'b', 0)])
    claim = storage.dequeue()
    storage.add_to_schedule(b's', 1.0)
    storage.put_data('k', b'v')
    storage.flush_queue()
    assert storage.queue_size() == storage.claimed_size() == 0
    assert storage.ack(claim.receipt) is False
    assert storage.schedule_size() == 1 and storage.peek_data('k') == b'v'


# ---------------------------------------------------------------------- schedule

def test_schedule_order_and_atomic_removal(storage):
    storage.add_to_schedule(b't3-a', 3.0)
    storage.add_to_schedule(b't1', 1.0)
    storage.add_to_schedule(b't3-b', 3.0)
    storage.add_to_schedule(b't2', 2.5)
    assert storage.schedule_size() == 4
    assert storage.next_scheduled_time() == 1.0
    assert storage.scheduled_items() == [b't1', b't2', b't3-a', b't3-b']
    assert storage.scheduled_items(limit=1) == [b't1']
    assert storage.read_schedule(0.5) == []
    assert storage.read_schedule(3.0) == [b't1', b't2', b't3-a', b't3-b'][:4]
    assert storage.read_schedule(3.0) == []
    assert storage.schedule_size() == 0
    assert storage.next_scheduled_time() is None


def test_read_schedule_leaves_future_items(storage):
    storage.add_to_schedule(b'now', 10.0)
    storage.add_to_schedule(b'later', 20.0)
    assert storage.read_schedule(10.0) == [b'now']  # boundary is inclusive
    assert storage.scheduled_items() == [b'later']
    assert storage.next_scheduled_time() == 20.0
    storage.flush_schedule()
    assert storage.schedule_size() == 0


def test_read_schedule_with_a_limit_takes_the_earliest_due_first(storage):
    for data, ts in ((b't3-a', 3.0), (b't1', 1.0), (b'later', 9.0), (b't3-b', 3.0),
                     (b't2', 2.5)):
        storage.add_to_schedule(data, ts)
    assert storage.read_schedule(3.0, limit=0) == []
    assert storage.read_schedule(3.0, limit=2) == [b't1', b't2']
    assert storage.read_schedule(3.0, limit=2) == [b't3-a', b't3-b']
    assert storage.read_schedule(3.0, limit=2) == []
    assert storage.scheduled_items() == [b'later']
    with storage.transaction():  # (Redis reads, then removes, at the commit)
        assert storage.read_schedule(9.0, limit=5) == [b'later']
    assert storage.schedule_size() == 0 and storage.next_scheduled_time() is None


def test_concurrent_read_schedule_returns_each_item_once(storage):
    n = 300
    for i in range(n):
        storage.add_to_schedule(b'%d' % i, float(i % 7))
    got: list[bytes] = []
    lock = threading.Lock()

    def reader(i):
        for ts in range(8):
            while True:  # half the readers take the due items in chunks
                items = storage.read_schedule(float(ts), limit=7 if i % 2 else None)
                with lock:
                    got.extend(items)
                if len(items) < 7:
                    break

    run_threads(reader, 4)
    assert sorted(got) == sorted(b'%d' % i for i in range(n))


# ---------------------------------------------------------------------- key/value

def test_kv_put_peek_pop_delete(storage):
    assert storage.peek_data('missing') is EMPTY
    assert repr(EMPTY) == '<EMPTY>'
    assert storage.pop_data('missing') is EMPTY
    assert storage.delete_data('missing') is False
    assert storage.has_data_for_key('missing') is False
    storage.put_data('empty', b'')
    assert storage.peek_data('empty') == b''  # stored empty bytes are not EMPTY
    assert storage.has_data_for_key('empty') is True
    storage.put_data('k', b'v1')
    storage.put_data('k', b'v2')  # upsert
    assert storage.peek_data('k') == b'v2'
    assert storage.pop_data('k') == b'v2'
    assert storage.pop_data('k') is EMPTY
    storage.put_data('d', b'x')
    assert storage.delete_data('d') is True
    assert storage.peek_data('d') is EMPTY


def test_empty_pickles_to_itself():
    assert pickle.loads(pickle.dumps(EMPTY)) is EMPTY


def test_ttl_expiry_makes_keys_invisible(storage, clock):
    storage.put_data('r', b'result', is_result=True, ttl=10)
    storage.put_data('plain', b'v', ttl=10)
    storage.put_data('forever', b'v')
    clock.advance(9.9)
    assert storage.peek_data('r') == b'result'
    assert storage.result_store_size() == 1
    clock.advance(0.1)
    assert storage.peek_data('r') is EMPTY
    assert storage.has_data_for_key('plain') is False
    assert storage.pop_data('plain') is EMPTY
    assert storage.delete_data('r') is False
    assert storage.result_store_size() == 0 and storage.result_items() == {}
    assert storage.peek_data('forever') == b'v'
    # An expired key no longer blocks put_if_empty.
    storage.put_data('lock', b'a', ttl=1)
    assert storage.put_if_empty('lock', b'b') is False
    clock.advance(1)
    assert storage.put_if_empty('lock', b'b') is True
    assert storage.peek_data('lock') == b'b'
    clock.advance(1000)
    assert storage.peek_data('lock') == b'b'  # written without ttl: never expires


def test_put_data_replaces_ttl(storage, clock):
    storage.put_data('k', b'v', ttl=1)
    storage.put_data('k', b'v2')
    clock.advance(5)
    assert storage.peek_data('k') == b'v2'
    storage.put_data('k', b'v3', ttl=1)
    clock.advance(1)
    assert storage.peek_data('k') is EMPTY


def test_put_if_empty_single_winner(storage):
    assert storage.put_if_empty('once', b'first') is True
    assert storage.put_if_empty('once', b'second') is False
    assert storage.peek_data('once') == b'first'
    winners = []
    lock = threading.Lock()

    def racer(i):
        if storage.put_if_empty('race', b'%d' % i):
            with lock:
                winners.append(i)

    run_threads(racer, 8)
    assert len(winners) == 1
    assert storage.peek_data('race') == b'%d' % winners[0]


def test_incr_counts_atomically(storage, clock):
    assert storage.incr('c') == 1
    assert storage.incr('c', 5) == 6
    assert storage.incr('c', -10) == -4
    assert storage.peek_data('c') == b'-4'

    def bump(_):
        for _ in range(50):
            storage.incr('shared')

    run_threads(bump, 4)
    assert storage.peek_data('shared') == b'200'
    storage.put_data('text', b'abc')
    with pytest.raises(ValueError):
        storage.incr('text')
    assert storage.peek_data('text') == b'abc'


def test_incr_ttl_is_a_fixed_window(storage, clock):
    assert storage.incr('rate', ttl=10) == 1
    clock.advance(6)
    assert storage.incr('rate', ttl=10) == 2  # does not extend the window
    clock.advance(4)
    assert storage.peek_data('rate') is EMPTY
    assert storage.incr('rate', ttl=10) == 1  # new window
    clock.advance(9)
    assert storage.peek_data('rate') == b'1'


def test_delete_prefix_is_literal(storage):
    for key in ('lock_a', 'lock_b', 'lockXa', 'lock%', 'lock%x', 'lockzz', 'other_lock_a',
                'LOCK_a', 'lock'):
        storage.put_data(key, b'1')
    assert storage.delete_prefix('lock_') == 2
    assert storage.delete_prefix('lock%') == 2
    assert storage.has_data_for_key('lockXa') and storage.has_data_for_key('lockzz')
    assert storage.has_data_for_key('other_lock_a') and storage.has_data_for_key('LOCK_a')
    assert storage.has_data_for_key('lock')
    assert storage.delete_prefix('nothing') == 0
    assert storage.delete_prefix('lock') == 3
    assert storage.has_data_for_key('LOCK_a')


def test_results_and_plain_keys_are_separate(storage):
    storage.put_data('r1', b'one', is_result=True)
    storage.put_data('r2', b'two', is_result=True)
    storage.put_data('revoke', b'1')
    assert storage.result_store_size() == 2
    assert storage.result_items() == {'r1': b'one', 'r2': b'two'}
    storage.put_data('r2', b'plain now')  # overwritten as a non-result
    assert storage.result_items() == {'r1': b'one'}
    storage.flush_results()
    assert storage.result_store_size() == 0
    assert storage.peek_data('r1') is EMPTY
    assert storage.peek_data('revoke') == b'1' and storage.peek_data('r2') == b'plain now'


# ---------------------------------------------------------------------- dead letters

def test_dead_letters_list_requeue_purge(storage, clock):
    ids = [storage.add_dead_letter(b'm%d' % i, 'reason %d' % i, attempts=i) for i in range(4)]
    assert len(set(ids)) == 4
    assert storage.dead_letter_count() == 4
    letters = storage.dead_letters()
    assert [d.data for d in letters] == [b'm0', b'm1', b'm2', b'm3']
    assert [d.id for d in letters] == ids
    assert letters[2].reason == 'reason 2' and letters[2].attempts == 2
    assert letters[0].failed_at == clock.now
    assert [d.data for d in storage.dead_letters(limit=2)] == [b'm0', b'm1']

    storage.enqueue(b'existing', 5)
    assert storage.requeue_dead_letters([ids[2], ids[0], 999_999], priority=5) == 2
    assert storage.enqueued_items() == [b'existing', b'm0', b'm2']
    assert [d.data for d in storage.dead_letters()] == [b'm1', b'm3']
    storage.dequeue()
    claim = storage.dequeue()
    assert claim.data == b'm0' and claim.attempts == 1  # a requeued message starts afresh

    assert storage.purge_dead_letters([ids[1]]) == 1
    assert storage.purge_dead_letters([ids[1]]) == 0
    assert [d.data for d in storage.dead_letters()] == [b'm3']
    storage.add_dead_letter(b'm4', 'x')
    assert storage.requeue_dead_letters() == 2
    assert storage.dead_letter_count() == 0
    assert storage.enqueued_items()[-2:] == [b'm3', b'm4']
    storage.add_dead_letter(b'm5', 'x')
    assert storage.purge_dead_letters() == 1
    assert storage.dead_letters() == []


# ---------------------------------------------------------------------- transactions

def test_transaction_commit_keeps_everything(storage):
    storage.enqueue(b'claimed')
    with storage.transaction():
        storage.enqueue(b'a')
        storage.add_to_schedule(b's', 1.0)
        storage.put_data('k', b'v')
        claim = storage.dequeue()
        assert storage.ack(claim.receipt)
        storage.add_dead_letter(b'd', 'r')
    assert storage.enqueued_items() == [b'a']
    assert storage.claimed_size() == 0
    assert storage.scheduled_items() == [b's']
    assert storage.peek_data('k') == b'v'
    assert storage.dead_letter_count() == 1


def test_transaction_rollback_undoes_everything(storage):
    storage.enqueue(b'before')
    storage.put_data('k', b'old')

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with storage.transaction():
            storage.enqueue(b'inside')
            storage.enqueue_many([(b'many', 0)])
            claim = storage.dequeue()
            assert claim.data == b'before'
            storage.ack(claim.receipt)
            storage.add_to_schedule(b's', 1.0)
            storage.put_data('k', b'new')
            storage.put_data('k2', b'x')
            storage.incr('n')
            storage.add_dead_letter(b'd', 'r')
            raise Boom
    assert storage.enqueued_items() == [b'before']
    assert storage.claimed_size() == 0
    assert storage.schedule_size() == 0
    assert storage.peek_data('k') == b'old'
    assert storage.peek_data('k2') is EMPTY and storage.peek_data('n') is EMPTY
    assert storage.dead_letter_count() == 0
    # The storage is still usable afterwards.
    storage.enqueue(b'after')
    assert storage.queue_size() == 2


def test_nested_transactions(storage):
    with storage.transaction():
        storage.enqueue(b'outer')
        with pytest.raises(KeyError):
            with storage.transaction():
                storage.enqueue(b'inner-rolled-back')
                raise KeyError
        with storage.transaction():
            storage.enqueue(b'inner-kept')
    assert storage.enqueued_items() == [b'outer', b'inner-kept']

    with pytest.raises(ValueError):
        with storage.transaction():
            with storage.transaction():
                storage.enqueue(b'inner-committed')
            raise ValueError
    assert storage.enqueued_items() == [b'outer', b'inner-kept']


# ---------------------------------------------------------------------- names and flushing

def test_queue_names_do_not_see_each_other(make_storage):
    a = make_storage('alpha')
    b = make_storage('beta')
    a.enqueue(b'a-msg')
    a.add_to_schedule(b'a-sched', 1.0)
    a.put_data('shared-key', b'a-value', is_result=True)
    a.add_dead_letter(b'a-dead', 'r')
    assert b.dequeue() is None
    assert b.queue_size() == 0 and b.schedule_size() == 0 and b.dead_letter_count() == 0
    assert b.read_schedule(10.0) == [] and b.next_scheduled_time() is None
    assert b.peek_data('shared-key') is EMPTY and b.result_items() == {}
    b.put_data('shared-key', b'b-value')
    assert a.peek_data('shared-key') == b'a-value'
    claim = a.dequeue()
    assert b.ack(claim.receipt) is False  # a receipt is only valid for its own queue
    assert a.claimed_size() == 1
    assert b.delete_prefix('') == 1
    assert a.peek_data('shared-key') == b'a-value'


def test_flush_all_is_scoped_to_the_name(make_storage):
    a = make_storage('alpha')
    b = make_storage('beta')
    for s in (a, b):
        s.enqueue(b'm')
        s.enqueue(b'claimed')
        s.dequeue()
        s.add_to_schedule(b's', 1.0)
        s.put_data('k', b'v')
        s.put_data('r', b'v', is_result=True)
        s.add_dead_letter(b'd', 'r')
    a.flush_all()
    assert (a.queue_size(), a.claimed_size(), a.schedule_size(), a.result_store_size(),
            a.dead_letter_count()) == (0, 0, 0, 0, 0)
    assert a.peek_data('k') is EMPTY
    assert (b.queue_size(), b.claimed_size(), b.schedule_size(), b.result_store_size(),
            b.dead_letter_count()) == (1, 1, 1, 1, 1)
    assert b.peek_data('k') == b'v'
    b.flush_results()
    b.flush_schedule()
    b.flush_queue()
    assert b.peek_data('k') == b'v' and b.dead_letter_count() == 1


# ---------------------------------------------------------------------- misc

def test_wait_for_change_sees_a_write_from_another_thread(storage):
    assert storage.wait_for_change(0.02) is False
    result = []
    t = threading.Thread(target=lambda: result.append(storage.wait_for_change(10)), daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while t.is_alive() and time.monotonic() < deadline:
        storage.enqueue(b'x')  # repeated: the waiter may not have started waiting yet
        t.join(0.05)
    assert not t.is_alive()
    assert result == [True]


@pytest.mark.parametrize('topic, write', [
    ('queue', lambda s: s.enqueue(b'x')),
    ('queue', lambda s: s.enqueue_many([(b'x', 0), (b'y', 1)])),
    ('queue', lambda s: s.release(s.dequeue().receipt)),
    ('queue', lambda s: s.requeue_dead_letters([s.add_dead_letter(b'd', 'r')])),
    ('schedule', lambda s: s.add_to_schedule(b'x', 5.0)),
    ('data', lambda s: s.put_data('k', b'v', is_result=True)),
    ('data', lambda s: s.put_if_empty('lock', b'1')),
    ('data', lambda s: s.incr('n')),
    ('data', lambda s: s.pop_data('k')),
])
def test_topic_wait_protocol_never_loses_a_change_made_before_the_wait(storage, topic, write):
    # What the single writes below need, written before tracking starts: a write of two
    # changes may be reported twice (a spurious wake-up, which the contract allows).
    storage.enqueue(b'r')
    storage.put_data('k', b'v')
    # first call for (thread, topic): starts tracking and returns True at once (re-check)
    assert storage.wait_for_change(30, topic) is True
    assert storage.wait_for_change(0.01, topic) is False  # nothing changed since
    _in_thread(write, storage)  # another thread writes between our check and our wait
    assert storage.wait_for_change(30, topic) is True  # not lost: returns at once
    assert storage.wait_for_change(0.01, topic) is False  # ...and reported once


def test_topic_wait_is_woken_by_a_write_of_another_thread(storage):
    assert storage.wait_for_change(0, 'queue') is True  # tracking starts
    result = []
    t = threading.Thread(target=lambda: (storage.wait_for_change(0, 'queue'),
                                         result.append(storage.wait_for_change(30, 'queue'))),
                         daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while t.is_alive() and time.monotonic() < deadline:
        storage.enqueue(b'x')
        t.join(0.05)
    assert result == [True]


def test_wait_for_change_refuses_an_unknown_topic(storage):
    with pytest.raises(ValueError):
        storage.wait_for_change(0, 'everything')


def test_wait_for_change_is_refused_inside_a_transaction(storage):
    with storage.transaction():
        with pytest.raises(StorageError):
            storage.wait_for_change(0.01)
        storage.enqueue(b'still usable')


def test_owner_id_is_stable_and_names_the_host_and_pid(storage):
    import os
    owner = storage.owner_id
    assert owner == storage.owner_id
    assert ':%d:' % os.getpid() in owner


def test_close_is_idempotent_and_final(make_storage):
    s = make_storage()
    s.enqueue(b'x')
    s.close()
    s.close()
    with pytest.raises(StorageError):
        s.enqueue(b'y')


# ---------------------------------------------------------------------- dead letters (more)

def test_bury_copies_enqueued_at_and_dead_letter_by_id(storage, clock):
    storage.enqueue(b'poison')
    enqueued = clock.now
    clock.advance(7)
    claim = storage.dequeue()
    assert claim.recoveries == 0
    assert storage.bury(claim.receipt, 'boom')
    [letter] = storage.dead_letters()
    assert letter.enqueued_at == enqueued and letter.failed_at == enqueued + 7
    assert storage.dead_letter(letter.id) == letter
    plain = storage.add_dead_letter(b'rejected', 'bad')
    assert storage.dead_letter(plain).enqueued_at is None
    given = storage.add_dead_letter(b'x', 'bad', attempts=2, enqueued_at=123.5)
    assert storage.dead_letter(given)[4:6] == (2, 123.5)
    assert storage.dead_letter(10**9) is None


def test_dead_letter_is_scoped_to_the_name(make_storage):
    a, b = make_storage('a'), make_storage('b')
    dead_id = a.add_dead_letter(b'x', 'r')
    assert a.dead_letter(dead_id) is not None and b.dead_letter(dead_id) is None


# ---------------------------------------------------------------------- owners



def test_heartbeat_upserts_this_owner(storage, clock):
    import os
    import socket
    assert storage.owners() == []
    storage.heartbeat()
    started = clock.now
    clock.advance(3)
    storage.heartbeat(ttl_hint=30)
    [info] = storage.owners()
    assert isinstance(info, OwnerInfo)
    assert info == (storage.owner_id, socket.gethostname(), os.getpid(), started, started + 3)


def test_owners_include_claim_holders_without_heartbeat(storage, clock):
    storage.enqueue_many([(b'a', 0), (b'b', 0), (b'c', 0)])
    with as_owner(storage, DEAD):
        storage.dequeue()
        storage.dequeue()
    storage.dequeue()
    storage.heartbeat()
    assert storage.claim_owners() == {DEAD: 2, storage.owner_id: 1}
    owners = {o.id: o for o in storage.owners()}
    assert set(owners) == {DEAD, storage.owner_id}
    assert owners[DEAD] == (DEAD, 'deadhost', 4242, None, None)
    assert owners[storage.owner_id].heartbeat_at == clock.now


def test_release_owner_returns_claims_in_place_and_fences_receipts(storage, clock):
    storage.enqueue_many([(b'low', 0), (b'first', 5), (b'second', 5), (b'mine', 5)])
    with as_owner(storage, DEAD):
        storage.heartbeat()
        c1 = storage.dequeue()
        c2 = storage.dequeue()
    assert (c1.data, c2.data) == (b'first', b'second')
    mine = storage.dequeue()
    storage.enqueue(b'later', 5)
    assert storage.claimed_size() == 3
    assert storage.release_owner(DEAD) == 2
    assert storage.claim_owners() == {storage.owner_id: 1}
    assert DEAD not in {o.id for o in storage.owners()}
    # back at their original priority and FIFO position, before later messages
    assert storage.enqueued_items() == [b'first', b'second', b'later', b'low']
    # fenced: the dead owner's receipts settle nothing, even after a new claim
    assert storage.ack(c1.receipt) is False
    again = storage.dequeue()
    assert (again.data, again.attempts, again.recoveries) == (b'first', 2, 1)
    assert storage.release(c1.receipt) is False and storage.bury(c1.receipt, 'x') is False
    items = {i.data: i for i in storage.claimed_items()}
    assert (items[b'first'].attempts, items[b'first'].recoveries) == (2, 1)
    assert storage.ack(again.receipt) is True
    assert storage.ack(mine.receipt) is True  # other owners' claims untouched
    assert storage.release_owner(DEAD) == 0
    # a recovered message that is buried keeps its counts in the dead letter
    storage.bury(storage.dequeue().receipt, 'r')
    assert storage.dead_letters()[-1].attempts == 2


def test_only_claims_recorded_as_started_are_charged_a_death(storage):
    """A dead owner's claims all go back with ``recoveries`` raised; only those recorded as
    started -- a claim of one, or ``mark_started`` -- have ``deaths`` raised: the tasks of a
    batch that waited unstarted are not charged for what killed the process."""
    storage.enqueue_many([(b'one', 9)] + [(b'b%d' % i, 0) for i in range(4)])
    with as_owner(storage, DEAD):
        single = storage.dequeue()                   # a claim of one: its owner runs it now
        batch = sorted(storage.dequeue_many(4), key=lambda c: c.seq)
        assert single.started and not any(c.started for c in batch)
        assert storage.dequeue_many(1) == []        # (nothing left)
        assert storage.mark_started(batch[0].receipt) is True     # its run began
    assert storage.release_owner(DEAD) == 5
    claims = {c.data: c for c in storage.dequeue_many(5)}
    assert {d: (c.recoveries, c.deaths) for d, c in claims.items()} == {
        b'one': (1, 1), b'b0': (1, 1), b'b1': (1, 0), b'b2': (1, 0), b'b3': (1, 0)}
    assert storage.dequeue_many(1) == [] and not any(c.started for c in claims.values())


def test_mark_started_is_fenced_and_cleared_by_every_release(storage):
    storage.enqueue_many([(b'a', 0), (b'b', 0), (b'c', 0)])
    with as_owner(storage, DEAD):
        a, b, c = sorted(storage.dequeue_many(3), key=lambda claim: claim.seq)
        for claim in (a, b, c):
            assert storage.mark_started(claim.receipt) is True
        assert storage.release(a.receipt) is True
        assert storage.release_unstarted([b.receipt]) == 1
        assert storage.mark_started(a.receipt) is False          # settled: fenced
        assert storage.ack(c.receipt) is True
        assert storage.mark_started(c.receipt) is False
        again = storage.dequeue_many(2)                          # a batch: not started
        assert storage.mark_started(a.receipt) is False          # an older claim's receipt
    assert storage.release_owner(DEAD) == 2
    assert sorted((x.data, x.deaths) for x in storage.dequeue_many(2)) == [(b'a', 0), (b'b', 0)]
    assert len(again) == 2


def test_mark_started_in_a_transaction(storage):
    storage.enqueue_many([(b'a', 0), (b'b', 0), (b'c', 0)])
    with as_owner(storage, DEAD):
        with storage.transaction():
            claims = storage.dequeue_many(2)
            assert not any(claim.started for claim in claims)
            assert storage.mark_started(claims[0].receipt) is True
            assert storage.ack(claims[0].receipt) is True    # still held after the mark
        with storage.transaction():
            [one] = storage.dequeue_many(1)
            assert one.started
    assert storage.release_owner(DEAD) == 2
    back = {claim.data: claim.deaths for claim in storage.dequeue_many(2)}
    assert back == {claims[1].data: 0, one.data: 1}


def test_release_owner_is_scoped_to_the_name(make_storage):
    a, b = make_storage('a'), make_storage('b')
    a.enqueue(b'a')
    b.enqueue(b'b')
    with as_owner(a, DEAD):
        a.dequeue()
    with as_owner(b, DEAD):
        b.dequeue()
    assert a.release_owner(DEAD) == 1
    assert (a.queue_size(), b.queue_size(), b.claimed_size()) == (1, 0, 1)
    assert b.claim_owners() == {DEAD: 1}
    assert b.release_owner(DEAD) == 1


def test_forget_owner_only_without_claims(storage):
    storage.enqueue(b'x')
    with as_owner(storage, DEAD):
        storage.heartbeat()
        storage.dequeue()
    assert storage.forget_owner(DEAD) is False  # still holds a claim
    assert DEAD in {o.id for o in storage.owners()}
    storage.heartbeat()
    assert storage.forget_owner(storage.owner_id) is True
    assert storage.forget_owner(storage.owner_id) is False
    assert [o.id for o in storage.owners()] == [DEAD]
    storage.release_owner(DEAD)
    assert storage.owners() == []


def test_release_owner_is_all_or_nothing_in_a_transaction(storage):
    storage.enqueue_many([(b'a', 0), (b'b', 0)])
    with as_owner(storage, DEAD):
        storage.dequeue()
        storage.dequeue()
    with pytest.raises(ZeroDivisionError):
        with storage.transaction():
            assert storage.release_owner(DEAD) == 2
            1 / 0
    assert storage.claim_owners() == {DEAD: 2}


# ---------------------------------------------------------------------- upkeep

def test_purge_expired_deletes_only_expired_keys_of_this_queue(make_storage, clock):
    a, b = make_storage('a'), make_storage('b')
    a.put_data('result', b'r', is_result=True, ttl=10)
    a.put_if_empty('lock', b'1', ttl=5)
    a.put_data('forever', b'f')
    b.put_data('other', b'o', ttl=1)
    assert a.purge_expired() == 0
    clock.advance(20)
    assert a.stats()['expired_keys'] == 2
    assert a.purge_expired() == 2
    assert a.purge_expired() == 0
    assert a.peek_data('forever') == b'f'
    assert b.stats()['expired_keys'] == 1
    assert b.maintenance()['purged'] == 1


def test_stats_counts_every_state(make_storage, clock):
    s, other = make_storage('s'), make_storage('other')
    other.enqueue(b'elsewhere')
    s.enqueue_many([(b'a', 0), (b'b', 0), (b'c', 0)])
    s.dequeue()
    s.add_to_schedule(b'later', 1e9)
    s.put_data('r1', b'1', is_result=True)
    s.put_data('r2', b'2', is_result=True, ttl=1)
    s.put_data('plain', b'p')
    s.add_dead_letter(b'd', 'r')
    clock.advance(2)
    stats = s.stats()
    assert {k: stats[k] for k in ('ready', 'claimed', 'scheduled', 'results', 'kv_keys',
                                  'expired_keys', 'dead_letters')} == \
        {'ready': 2, 'claimed': 1, 'scheduled': 1, 'results': 1, 'kv_keys': 2,
         'expired_keys': 1, 'dead_letters': 1}
    for key in ('db_size', 'wal_size', 'page_size', 'page_count', 'freelist_count'):
        assert isinstance(stats[key], int) and stats[key] >= 0


def test_maintenance_and_vacuum_keep_the_data(storage, clock):
    storage.enqueue(b'x')
    storage.put_data('k', b'v', ttl=1)
    clock.advance(2)
    report = storage.maintenance()
    assert report['purged'] == 1
    storage.vacuum()
    assert storage.enqueued_items() == [b'x']
    with storage.transaction():
        with pytest.raises(StorageError):
            storage.vacuum()


def test_peek_many_returns_only_live_keys_of_this_queue(storage, make_storage, clock):
    storage.put_data('a', b'1')
    storage.put_data('b', b'2', ttl=5)
    make_storage('other').put_data('c', b'3')
    assert storage.peek_many(['a', 'b', 'c', 'missing']) == {'a': b'1', 'b': b'2'}
    clock.advance(6)
    assert storage.peek_many(['a', 'b']) == {'a': b'1'}
    assert storage.peek_many([]) == {}
