"""SqliteStorage specifics: pragmas, file safety, opening errors, migrations, locking, fork and
several processes sharing one file. The behaviour shared with the other backends is in
``tests/storage/test_contract.py``; the ``db_path`` and ``storage`` fixtures in this folder's
conftest."""
from __future__ import annotations

import multiprocessing
import os
import stat
import threading
import time

import apsw
import pytest

from sqlq.exceptions import ConfigurationError, DatabaseLockedError, StorageError
from sqlq.storage.sqlite import SqliteStorage, _connection, _schema
from tests.storage._helpers import pragma

# ---------------------------------------------------------------------- settings

@pytest.mark.parametrize('mode, code', [('NORMAL', 1), ('FULL', 2), ('OFF', 0), ('full', 2)])
def test_wal_and_synchronous_are_applied(db_path, mode, code):
    s = SqliteStorage(db_path, synchronous=mode, cache_size=-4096)
    try:
        with s.transaction() as conn:
            assert isinstance(conn, apsw.Connection)
            assert pragma(conn, 'synchronous') == code
            assert pragma(conn, 'cache_size') == -4096
        other = apsw.Connection(db_path)
        assert pragma(other, 'journal_mode') == 'wal'  # persistent: set in the file
        assert pragma(other, 'application_id') == _schema.APPLICATION_ID
        assert pragma(other, 'user_version') == _schema.SCHEMA_VERSION
        other.close()
    finally:
        s.close()


def test_bad_options_are_configuration_errors(db_path):
    with pytest.raises(ConfigurationError, match='synchronous'):
        SqliteStorage(db_path, synchronous='EXTRA')
    with pytest.raises(ConfigurationError, match='timeout'):
        SqliteStorage(db_path, timeout=-1)
    with pytest.raises(ConfigurationError):
        SqliteStorage(':memory:')
    assert not os.path.exists(db_path)


def test_new_database_is_private(db_path):
    old = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        s = SqliteStorage(db_path)
        s.enqueue(b'x')  # creates the -wal file too
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(db_path + '-wal').st_mode) == 0o600
    finally:
        s.close()


def test_existing_file_mode_is_kept(db_path):
    SqliteStorage(db_path).close()
    os.chmod(db_path, 0o640)
    SqliteStorage(db_path).close()
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o640


# ---------------------------------------------------------------------- opening errors

def test_text_file_is_refused_and_left_alone(db_path):
    with open(db_path, 'w') as f:
        f.write('this is a shopping list, not a database\n' * 100)
    with pytest.raises(StorageError, match='not a SQLite database') as info:
        SqliteStorage(db_path)
    assert db_path in str(info.value)
    with open(db_path) as f:
        assert f.read().startswith('this is a shopping list')


def test_database_of_another_application_id_is_refused(db_path):
    conn = apsw.Connection(db_path)
    conn.execute('PRAGMA application_id=1234; CREATE TABLE task (x)')
    conn.close()
    with pytest.raises(StorageError, match='another application') as info:
        SqliteStorage(db_path)
    assert db_path in str(info.value)


def test_database_with_foreign_tables_is_refused(db_path):
    conn = apsw.Connection(db_path)
    conn.execute('CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)')
    conn.close()
    with pytest.raises(StorageError, match='another application') as info:
        SqliteStorage(db_path)
    assert db_path in str(info.value)
    conn = apsw.Connection(db_path)  # nothing was added to it
    assert pragma(conn, 'application_id') == 0
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_schema")] == ['invoices']
    conn.close()


def test_database_from_a_newer_sqlq_is_refused(db_path):
    SqliteStorage(db_path).close()
    conn = apsw.Connection(db_path)
    conn.execute('PRAGMA user_version=%d' % (_schema.SCHEMA_VERSION + 1))
    conn.close()
    with pytest.raises(StorageError, match='newer sqlq') as info:
        SqliteStorage(db_path)
    assert db_path in str(info.value)


def test_missing_directory_is_refused(tmp_path):
    path = str(tmp_path / 'no-such-dir' / 'queue.db')
    with pytest.raises(StorageError, match='does not exist') as info:
        SqliteStorage(path)
    assert path in str(info.value)
    assert not os.path.exists(os.path.dirname(path))


