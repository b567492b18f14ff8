"""SQLite hand-off, its own failure modes (the shared behaviour:
``tests/storage/test_hand_off.py``): the message travels in the wake-up datagram after the
enqueue's commit -- a dead or full socket, a datagram that never comes or comes late, revoke
flags checked by the producer, messages too large for a datagram."""
from __future__ import annotations

import contextlib
import errno
import socket

import pytest

from sqlq.storage import sqlite as sqlite_module
from sqlq.storage.sqlite import SqliteStorage
from tests.storage._helpers import FLAGS, WAIT, go_idle, idle_count


def test_handed_claim_reports_revoke_flags(producer, open_worker):
    worker = open_worker()
    producer.put_data(FLAGS + 'some-task', b'1')
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        producer.enqueue(b'job')
        assert worker.wait_for_change(WAIT, 'queue')
        [claim] = worker.dequeue_many(4)
        assert claim.flagged is True


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
        [claim] = worker.dequeue_many(4)
        assert worker.ack(claim.receipt)
        assert worker.dequeue_many(4) == []  # idle again
        producer.enqueue(big)
        assert producer.queue_size() == 1 and producer.claimed_size() == 0
        assert worker.wait_for_change(WAIT, 'queue')
        [claim] = worker.dequeue_many(4)
        assert claim.data == big


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
            assert idle_count(producer.storage) == 0
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
        [claim] = worker.dequeue_many(4)
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
        [claim] = worker.dequeue_many(4)
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
        claims = worker.dequeue_many(4)
        assert sorted(c.data for c in claims) == [b'job', b'other']
        monkeypatch.undo()
        assert producer.storage._wake.send(*held[0])
        assert worker.wait_for_change(WAIT, 'queue')
        assert worker.dequeue_many(4) == []


def test_released_handed_message_loses_its_assignee(producer, open_worker):
    """A handed message released and claimed again by another thread of the same process is
    not taken away from it when the first worker's session ends."""
    worker, sibling = open_worker(), open_worker()
    sibling._owner = worker._owner  # the same process's owner id
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        producer.enqueue(b'job')
        assert worker.wait_for_change(WAIT, 'queue')
        [claim] = worker.dequeue_many(4)
        assert worker.release_unstarted([claim.receipt]) == 1
        [again] = sibling.dequeue_many(1)
    assert producer.claimed_size() == 1  # still the sibling's
    assert sibling.ack(again.receipt)




@pytest.mark.subprocess
def test_a_worker_session_ending_in_a_process_that_exits_hard_leaves_no_socket(db_path):
    """Process workers end with os._exit (no finalizers run): the end of the worker session
    removes the socket it waited on."""
    import multiprocessing
    import os

    context = multiprocessing.get_context('fork')
    paths = context.SimpleQueue()

    def worker_process():
        storage = SqliteStorage(db_path, flag_prefix=FLAGS)
        with storage.worker_session():
            assert storage.dequeue_many(4) == []  # registered: its socket is bound
            paths.put(storage._wake.socket_path('q'))
        os._exit(0)

    process = context.Process(target=worker_process)
    process.start()
    process.join(WAIT)
    assert process.exitcode == 0
    path = paths.get()
    assert path and not os.path.exists(path)
