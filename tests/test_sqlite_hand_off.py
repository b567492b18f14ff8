"""SQLite hand-off: a single enqueue that finds its queue empty claims the message for an idle
worker (registered by its worker session) in the enqueue's transaction and sends it with the
wake-up datagram. Whatever goes wrong on the way -- a dead or full socket, a datagram that
never comes, a worker that stops, a dead process -- the message is run, ready again, or
recovered: never stranded."""
from __future__ import annotations

import contextlib
import errno
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from sqlq.storage import sqlite as sqlite_module
from sqlq.storage.sqlite import SqliteStorage
from tests.test_sqlite_storage import db_path  # noqa: F401  (fixture)

WAIT = 10  # seconds: bound of every wait in this file
FLAGS = 'revoke:'


class Producer:
    """A storage whose calls run in a thread of their own, as a producer's do (wake-ups skip
    the writer's own thread)."""

    def __init__(self, storage):
        self.storage = storage
        self._thread = ThreadPoolExecutor(1)

    def __getattr__(self, name):
        method = getattr(self.storage, name)
        return lambda *args: self._thread.submit(method, *args).result(WAIT)

    def run(self, fn):
        return self._thread.submit(fn, self.storage).result(WAIT)

    def close(self):
        self.run(lambda storage: storage.close())
        self._thread.shutdown()


@pytest.fixture
def producer(db_path):  # noqa: F811
    p = Producer(SqliteStorage(db_path))
    yield p
    p.close()


@pytest.fixture
def open_worker(db_path):  # noqa: F811
    """Opens worker storages: each one's session runs in the calling thread (its own
    thread-local state, its own wake-up socket)."""
    stack = contextlib.ExitStack()

    def open_one():
        s = SqliteStorage(db_path)
        stack.callback(s.close)
        return s

    with stack:
        yield open_one


def idle_rows(storage):
    return storage._rows('SELECT token, owner FROM idle_worker')


def go_idle(worker, stack):
    """Enter ``worker``'s session and let it find the queue empty: it registers."""
    stack.enter_context(worker.worker_session())
    assert worker.dequeue_many(4, FLAGS) == []
    assert worker.owner_id in [owner for _, owner in idle_rows(worker)]


def writes(storage):
    return storage._conn().total_changes()


def test_single_enqueue_is_handed_to_the_idle_worker_which_claims_nothing(producer,
                                                                           open_worker):
    worker = open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        producer.enqueue(b'job', 3)
        # Claimed for the worker in the producer's own transaction.
        assert producer.queue_size() == 0
        [item] = producer.claimed_items()
        assert (item.data, item.owner, item.attempts) == (b'job', worker.owner_id, 1)
        assert idle_rows(producer) == []
        assert worker.wait_for_change(WAIT, 'queue')
        before = writes(worker)
        [claim] = worker.dequeue_many(4, FLAGS)
        assert writes(worker) == before  # no claim statement of its own
        assert (claim.data, claim.attempts, claim.priority, claim.flagged) == (b'job', 1, 3,
                                                                              False)
        assert worker.ack(claim.receipt)
        assert producer.claimed_size() == producer.queue_size() == 0


def test_handed_claim_reports_revoke_flags(producer, open_worker):
    worker = open_worker()
    producer.put_data(FLAGS + 'some-task', b'1')
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        producer.enqueue(b'job')
        assert worker.wait_for_change(WAIT, 'queue')
        [claim] = worker.dequeue_many(4, FLAGS)
        assert claim.flagged is True


def test_worker_registers_again_after_its_handed_task(producer, open_worker):
    worker = open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        for n in range(3):
            producer.enqueue(b'job %d' % n)
            assert worker.wait_for_change(WAIT, 'queue')
            [claim] = worker.dequeue_many(4, FLAGS)
            assert claim.data == b'job %d' % n
            with worker.transaction():  # as a worker's outcome group does
                assert worker.ack(claim.receipt)
                assert worker.dequeue_many(4, FLAGS) == []
            assert len(idle_rows(producer)) == 1


