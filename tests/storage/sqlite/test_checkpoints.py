"""SQLite on the fast path (issue 5): WAL checkpoints left to the consumer
(``defer_checkpoints``/``checkpoint``) and the short-step busy handler that makes a writer wait
for another connection's write lock."""
from __future__ import annotations

import os
import threading

import apsw
import pytest

from sqlq import SqliteQueue
from sqlq.exceptions import DatabaseLockedError
from sqlq.storage.sqlite import SqliteStorage, _connection
from tests._helpers import wait_for
from tests.storage._helpers import pragma

WAIT = 10  # seconds: bound of every wait in this file
DEFAULT_AUTOCHECKPOINT = 8192  # pages: a producer's auto-checkpoint (SQLite's is 1000)


def autocheckpoint(storage):
    """``wal_autocheckpoint`` of this thread's connection of ``storage``."""
    with storage.transaction() as conn:
        return pragma(conn, 'wal_autocheckpoint')


def in_thread(fn):
    out = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive()
    return out[0]


def write_pages(storage, pages=1300):
    """Commit about ``pages`` pages of new data (more than one auto-checkpoint's worth), in
    transactions of 100 values."""
    for start in range(0, pages, 100):
        with storage.transaction():
            for i in range(start, start + 100):
                storage.put_data('blob-%d' % i, os.urandom(4000))


def db_size(path):
    return os.path.getsize(path)


def test_defer_checkpoints_applies_to_existing_and_new_connections(storage):
    assert autocheckpoint(storage) == DEFAULT_AUTOCHECKPOINT
    opened = threading.Event()
    deferred = threading.Event()
    seen = []

    def other_thread():  # its connection exists before the call
        seen.append(autocheckpoint(storage))
        opened.set()
        assert deferred.wait(WAIT)
        seen.append(autocheckpoint(storage))

    thread = threading.Thread(target=other_thread, daemon=True)
    thread.start()
    try:
        assert opened.wait(WAIT)
        storage.defer_checkpoints(True)
    finally:
        deferred.set()
        thread.join(WAIT)
    assert not thread.is_alive()
    assert seen == [DEFAULT_AUTOCHECKPOINT, 0]
    assert autocheckpoint(storage) == 0
    assert in_thread(lambda: autocheckpoint(storage)) == 0  # a connection opened later
    storage.defer_checkpoints(False)
    assert autocheckpoint(storage) == DEFAULT_AUTOCHECKPOINT
    assert in_thread(lambda: autocheckpoint(storage)) == DEFAULT_AUTOCHECKPOINT


def test_deferred_writes_stay_in_the_wal_until_checkpoint(storage, db_path):
    storage.defer_checkpoints(True)
    before = db_size(db_path)
    write_pages(storage)
    assert db_size(db_path) == before  # no commit folded the WAL into the database
    storage.checkpoint()
    assert db_size(db_path) > before + 1000 * 4000
    other = apsw.Connection(db_path)
    try:
        busy, frames, done = other.execute('PRAGMA wal_checkpoint(PASSIVE)').fetchall()[0]
    finally:
        other.close()
    assert (busy, frames) == (0, done)  # nothing was left to copy
    assert storage.stats()['kv_keys'] == 1300


def test_writes_checkpoint_themselves_again_after_undeferring(storage, db_path):
    storage.defer_checkpoints(True)
    storage.defer_checkpoints(False)
    before = db_size(db_path)
    write_pages(storage, DEFAULT_AUTOCHECKPOINT + 300)
    assert db_size(db_path) > before  # SQLite's auto-checkpoint ran in a commit


def test_a_producers_commits_leave_a_wal_below_the_consumers_urgent_rewind_to_it(
        storage, db_path):
    # A commit that runs SQLite's auto-checkpoint copies the WAL and syncs the file before the
    # call returns: with SQLite's 1000 pages, a producer's single enqueue took 5 ms (p50) while
    # a consumer drained (bench/wal.py probe). A running consumer checkpoints every 0.2 s and
    # rewinds from 4096 pages on; a producer folds the WAL itself only from twice that.
    from sqlq.storage.sqlite._upkeep import Upkeep
    assert DEFAULT_AUTOCHECKPOINT == 2 * Upkeep.rewind_frames
    before = db_size(db_path)
    write_pages(storage, 2000)  # twice SQLite's default threshold
    assert db_size(db_path) == before  # no commit folded the WAL into the database


def test_checkpoint_without_deferring_and_on_an_empty_wal_is_harmless(storage):
    storage.checkpoint()
    storage.enqueue(b'x')
    storage.checkpoint()
    storage.checkpoint()
    assert storage.enqueued_items() == [b'x']


