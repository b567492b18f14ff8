"""Schema version 4 (message keys, the history, its sums), applied on top of version 3 (the
claims' start marks and deaths): a database of every earlier version is upgraded with its rows
intact -- start marks and deaths included --, and tracks tasks afterwards."""
from __future__ import annotations

import apsw
import pytest

from sqlq.storage import Finished
from sqlq.storage.sqlite import SqliteStorage, _schema


def make_old_database(path: str, version: int) -> None:
    """A file as sqlq left it at schema ``version`` (its released migrations, run in order),
    holding a ready, a claimed, a scheduled task and a dead letter. From version 3 on, the
    claim is recorded as started and its message has died twice before."""
    conn = apsw.Connection(path)
    conn.execute('PRAGMA journal_mode=WAL')
    conn.execute('BEGIN IMMEDIATE')
    inline = min(version, 4)  # the rows are written as a version-4 sqlq wrote them
    for step in range(inline):
        _schema.MIGRATIONS[step](conn)
    if version:
        conn.execute("INSERT INTO task (queue, priority, data, enqueued_at) "
                     "VALUES ('sqlq', 0, x'6f6c64', 1.0)")
        conn.execute("INSERT INTO task (queue, priority, data, enqueued_at, owner, claimed_at, "
                     "attempts) VALUES ('sqlq', 0, x'72756e6e696e67', 1.0, 'gone:1:x', 2.0, 1)")
        if version >= 3:
            conn.execute("UPDATE task SET started = 1, deaths = 2 WHERE owner IS NOT NULL")
        conn.execute("INSERT INTO schedule (queue, ts, data) VALUES ('sqlq', 5.0, x'6c61746572')")
        conn.execute("INSERT INTO dead_letter (queue, data, reason, failed_at) "
                     "VALUES ('sqlq', x'64656164', 'why', 3.0)")
    for step in range(inline, version):
        _schema.MIGRATIONS[step](conn)
    if version:
        conn.execute('PRAGMA application_id=%d' % _schema.APPLICATION_ID)
    conn.execute('PRAGMA user_version=%d' % version)
    conn.execute('COMMIT')
    conn.close()


@pytest.mark.parametrize('version', range(_schema.SCHEMA_VERSION))  # 0: a new file
def test_upgrade_from_every_earlier_version_keeps_rows_and_tracks(tmp_path, version):
    path = str(tmp_path / 'old.db')
    make_old_database(path, version)
    s = SqliteStorage(path)
    try:
        check = apsw.Connection(path)
        assert check.execute('PRAGMA user_version').fetchall()[0][0] == _schema.SCHEMA_VERSION
        tables = {row[0] for row in check.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table'")}
        assert {'history', 'run_stats'} <= tables
        check.close()
        if version:
            assert s.enqueued_items() == [b'old']
            assert [item.data for item in s.claimed_items()] == [b'running']
            assert s.scheduled_items() == [b'later']
            assert [d.data for d in s.dead_letters()] == [b'dead']
            assert s.dead_letters()[0].key is None  # rows from before keys have none
            # The start mark and deaths survive; a row from before version 3 has none.
            assert s.release_owner('gone:1:x') == 1
            back = next(c for c in s.dequeue_many(5) if c.data == b'running')
            assert (back.recoveries, back.deaths) == ((1, 3) if version >= 3 else (1, 0))
        s.enqueue(b'new', 0, 'task-1')
        assert [loc.state for loc in s.locate('task-1')] == ['ready']
        claim = next(c for c in s.dequeue_many(5) if c.data == b'new')
        assert s.finish(claim.receipt, Finished('task-1', 'app.t', 'succeeded', 10.0, 0.1))
        assert [e.key for e in s.history(key='task-1')] == ['task-1']
        assert s.history_stats()[0].runs == 1
    finally:
        s.close()


def test_the_migration_runs_once(tmp_path):
    path = str(tmp_path / 'v2.db')
    make_old_database(path, 2)
    SqliteStorage(path).close()
    s = SqliteStorage(path)  # a second opener finds the work done
    try:
        assert s.enqueued_items() == [b'old']
    finally:
        s.close()
