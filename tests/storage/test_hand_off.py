"""The hand-off, on every backend that has one (SQLite, Redis): a single enqueue that finds
its queue with nothing ready claims the message for an idle worker (registered by its worker
session) as part of the enqueue and sends it along with the wake-up, so the worker starts it
without a claim of its own. Whatever goes wrong on the way, the message is run, ready again,
or recovered: never stranded. Backend-specific failure modes (sockets, datagrams,
subscriptions): ``sqlite/test_hand_off.py`` and ``redis/test_hand_off.py``. The producer and
worker fixtures: ``tests/storage/conftest.py``."""
from __future__ import annotations

import contextlib

import pytest

from sqlq.storage.sqlite import SqliteStorage
from tests.storage._helpers import WAIT, go_idle, idle_count

pytestmark = pytest.mark.parametrize('backend', ['sqlite', 'redis'], indirect=True)


@contextlib.contextmanager
def no_storage_round(worker, monkeypatch):
    """Asserts that ``worker`` neither writes (SQLite) nor runs a script (Redis) in the
    block."""
    if isinstance(worker, SqliteStorage):
        before = worker._conn().total_changes()
        yield
        assert worker._conn().total_changes() == before
        return
    runs = []
    real = worker._run
    monkeypatch.setattr(worker, '_run', lambda *a, **k: runs.append(a) or real(*a, **k))
    yield
    assert runs == []


def test_single_enqueue_is_handed_to_the_idle_worker_which_claims_nothing(producer,
                                                                           open_worker,
                                                                           monkeypatch):
    worker = open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        producer.enqueue(b'job', 3)
        # Claimed for the worker by the enqueue itself.
        assert producer.queue_size() == 0
        [item] = producer.claimed_items()
        assert (item.data, item.owner, item.attempts) == (b'job', worker.owner_id, 1)
        assert idle_count(producer.storage) == 0
        assert worker.wait_for_change(WAIT, 'queue')
        with no_storage_round(worker, monkeypatch):
            [claim] = worker.dequeue_many(4)
        assert (claim.data, claim.attempts, claim.priority) == (b'job', 1, 3)
        assert worker.ack(claim.receipt)
        assert producer.claimed_size() == producer.queue_size() == 0


def test_worker_registers_again_after_its_handed_task(producer, open_worker):
    worker = open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        for n in range(3):
            producer.enqueue(b'job %d' % n)
            assert worker.wait_for_change(WAIT, 'queue')
            [claim] = worker.dequeue_many(4)
            assert claim.data == b'job %d' % n
            with worker.transaction():  # as a worker's outcome group does
                assert worker.ack(claim.receipt)
            assert worker.dequeue_many(4) == []
            assert idle_count(worker) == 1


def test_no_hand_off_while_messages_are_ready_or_in_a_transaction(producer, open_worker):
    """The hand-off never jumps the queue: with a ready message, a new one waits its turn;
    an enqueue inside a transaction is never handed off."""
    worker = open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        producer.enqueue_many([(b'first', 5)])
        producer.enqueue(b'second', 0)
        assert producer.queue_size() == 2 and producer.claimed_size() == 0
        assert worker.wait_for_change(WAIT, 'queue')
        claims = worker.dequeue_many(4)
        assert sorted(c.data for c in claims) == [b'first', b'second']
        assert idle_count(producer.storage) == 0  # its claim deregistered it
        for claim in claims:
            assert worker.ack(claim.receipt)
        assert worker.dequeue_many(4) == []  # idle again

        def enqueue_in_transaction(storage):
            with storage.transaction():
                storage.enqueue(b'in a transaction')

        producer.run(enqueue_in_transaction)
        assert producer.queue_size() == 1 and producer.claimed_size() == 0


def test_one_message_goes_to_exactly_one_of_two_idle_workers(producer, open_worker):
    first, second = open_worker(), open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(first, stack)
        go_idle(second, stack)
        producer.enqueue(b'job')
        woken = [w for w in (first, second) if w.wait_for_change(0.2, 'queue')]
        assert len(woken) == 1  # the other one was not even woken
        [claim] = woken[0].dequeue_many(4)
        assert claim.data == b'job'
        other = second if woken[0] is first else first
        assert other.dequeue_many(4) == []
        assert idle_count(producer.storage) == 1  # the other one is still registered


def test_a_registration_the_worker_lost_track_of_still_delivers(producer, open_worker):
    """The worker no longer counts on a registration (the transaction or reply that made or
    ended it was lost): a message handed through it is checked against the storage and run."""
    worker = open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        worker._local.idle_token = None
        producer.enqueue(b'job')
        assert worker.wait_for_change(WAIT, 'queue')
        [claim] = worker.dequeue_many(4)
        assert claim.data == b'job'
        assert worker.ack(claim.receipt)


@pytest.mark.parametrize('stage', ['sent', 'received', 'claim-returned'])
def test_session_end_releases_handed_messages_still_claimed(producer, open_worker, stage):
    worker = open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        producer.enqueue(b'job')
        if stage != 'sent':
            assert worker.wait_for_change(WAIT, 'queue')
        if stage == 'claim-returned':
            [returned] = worker.dequeue_many(4)
    assert producer.claimed_size() == 0 and producer.queue_size() == 1
    assert idle_count(producer.storage) == 0
    [claim] = producer.dequeue_many(1)
    assert claim.data == b'job'
    if stage == 'claim-returned':
        assert not worker.ack(returned.receipt)  # released: the old receipt holds nothing


def test_dead_owner_recovery_removes_its_registrations_and_recovers_its_hand_off(producer,
                                                                               open_worker):
    worker, other = open_worker(), open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        producer.enqueue(b'job')
        assert producer.release_owner(worker.owner_id) == 1
        [claim] = producer.dequeue_many(1)
        assert (claim.data, claim.recoveries) == (b'job', 1)
        assert producer.ack(claim.receipt)
        go_idle(other, stack)
        assert producer.release_owner(other.owner_id) == 0
        assert idle_count(producer.storage) == 0
        producer.enqueue(b'next')
        assert producer.queue_size() == 1  # nobody to hand it to