def test_a_consumer_checkpoints_while_running_and_restores_autocheckpoint(tmp_path):
    path = str(tmp_path / 'queue.db')
    queue = SqliteQueue(path, name='test')
    try:
        consumer = queue.create_consumer(workers=1, worker_type='thread')
        consumer.start()
        try:
            assert autocheckpoint(queue.storage) == 0
            before = db_size(path)
            write_pages(queue.storage, 1100)
            # the consumer's loop folds the WAL into the database every 0.2 s
            wait_for(lambda: db_size(path) > before, WAIT, 'a checkpoint by the consumer')
        finally:
            consumer.stop(graceful=True, timeout=WAIT)
        assert autocheckpoint(queue.storage) == DEFAULT_AUTOCHECKPOINT
        assert in_thread(lambda: autocheckpoint(queue.storage)) == DEFAULT_AUTOCHECKPOINT
    finally:
        queue.close()


# ---------------------------------------------------------------------- a bounded WAL
# (issue 14: PASSIVE checkpoints alone never rewound the WAL while others kept writing; the
# drain itself is tests/reliability/test_bounded_wal.py)

def wal_frames(db_path):
    """Frames in the WAL, as a foreign connection's PASSIVE checkpoint reports them."""
    other = apsw.Connection(db_path)
    try:
        return other.execute('PRAGMA wal_checkpoint(PASSIVE)').fetchall()[0][1]
    finally:
        other.close()


@pytest.fixture
def rewinding(storage):
    """``storage`` rewinding its WAL from 1000 frames (4 MB) on, not 16 MB: smaller tests."""
    storage.rewind_frames = 1000
    return storage


@pytest.mark.parametrize('fine_waits', [False, True], ids=['sqlite-waits', 'fine-waits'])
def test_checkpoint_rewinds_a_large_wal_so_that_writes_start_again_at_its_beginning(
        rewinding, db_path, fine_waits):
    storage = rewinding
    storage.defer_checkpoints(True)
    write_pages(storage)  # about 1300 frames: more than rewind_frames
    assert wal_frames(db_path) >= storage.rewind_frames
    wal_before = os.path.getsize(db_path + '-wal')
    done = storage.checkpoint(fine_waits=fine_waits)
    assert done['rewound'] is True and done['rewind_seconds'] is not None
    assert done['wal_frames'] == done['checkpointed_frames'] >= storage.rewind_frames
    storage.put_data('after', b'x')
    assert wal_frames(db_path) < 10  # written from the beginning of the WAL again
    assert os.path.getsize(db_path + '-wal') == wal_before  # reused, not grown
    assert storage.peek_data('blob-1299') is not None and storage.peek_data('after') == b'x'


def test_checkpoint_leaves_a_small_wal_alone(rewinding, db_path):
    storage = rewinding
    storage.defer_checkpoints(True)
    write_pages(storage, 200)
    done = storage.checkpoint()
    assert done['rewound'] is False and done['rewind_seconds'] is None
    assert 0 < done['wal_frames'] == done['checkpointed_frames'] < storage.rewind_frames


@pytest.mark.parametrize('fine_waits', [False, True], ids=['sqlite-waits', 'fine-waits'])
def test_a_reader_of_old_frames_makes_the_rewind_give_up_then_the_next_one_rewinds(
        rewinding, db_path, fine_waits):
    storage = rewinding
    storage.defer_checkpoints(True)
    storage.put_data('before', b'x')
    reader = apsw.Connection(db_path)
    try:
        reader.execute('BEGIN')
        assert reader.execute("SELECT count(*) FROM kv").fetchall()[0][0] == 1  # a snapshot
        write_pages(storage)
        done = storage.checkpoint(fine_waits=fine_waits)
        # Frames after the reader's snapshot cannot be copied back, nor the WAL rewound: the
        # RESTART gave up after rewind_wait instead of waiting for the reader.
        assert done['rewound'] is False and done['rewind_seconds'] is not None
        storage.put_data('during', b'y')  # writers are not blocked
        reader.execute('COMMIT')
    finally:
        reader.close()
    done = storage.checkpoint(fine_waits=fine_waits)
    assert done['rewound'] is True
    storage.put_data('after', b'z')
    assert wal_frames(db_path) < 10


def test_maintenance_truncates_the_wal_unless_a_reader_holds_old_frames(storage, db_path):
    storage.defer_checkpoints(True)
    storage.put_data('before', b'x')
    reader = apsw.Connection(db_path)
    try:
        reader.execute('BEGIN')
        reader.execute("SELECT count(*) FROM kv").fetchall()
        write_pages(storage, 200)
        assert storage.maintenance()['checkpoint'] == 'busy'
        reader.execute('COMMIT')
    finally:
        reader.close()
    assert storage.maintenance()['checkpoint'] == 'truncated'
    assert os.path.getsize(db_path + '-wal') == 0


# ---------------------------------------------------------------------- busy handler

@pytest.fixture
def lock_holder(db_path):
    """A foreign connection to the file; ``holder.execute('BEGIN IMMEDIATE')`` takes the
    write lock. Rolled back and closed at the end."""
    holder = apsw.Connection(db_path)
    yield holder
    if holder.in_transaction:
        holder.execute('ROLLBACK')
    holder.close()