def test_read_only_directory_is_refused(tmp_path, monkeypatch):
    directory = tmp_path / 'ro'
    directory.mkdir()
    path = str(directory / 'queue.db')
    os.chmod(directory, 0o500)
    if os.geteuid() == 0:
        # root bypasses permission bits; answer as the kernel would for anyone else.
        real_access = os.access
        monkeypatch.setattr(os, 'access', lambda p, mode, **kw: False if os.fspath(p) ==
                            str(directory) else real_access(p, mode, **kw))
    try:
        with pytest.raises(StorageError, match='not writable') as info:
            SqliteStorage(path)
        assert path in str(info.value)
        assert not os.path.exists(path)
    finally:
        os.chmod(directory, 0o700)


# ---------------------------------------------------------------------- migrations

def test_migration_hook_upgrades_once(db_path, monkeypatch):
    SqliteStorage(db_path).close()  # a database of the current version
    current = _schema.SCHEMA_VERSION
    calls = []

    def to_next(conn):
        calls.append(pragma(conn, 'user_version'))
        conn.execute('ALTER TABLE task ADD COLUMN lease_until REAL')

    monkeypatch.setattr(_schema, 'SCHEMA_VERSION', current + 1)
    monkeypatch.setattr(_schema, 'MIGRATIONS', {**_schema.MIGRATIONS, current: to_next})
    s = SqliteStorage(db_path)
    s.enqueue(b'still works')
    s.close()
    SqliteStorage(db_path).close()
    assert calls == [current]
    conn = apsw.Connection(db_path)
    assert pragma(conn, 'user_version') == current + 1
    assert 'lease_until' in [r[1] for r in conn.execute('PRAGMA table_info(task)')]
    conn.close()


def test_new_database_runs_every_migration(db_path, monkeypatch):
    current = _schema.SCHEMA_VERSION
    calls = []
    monkeypatch.setattr(_schema, 'SCHEMA_VERSION', current + 1)
    monkeypatch.setattr(_schema, 'MIGRATIONS',
                        {**_schema.MIGRATIONS, current: lambda conn: calls.append(current)})
    SqliteStorage(db_path).close()
    assert calls == [current]


def test_failed_migration_changes_nothing(db_path, monkeypatch):
    SqliteStorage(db_path).close()
    current = _schema.SCHEMA_VERSION

    def broken(conn):
        conn.execute('CREATE TABLE half_done (x)')
        raise RuntimeError('migration bug')

    monkeypatch.setattr(_schema, 'SCHEMA_VERSION', current + 1)
    monkeypatch.setattr(_schema, 'MIGRATIONS', {**_schema.MIGRATIONS, current: broken})
    with pytest.raises(RuntimeError, match='migration bug'):
        SqliteStorage(db_path)
    conn = apsw.Connection(db_path)
    assert pragma(conn, 'user_version') == current
    assert not conn.execute("SELECT 1 FROM sqlite_schema WHERE name='half_done'").fetchall()
    conn.close()


def test_version_1_database_is_upgraded_with_its_tasks(db_path):
    """A file written by sqlq before the hand-off (schema 1) keeps its ready and claimed
    tasks, and works as a current one."""
    conn = apsw.Connection(db_path)
    conn.execute('PRAGMA journal_mode=WAL')
    conn.execute(_schema.SCHEMA_V1)
    conn.execute("INSERT INTO task (queue, priority, data, enqueued_at) VALUES ('sqlq', 0, "
                 "x'6f6c64', 1.0)")
    conn.execute("INSERT INTO task (queue, priority, data, enqueued_at, owner, claimed_at, "
                 "attempts) VALUES ('sqlq', 0, x'72756e6e696e67', 1.0, 'gone:1:x', 2.0, 1)")
    conn.execute('PRAGMA application_id=%d' % _schema.APPLICATION_ID)
    conn.execute('PRAGMA user_version=1')
    conn.close()
    s = SqliteStorage(db_path)
    try:
        assert pragma(apsw.Connection(db_path), 'user_version') == _schema.SCHEMA_VERSION
        assert s.enqueued_items() == [b'old']
        assert [item.data for item in s.claimed_items()] == [b'running']
        assert s.release_owner('gone:1:x') == 1
        assert sorted(c.data for c in s.dequeue_many(5)) == [b'old', b'running']
    finally:
        s.close()


# ---------------------------------------------------------------------- locking, transactions

