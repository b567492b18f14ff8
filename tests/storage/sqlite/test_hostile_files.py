"""A file someone else prepared (issue 14, item 6).

With the default pickle serializer, whoever can write the queue's database (or its -wal/-shm
files, which SQLite replays into it) can run code in every consumer. In a shared sticky
directory another local user pre-created the path as a 0666 file and sqlq used it. Such files
are refused unless the application opts in (``trust_other_users=True``).

The tests run as root, which file permissions do not stop: "another user's file" is made with
``os.chown`` to uid 65534 and the check is on ownership and mode, not on EACCES.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import apsw
import pytest

from sqlq.exceptions import StorageError
from sqlq.storage.sqlite import SqliteStorage

OTHER_UID = 65534 if os.geteuid() != 65534 else 65533


def digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.mark.parametrize('suffix', ['', '-wal', '-shm'])
def test_file_writable_by_others_is_refused(db_path: str, suffix: str) -> None:
    SqliteStorage(db_path, 'test').close()
    target = db_path + suffix
    Path(target).touch()
    os.chmod(target, 0o666)
    with pytest.raises(StorageError, match='writable by other users') as info:
        SqliteStorage(db_path, 'test')
    assert repr(target) in str(info.value) and 'trust_other_users=True' in str(info.value)


@pytest.mark.parametrize('mode', [0o620, 0o602])
def test_file_writable_by_group_or_others_is_refused(db_path: str, mode: int) -> None:
    SqliteStorage(db_path, 'test').close()
    os.chmod(db_path, mode)
    with pytest.raises(StorageError, match='writable by other users'):
        SqliteStorage(db_path, 'test')


@pytest.mark.parametrize('suffix', ['', '-wal', '-shm'])
def test_file_owned_by_another_user_is_refused(db_path: str, suffix: str) -> None:
    """The pre-created file of the report, even with a private mode: its owner can chmod it
    and write whenever they like."""
    SqliteStorage(db_path, 'test').close()
    target = db_path + suffix
    Path(target).touch()
    os.chmod(target, 0o600)
    os.chown(target, OTHER_UID, -1)
    with pytest.raises(StorageError, match='owned by another user'):
        SqliteStorage(db_path, 'test')


def test_precreated_empty_file_of_another_user_is_refused(tmp_path: Path) -> None:
    """The attack as reported: an empty 0666 file planted at the path before the first use."""
    path = str(tmp_path / 'queue.db')
    Path(path).touch()
    os.chmod(path, 0o666)
    os.chown(path, OTHER_UID, -1)
    with pytest.raises(StorageError, match='owned by another user'):
        SqliteStorage(path, 'test')
    assert os.path.getsize(path) == 0  # nothing written to it


def test_opting_in_accepts_such_files(db_path: str) -> None:
    SqliteStorage(db_path, 'test').close()
    os.chmod(db_path, 0o664)
    os.chown(db_path, OTHER_UID, -1)
    storage = SqliteStorage(db_path, 'test', trust_other_users=True)
    try:
        storage.enqueue(b'x')
        assert storage.queue_size() == 1
    finally:
        storage.close()


def test_own_private_files_are_accepted(db_path: str) -> None:
    storage = SqliteStorage(db_path, 'test')
    storage.enqueue(b'x')
    storage.close()
    for suffix in ('', '-wal', '-shm'):
        if os.path.exists(db_path + suffix):
            assert os.stat(db_path + suffix).st_mode & 0o022 == 0
    SqliteStorage(db_path, 'test').close()  # reopening its own files


def test_foreign_database_with_a_task_table_is_refused_before_any_write(db_path: str) -> None:
    """Before: accepted (its only table is named like one of sqlq's), switched to WAL mode --
    written -- then failed in the migration with "no such column: queue"."""
    app = sqlite3.connect(db_path)
    app.execute('CREATE TABLE task (id INTEGER PRIMARY KEY, title TEXT)')
    app.execute("INSERT INTO task (title) VALUES ('buy milk')")
    app.commit()
    app.close()
    before = digest(db_path)
    with pytest.raises(StorageError, match='another application') as info:
        SqliteStorage(db_path, 'test')
    assert 'task' in str(info.value) and repr(db_path) in str(info.value)
    assert digest(db_path) == before
    assert not os.path.exists(db_path + '-wal')
    conn = apsw.Connection(db_path)
    assert conn.execute('PRAGMA journal_mode').fetchall()[0][0] == 'delete'
    conn.close()