@pytest.fixture
def waiting(monkeypatch):
    """An Event set when a connection opened from now on calls its busy handler (it waits
    for a lock)."""
    event = threading.Event()
    make_handler = _connection._busy_handler

    def observed_busy_handler(*args):
        busy = make_handler(*args)

        def handler(tries):
            event.set()
            return busy(tries)
        return handler

    monkeypatch.setattr(_connection, '_busy_handler', observed_busy_handler)
    return event


def test_a_writer_waits_for_the_write_lock_and_then_succeeds(db_path, lock_holder, waiting):
    storage = SqliteStorage(db_path, 'test', timeout=WAIT)
    lock_holder.execute('BEGIN IMMEDIATE')
    lock_holder.execute("CREATE TABLE app_data (x)")  # uncommitted work of the holder
    outcome = []

    def write():  # a new thread: its connection gets the observed handler
        try:
            storage.enqueue(b'waited')
            outcome.append('ok')
        except Exception as exc:  # pragma: no cover - reported below
            outcome.append(exc)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        assert waiting.wait(WAIT), 'the writer never waited for the lock'
        assert writer.is_alive() and outcome == []  # still waiting: the lock is held
    finally:
        lock_holder.execute('COMMIT')
        writer.join(WAIT)
    assert not writer.is_alive()
    assert outcome == ['ok']
    assert storage.enqueued_items() == [b'waited']
    storage.close()


def test_an_idle_workers_claim_waits_for_the_write_lock_then_claims(db_path, lock_holder,
                                                                     waiting):
    """The claim outside a transaction is one autocommit statement: it waits for the lock
    through the busy handler like any writer, and a timeout claims nothing."""
    storage = SqliteStorage(db_path, 'test', timeout=WAIT, flag_prefix='revoke')
    storage.enqueue(b'ready')
    lock_holder.execute('BEGIN IMMEDIATE')
    lock_holder.execute("CREATE TABLE app_data (x)")
    claimed = []
    claimer = threading.Thread(target=lambda: claimed.extend(storage.dequeue_many(5)),
                               daemon=True)  # a new thread: its connection gets the handler
    claimer.start()
    try:
        assert waiting.wait(WAIT), 'the claim never waited for the lock'
        assert claimer.is_alive() and claimed == []
    finally:
        lock_holder.execute('COMMIT')
        claimer.join(WAIT)
    assert [(c.data, c.attempts, c.flagged) for c in claimed] == [(b'ready', 1, False)]
    assert (storage.queue_size(), storage.claimed_size()) == (0, 1)
    storage.close()

    impatient = SqliteStorage(db_path, 'test', timeout=0.2)
    impatient.enqueue(b'second')
    lock_holder.execute('BEGIN IMMEDIATE')
    with pytest.raises(DatabaseLockedError):
        impatient.dequeue_many(5)
    lock_holder.execute('ROLLBACK')
    assert impatient.enqueued_items() == [b'second']  # still ready, nothing half-claimed
    impatient.close()


def test_a_lock_held_past_the_timeout_fails_naming_the_timeout(db_path, lock_holder):
    storage = SqliteStorage(db_path, 'test', timeout=0.2)
    lock_holder.execute('BEGIN IMMEDIATE')
    with pytest.raises(DatabaseLockedError) as info:
        storage.enqueue(b'blocked')
    message = str(info.value)
    assert 'busy timeout (0.2s)' in message and 'locked' in message
    lock_holder.execute('ROLLBACK')
    storage.enqueue(b'after')  # the storage is fine once the lock is free
    assert storage.enqueued_items() == [b'after']
    storage.close()


@pytest.mark.parametrize('worker_type,fine_waits', [('process', True), ('thread', False)])
def test_the_consumer_polls_finely_only_beside_process_workers_and_retries_a_failed_rewind_soon(
        tmp_path, monkeypatch, worker_type, fine_waits):
    # A rewind that gave up (busy writers, a long reader) is retried after CHECKPOINT_RETRY,
    # not a whole CHECKPOINT_INTERVAL: what one interval writes is the WAL's bound. Only a
    # process whose workers are processes leaves the GIL free for finely polled lock waits.
    from sqlq.consumer import CHECKPOINT_INTERVAL, CHECKPOINT_RETRY
    queue = SqliteQueue(str(tmp_path / 'queue.db'), name='test')
    try:
        consumer = queue.create_consumer(workers=1, worker_type=worker_type)
        calls = []
        outcomes = iter([{'rewound': False, 'rewind_seconds': 0.02},
                         {'rewound': True, 'rewind_seconds': 0.003},
                         {'rewound': False, 'rewind_seconds': None}])
        monkeypatch.setattr(queue.storage, 'checkpoint',
                            lambda **kw: calls.append(kw) or next(outcomes))
        assert [consumer._checkpoint() for _ in range(3)] == [
            CHECKPOINT_RETRY, CHECKPOINT_INTERVAL, CHECKPOINT_INTERVAL]
        assert calls == [{'fine_waits': fine_waits}] * 3
        assert CHECKPOINT_RETRY < CHECKPOINT_INTERVAL
    finally:
        queue.close()