def test_write_lock_held_past_busy_timeout_raises(db_path):
    s = SqliteStorage(db_path, timeout=0.2)
    s.enqueue(b'before')
    holder = apsw.Connection(db_path)
    holder.execute('BEGIN IMMEDIATE')
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseLockedError) as info:
            s.enqueue(b'blocked')
        assert time.monotonic() - started < 5
        assert db_path in str(info.value)
        assert isinstance(info.value, StorageError)
        with pytest.raises(DatabaseLockedError):
            s.dequeue()
        assert s.queue_size() == 1  # WAL: readers are not blocked by the writer
    finally:
        holder.execute('ROLLBACK')
        holder.close()
    s.enqueue(b'after')
    assert s.enqueued_items() == [b'before', b'after']
    s.close()


def test_storage_calls_join_the_application_transaction(storage, db_path):
    with storage.transaction() as conn:
        conn.execute('CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)')
    observer = SqliteStorage(db_path, 'test')  # another connection

    with storage.transaction() as conn:
        conn.execute("INSERT INTO orders (item) VALUES ('book')")
        storage.enqueue(b'ship book')
        assert observer.queue_size() == 0  # not visible before commit
    assert observer.queue_size() == 1
    assert storage.enqueued_items() == [b'ship book']

    with pytest.raises(ZeroDivisionError):
        with storage.transaction() as conn:
            conn.execute("INSERT INTO orders (item) VALUES ('lamp')")
            storage.enqueue(b'ship lamp')
            1 / 0
    with storage.transaction() as conn:
        items = [r[0] for r in conn.execute('SELECT item FROM orders ORDER BY id')]
    assert items == ['book']
    assert observer.enqueued_items() == [b'ship book']
    observer.close()