def test_no_hand_off_while_messages_are_ready(producer, open_worker):
    """The hand-off never jumps the queue: with a ready message, a new one waits its turn."""
    worker = open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        producer.enqueue_many([(b'first', 5)])
        producer.enqueue(b'second', 0)
        assert producer.queue_size() == 2 and producer.claimed_size() == 0
        assert worker.wait_for_change(WAIT, 'queue')
        claims = worker.dequeue_many(4, FLAGS)
        assert sorted(c.data for c in claims) == [b'first', b'second']
        assert idle_rows(producer) == []  # its claim deregistered it


def test_no_hand_off_inside_a_transaction_or_for_a_large_message(producer, open_worker):
    worker = open_worker()
    big = b'x' * (sqlite_module.HAND_OFF_MAX + 1)
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        def enqueue_in_transaction(storage):
            with storage.transaction():
                storage.enqueue(b'in a transaction')

        producer.run(enqueue_in_transaction)
        assert producer.queue_size() == 1
        assert worker.wait_for_change(WAIT, 'queue')
        [claim] = worker.dequeue_many(4, FLAGS)
        assert worker.ack(claim.receipt)
        assert worker.dequeue_many(4, FLAGS) == []  # idle again
        producer.enqueue(big)
        assert producer.queue_size() == 1 and producer.claimed_size() == 0
        assert worker.wait_for_change(WAIT, 'queue')
        [claim] = worker.dequeue_many(4, FLAGS)
        assert claim.data == big


def test_one_message_goes_to_exactly_one_of_two_idle_workers(producer, open_worker):
    first, second = open_worker(), open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(first, stack)
        go_idle(second, stack)
        producer.enqueue(b'job')
        woken = [w for w in (first, second) if w.wait_for_change(0.2, 'queue')]
        assert len(woken) == 1  # the other one was not even woken
        [claim] = woken[0].dequeue_many(4, FLAGS)
        assert claim.data == b'job'
        other = second if woken[0] is first else first
        assert other.dequeue_many(4, FLAGS) == []
        assert len(idle_rows(producer)) == 1  # the other one is still registered


@pytest.mark.parametrize('socket_file', ['left-behind', 'removed'])
def test_hand_off_to_a_dead_worker_leaves_the_message_ready(producer, open_worker,
                                                            socket_file):
    """The worker's thread is gone without deregistering: its socket file may be left behind
    (nobody bound: the send is refused, the registration dropped) or removed (no queue
    listener at all: no hand-off is tried)."""
    worker = open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        if socket_file == 'removed':
            worker._wake.close()
        else:
            worker._wake._bound('q').sock.close()
        producer.enqueue(b'job')
        assert producer.claimed_size() == 0 and producer.queue_size() == 1
        if socket_file == 'left-behind':
            assert idle_rows(producer) == []
        [claim] = open_worker().dequeue_many(1)
        assert (claim.data, claim.attempts) == (b'job', 1)


def test_hand_off_to_a_full_socket_leaves_the_message_ready(producer, open_worker):
    worker = open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        path = worker._wake.socket_path('q')
        filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        filler.setblocking(False)
        stack.callback(filler.close)
        for _ in range(100_000):
            try:
                filler.sendto(b'!', path)
            except OSError as exc:
                assert exc.errno in (errno.EAGAIN, errno.ENOBUFS)
                break
        else:
            pytest.fail('the socket never filled up')
        producer.enqueue(b'job')
        assert producer.claimed_size() == 0 and producer.queue_size() == 1
        assert worker.wait_for_change(WAIT, 'queue')
        [claim] = worker.dequeue_many(4, FLAGS)
        assert claim.data == b'job'