def test_wait_for_change_sees_another_connection_commit(storage, db_path):
    other = apsw.Connection(db_path)
    assert storage.wait_for_change(0.02) is False
    other.execute("INSERT INTO kv (queue, key, value) VALUES ('x', 'k0', x'00')")
    # A commit made since this thread's last wait is reported at once (no lost wake-up
    # between a worker's empty dequeue and its wait), and only once.
    assert storage.wait_for_change(10) is True
    assert storage.wait_for_change(0.02) is False
    result = []
    t = threading.Thread(target=lambda: result.append(storage.wait_for_change(10)),
                         daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    n = 0
    while t.is_alive() and time.monotonic() < deadline:
        n += 1  # keep committing: the waiter may not have started waiting yet
        other.execute("INSERT INTO kv (queue, key, value) VALUES ('x', ?, x'00')", ('k%d' % n,))
        t.join(0.05)
    other.close()
    assert not t.is_alive()
    assert result == [True]


# ---------------------------------------------------------------------- fork

def _wait_child(pid, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)  # polling a child's exit, not synchronising on time
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail('forked child did not exit within %ss' % timeout)


@pytest.mark.subprocess
@pytest.mark.skipif(not hasattr(os, 'fork'), reason='needs os.fork')
def test_child_after_fork_uses_new_connection(storage):
    storage.enqueue(b'from parent')
    parent_conn = storage._local.conn
    parent_owner = storage.owner_id
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            claim = storage.dequeue()
            ok = (claim is not None and claim.data == b'from parent'
                  and storage.owner_id != parent_owner
                  and claim.receipt[1] == storage.owner_id
                  and storage._local.conn is not parent_conn
                  and any(c is parent_conn for c in _connection._ABANDONED)
                  and storage.ack(claim.receipt))
            storage.enqueue(b'from child')
            storage.close()
            code = 0 if ok else 2
        finally:
            os._exit(code)
    assert _wait_child(pid) == 0
    # The parent's connection is intact and sees the child's commits.
    assert storage._local.conn is parent_conn
    assert storage.enqueued_items() == [b'from child']
    assert storage.claimed_size() == 0


# ---------------------------------------------------------------------- several processes

OPENERS, OPEN_ROUNDS = 6, 15


def _opener(directory, barrier, out_dir, index):
    errors = []
    for r in range(OPEN_ROUNDS):
        barrier.wait(30)  # all processes open the same brand-new file at once
        try:
            s = SqliteStorage(os.path.join(directory, 'new-%d.db' % r), 'race', timeout=10)
            s.enqueue(b'%d' % index)
            s.close()
        except Exception as exc:
            errors.append('round %d: %r' % (r, exc))
    with open(os.path.join(out_dir, 'opener-%d' % index), 'w') as f:
        f.write('\n'.join(errors))


@pytest.mark.subprocess
@pytest.mark.slow
def test_processes_creating_the_same_new_file_at_once(tmp_path):
    ctx = multiprocessing.get_context('spawn')
    barrier = ctx.Barrier(OPENERS)
    procs = [ctx.Process(target=_opener, args=(str(tmp_path), barrier, str(tmp_path), i))
             for i in range(OPENERS)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(60)
            assert p.exitcode == 0, 'opener failed or hung: %r' % p.exitcode
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)
    errors = [(tmp_path / ('opener-%d' % i)).read_text() for i in range(OPENERS)]
    assert not any(errors), errors
    for r in range(OPEN_ROUNDS):
        s = SqliteStorage(str(tmp_path / ('new-%d.db' % r)), 'race')
        assert sorted(s.enqueued_items()) == sorted(b'%d' % i for i in range(OPENERS))
        s.close()


PRODUCERS, CONSUMERS, PER_PRODUCER = 4, 3, 500


def _producer(path, index, barrier):
    barrier.wait(30)
    s = SqliteStorage(path, 'mp')
    for start in range(0, PER_PRODUCER, 50):
        batch = [(b'%d:%d' % (index, i), 0) for i in range(start, start + 50)]
        if start % 100:
            s.enqueue_many(batch)
        else:
            for data, priority in batch:
                s.enqueue(data, priority)
    s.close()


def _consumer(path, index, barrier, producers_done, out_dir):
    barrier.wait(30)
    s = SqliteStorage(path, 'mp')
    got = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        claim = s.dequeue()
        if claim is not None:
            if not s.ack(claim.receipt):
                raise AssertionError('ack of a fresh claim failed')
            got.append(claim.data)
        elif producers_done.is_set() and s.queue_size() == 0:
            break
        else:
            s.wait_for_change(0.05)
    s.close()
    with open(os.path.join(out_dir, 'consumer-%d' % index), 'wb') as f:
        f.write(b'\n'.join(got))


@pytest.mark.subprocess
@pytest.mark.slow
def test_many_processes_share_one_file(tmp_path):
    path = str(tmp_path / 'shared.db')  # created concurrently by the processes themselves
    ctx = multiprocessing.get_context('spawn')
    barrier = ctx.Barrier(PRODUCERS + CONSUMERS)
    producers_done = ctx.Event()
    producers = [ctx.Process(target=_producer, args=(path, i, barrier))
                 for i in range(PRODUCERS)]
    consumers = [ctx.Process(target=_consumer,
                             args=(path, i, barrier, producers_done, str(tmp_path)))
                 for i in range(CONSUMERS)]
    procs = producers + consumers
    for p in procs:
        p.start()
    try:
        for p in producers:
            p.join(60)
            assert p.exitcode == 0, 'producer failed or hung: %r' % p.exitcode
        producers_done.set()
        for p in consumers:
            p.join(60)
            assert p.exitcode == 0, 'consumer failed or hung: %r' % p.exitcode
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)

    seen = []
    for i in range(CONSUMERS):
        with open(tmp_path / ('consumer-%d' % i), 'rb') as f:
            content = f.read()
        seen.extend(content.split(b'\n') if content else [])
    expected = sorted(b'%d:%d' % (p, i) for p in range(PRODUCERS) for i in range(PER_PRODUCER))
    assert len(seen) == len(expected)  # nothing dequeued twice...
    assert sorted(seen) == expected    # ...and nothing lost
    s = SqliteStorage(path, 'mp')
    assert s.queue_size() == 0 and s.claimed_size() == 0
    s.close()


# ---------------------------------------------------------------------- schema v1 additions

def test_schema_has_recoveries_enqueued_at_and_owner(storage, db_path):
    conn = apsw.Connection(db_path)
    columns = lambda table: [r[1] for r in conn.execute('PRAGMA table_info(%s)' % table)]  # noqa
    assert 'recoveries' in columns('task')
    assert 'enqueued_at' in columns('dead_letter')
    assert columns('owner') == ['id', 'host', 'pid', 'started_at', 'heartbeat_at']
    conn.close()


def test_new_database_gets_incremental_auto_vacuum(storage, db_path):
    conn = apsw.Connection(db_path)
    assert pragma(conn, 'auto_vacuum') == 2  # INCREMENTAL, although the file is in WAL mode
    assert pragma(conn, 'journal_mode') == 'wal'
    conn.close()


def test_existing_database_keeps_its_auto_vacuum(db_path):
    conn = apsw.Connection(db_path)  # created elsewhere, without auto_vacuum
    conn.execute('PRAGMA journal_mode=WAL')
    conn.execute('CREATE TABLE task (x)')
    conn.execute('DROP TABLE task')
    conn.close()
    s = SqliteStorage(db_path, 'test')
    with s.transaction() as c:
        assert pragma(c, 'auto_vacuum') == 0
    s.enqueue(b'x')
    assert s.maintenance()['vacuumed_pages'] == 0  # no incremental vacuum possible: no error
    s.close()


def test_every_connection_sets_journal_size_limit(storage):
    seen = []

    def look():
        with storage.transaction() as conn:
            seen.append(pragma(conn, 'journal_size_limit'))

    look()
    t = threading.Thread(target=look)
    t.start()
    t.join()
    assert seen == [_schema.JOURNAL_SIZE_LIMIT] * 2


def test_maintenance_checkpoint_truncates_the_wal(storage, db_path):
    storage.enqueue_many((b'x' * 1000, 0) for _ in range(500))
    assert os.path.getsize(db_path + '-wal') > 0
    report = storage.maintenance()
    assert report['checkpoint'] == 'truncated'
    assert report['wal_frames'] == report['checkpointed_frames']
    assert os.path.getsize(db_path + '-wal') == 0
    assert storage.stats()['wal_size'] == 0
    assert storage.queue_size() == 500


def test_maintenance_skips_the_checkpoint_while_a_reader_holds_old_frames(storage, db_path):
    storage.enqueue(b'x')
    reader = apsw.Connection(db_path)
    reader.execute('BEGIN')
    reader.execute('SELECT count(*) FROM task').fetchall()  # a snapshot pins the WAL
    storage.enqueue(b'y')
    started = time.monotonic()
    report = storage.maintenance()
    assert report['checkpoint'] == 'busy'
    assert time.monotonic() - started < storage.timeout / 2  # no busy wait
    reader.execute('COMMIT')
    reader.close()
    assert storage.maintenance()['checkpoint'] == 'truncated'
    storage.enqueue(b'z')  # the connection's busy timeout is back: writes still work


def test_incremental_vacuum_frees_pages_after_a_big_purge(db_path):
    clock = [1000.0]
    s = SqliteStorage(db_path, 'test', clock=lambda: clock[0])
    with s.transaction():
        for i in range(2000):
            s.put_data('k%d' % i, os.urandom(2000), ttl=10)
    s.maintenance()
    before = s.stats()
    clock[0] += 20
    s.vacuum_pages = 100
    report = s.maintenance()  # purges 2000 keys, then returns at most 100 pages
    assert report['purged'] == 2000
    assert report['vacuumed_pages'] == 100
    after = s.stats()
    assert after['page_count'] == before['page_count'] - 100
    assert after['freelist_count'] > 0
    s.vacuum_pages = 10**6
    while s.maintenance()['vacuumed_pages']:
        pass
    final = s.stats()
    assert final['freelist_count'] == 0
    assert final['db_size'] < before['db_size'] / 4
    assert final['db_size'] == final['page_count'] * final['page_size']
    s.close()


def test_stats_reports_file_sizes(storage, db_path):
    storage.enqueue(b'x')
    stats = storage.stats()
    assert stats['page_size'] == pragma(apsw.Connection(db_path), 'page_size')
    assert stats['wal_size'] == os.path.getsize(db_path + '-wal') > 0
    assert stats['db_size'] == os.path.getsize(db_path)
    with storage.transaction():  # usable inside a transaction too
        assert storage.stats()['ready'] == 1


def test_full_vacuum_shrinks_the_file(db_path):
    s = SqliteStorage(db_path, 'test')
    s.enqueue_many((os.urandom(3000), 0) for _ in range(1000))
    s.flush_queue()
    s.maintenance()
    s.vacuum()
    s.maintenance()
    stats = s.stats()
    assert stats['freelist_count'] == 0 and stats['db_size'] < 200_000
    s.close()


# ---------------------------------------------------------------------- dead owners

def _claim_and_report(path, conn, count):
    s = SqliteStorage(path, 'test')
    s.heartbeat()
    claims = [s.dequeue() for _ in range(count)]
    conn.send((s.owner_id, [c.receipt for c in claims]))
    time.sleep(120)  # until killed