def test_a_datagram_that_never_comes_is_found_at_the_workers_next_check(producer,
                                                                        open_worker,
                                                                        monkeypatch):
    """The producer died between its commit and its send: the worker's check after a
    timed-out wait sees its registration gone and takes the message from the table."""
    worker = open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        monkeypatch.setattr(producer.storage._wake, 'send', lambda path, message: True)
        producer.enqueue(b'job')
        assert not worker.wait_for_change(0.05, 'queue')
        [claim] = worker.dequeue_many(4, FLAGS)
        assert (claim.data, claim.attempts) == (b'job', 1)
        assert worker.ack(claim.receipt)
        assert producer.claimed_size() == 0


def test_a_late_datagram_is_not_run_twice(producer, open_worker, monkeypatch):
    """The worker took its handed message from the table (woken by something else); the
    datagram arriving afterwards is ignored."""
    worker = open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        held = []
        monkeypatch.setattr(producer.storage._wake, 'send',
                            lambda path, message: held.append((path, message)) or True)
        producer.enqueue(b'job')
        producer.enqueue_many([(b'other', 0)])  # an ordinary wake-up
        assert worker.wait_for_change(WAIT, 'queue')
        claims = worker.dequeue_many(4, FLAGS)
        assert sorted(c.data for c in claims) == [b'job', b'other']
        monkeypatch.undo()
        assert producer.storage._wake.send(*held[0])
        assert worker.wait_for_change(WAIT, 'queue')
        assert worker.dequeue_many(4, FLAGS) == []


def test_a_registration_the_worker_lost_track_of_still_delivers(producer, open_worker):
    """A deregistration rolled back with its transaction leaves a row the worker no longer
    counts on; a message handed through it is checked against the table and run."""
    worker = open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        worker._local.idle_token = None
        producer.enqueue(b'job')
        assert worker.wait_for_change(WAIT, 'queue')
        [claim] = worker.dequeue_many(4, FLAGS)
        assert claim.data == b'job' and claim.flagged is None
        assert worker.ack(claim.receipt)


@pytest.mark.parametrize('stage', ['datagram-pending', 'datagram-received', 'claim-returned'])
def test_session_end_releases_handed_messages_still_claimed(producer, open_worker, stage):
    worker = open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        producer.enqueue(b'job')
        if stage != 'datagram-pending':
            assert worker.wait_for_change(WAIT, 'queue')
        if stage == 'claim-returned':
            [returned] = worker.dequeue_many(4, FLAGS)
    assert producer.claimed_size() == 0 and producer.queue_size() == 1
    assert idle_rows(producer) == []
    [claim] = producer.dequeue_many(1)
    assert claim.data == b'job'
    if stage == 'claim-returned':
        assert not worker.ack(returned.receipt)  # released: the old receipt holds nothing


def test_released_handed_message_loses_its_assignee(producer, open_worker):
    """A handed message released and claimed again by another thread of the same process is
    not taken away from it when the first worker's session ends."""
    worker, sibling = open_worker(), open_worker()
    sibling._owner_id, sibling._owner_pid = worker.owner_id, worker._owner_pid
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        producer.enqueue(b'job')
        assert worker.wait_for_change(WAIT, 'queue')
        [claim] = worker.dequeue_many(4, FLAGS)
        assert worker.release_unstarted([claim.receipt]) == 1
        [again] = sibling.dequeue_many(1)
    assert producer.claimed_size() == 1  # still the sibling's
    assert sibling.ack(again.receipt)


def test_dead_owner_recovery_removes_its_registrations(producer, open_worker):
    worker = open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        assert producer.release_owner(worker.owner_id) == 0
        assert idle_rows(producer) == []
        producer.enqueue(b'job')
        assert producer.queue_size() == 1


def test_handed_message_of_a_dead_owner_is_recovered(producer, open_worker):
    worker = open_worker()
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        producer.enqueue(b'job')
        assert producer.release_owner(worker.owner_id) == 1
        [claim] = producer.dequeue_many(1)
        assert (claim.data, claim.recoveries) == (b'job', 1)
        assert producer.ack(claim.receipt)
        # The worker's datagram is stale: its receipt no longer holds anything.
        assert worker.wait_for_change(WAIT, 'queue')
        [stale] = worker.dequeue_many(4, FLAGS)
        assert not worker.ack(stale.receipt)