@pytest.mark.subprocess
@pytest.mark.skipif(not hasattr(os, 'kill'), reason='needs signals')
def test_claims_of_a_sigkilled_process_are_recovered_and_fenced(db_path):
    import signal
    s = SqliteStorage(db_path, 'test')
    s.enqueue_many([(b'm%d' % i, 0) for i in range(5)])
    ctx = multiprocessing.get_context('spawn')
    parent_end, child_end = ctx.Pipe()
    proc = ctx.Process(target=_claim_and_report, args=(db_path, child_end, 3), daemon=True)
    proc.start()
    try:
        assert parent_end.poll(60)
        owner, receipts = parent_end.recv()
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
        assert proc.exitcode == -signal.SIGKILL
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    assert s.claim_owners() == {owner: 3}
    info = {o.id: o for o in s.owners()}[owner]
    assert info.pid == proc.pid and info.heartbeat_at is not None
    assert s.release_owner(owner) == 3
    assert s.queue_size() == 5 and s.claimed_size() == 0
    assert owner not in {o.id for o in s.owners()}
    assert s.enqueued_items() == [b'm%d' % i for i in range(5)]  # FIFO position kept
    claims = [s.dequeue() for _ in range(5)]
    assert [(c.attempts, c.recoveries) for c in claims[:3]] == [(2, 1)] * 3
    assert [(c.attempts, c.recoveries) for c in claims[3:]] == [(1, 0)] * 2
    # the dead child's late acks (a receipt passed back before the kill) are fenced off
    assert all(s.ack(r) is False for r in receipts)
    assert s.claimed_size() == 5
    assert all(s.ack(c.receipt) for c in claims)
    s.close()


def test_vacuum_shrinks_the_file_and_leaves_no_wal_behind(db_path):
    s = SqliteStorage(db_path, name='q')
    try:
        s.enqueue_many([(b'x' * 2000, 0)] * 500)     # ~1 MB, in the WAL for now
        s.flush_queue()
        s.vacuum()
        stats = s.stats()
        assert stats['wal_size'] == 0                 # the WAL was checkpointed and truncated
        assert os.path.getsize(db_path) < 200_000     # and the deleted megabyte is not kept
    finally:
        s.close()


def test_enqueue_many_beyond_one_statement_keeps_every_message_in_order(storage):
    # enqueue_many writes many rows per INSERT statement and the rest one by one: 250 messages
    # span two full statements and a remainder.
    items = [(b'm%03d' % i, i % 3) for i in range(250)]
    assert storage.enqueue_many(items) == 250
    expected = sorted(items, key=lambda item: -item[1])  # priority first; stable: FIFO within
    assert storage.enqueued_items() == [data for data, _ in expected]


def test_enqueue_many_with_a_bad_item_writes_nothing(storage):
    items = [(b'ok', 0)] * 230 + [('not bytes', 0)] + [(b'ok', 0)] * 20
    with pytest.raises(TypeError):
        storage.enqueue_many(items)
    assert storage.queue_size() == 0


# ---------------------------------------------------------------------- rows written by others

#: Values the ``sqlite3`` shell or another program may store in a BLOB column.
FOREIGN_VALUES = {"'hello'": b'hello', '42': b'42', '1.5': b'1.5',
                  "CAST(x'ff41' AS TEXT)": b'\xffA'}


def test_columns_of_other_types_read_as_bytes(storage):
    """Every read of a message's data or a key's value returns bytes whatever type the row
    holds (TEXT that is not UTF-8 included): no claim, listing or read raises."""
    with storage.transaction() as conn:
        for sql in FOREIGN_VALUES:
            conn.execute("INSERT INTO task (queue, priority, body, enqueued_at) "
                         "VALUES ('test', 0, %s, 0)" % sql)
            conn.execute("INSERT INTO schedule (queue, ts, data) VALUES ('test', 1, %s)" % sql)
            conn.execute("INSERT INTO kv (queue, key, value) VALUES ('test', %s, %s)"
                         % ("'k' || " + sql, sql))
    expected = list(FOREIGN_VALUES.values())
    assert storage.enqueued_items() == expected
    assert storage.scheduled_items() == expected
    claims = storage.dequeue_many(2)                                 # autocommit claim
    with storage.transaction():
        claims += storage.dequeue_many(2)                            # claim in a transaction
    assert sorted(claim.data for claim in claims) == sorted(expected)
    assert sorted(item.data for item in storage.claimed_items()) == sorted(expected)
    assert all(storage.bury(claim.receipt, 'poison') for claim in claims)
    assert sorted(letter.data for letter in storage.dead_letters()) == sorted(expected)
    assert storage.requeue_dead_letters() == len(expected)
    assert sorted(storage.enqueued_items()) == sorted(expected)
    assert storage.read_schedule(2) == expected
    assert storage.peek_data('khello') == b'hello' and storage.pop_data('k42') == b'42'
    assert storage.peek_many(['k1.5']) == {'k1.5': b'1.5'}
