"""Small bad inputs (issue 14, item 10): each one used to end in a traceback, a misleading
message, or nothing at all.

- a 100k-deep nested argument raised RecursionError (from the error message's own ``repr``)
  instead of SerializationError;
- ``sqlq consume app.queue -l missing_dir/c.log`` printed a traceback;
- ``-c nan`` and ``-s inf`` were accepted;
- a full disk at consumer start read "disk I/O error" (simulated with a 256 KiB tmpfs, which
  needs root: skipped without it);
- a database file deleted under a running consumer went unnoticed: now one warning.
"""
from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from sqlq import SerializationError, SqliteQueue, StorageError
from sqlq.cli import main
from sqlq.storage.sqlite import SqliteStorage, _guard
from tests._harness import DB_ENV
from tests._helpers import ROOT_DIR
from tests.apps import consumer_app

# --------------------------------------------------------------------------- serialization

def test_deeply_nested_argument_raises_serialization_error(tmp_path: Path) -> None:
    queue = SqliteQueue(str(tmp_path / 'q.db'))

    @queue.task()
    def job(x: object) -> None:
        pass

    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    try:
        with pytest.raises(SerializationError, match='RecursionError') as info:
            job(deep)
        assert len(str(info.value)) < 400  # the value is described, not printed whole
        assert queue.pending_count() == 0
        job(1)  # and the queue goes on
        assert queue.pending_count() == 1
    finally:
        queue.close()


# --------------------------------------------------------------------------- CLI arguments

def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT_DIR, **{DB_ENV: str(tmp_path / 'app.db')})
    return subprocess.run([sys.executable, '-m', 'sqlq'] + list(args), cwd=str(tmp_path),
                          env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.subprocess
def test_log_file_in_a_missing_directory_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    done = run_cli(tmp_path, 'consume', consumer_app.__name__ + '.queue',
                   '-l', 'missing_dir/c.log')
    assert done.returncode == 2, done.stderr
    assert 'Traceback' not in done.stderr
    assert 'missing_dir/c.log' in done.stderr and 'No such file or directory' in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize('option', ['--health-check-interval', '--scheduler-interval',
                                    '--shutdown-timeout'])  # -c, -s, -t
@pytest.mark.parametrize('value', ['nan', 'inf', '-inf', '0'])
def test_intervals_must_be_finite_and_positive(option: str, value: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(['consume', 'app.queue', '%s=%s' % (option, value)])
    assert info.value.code == 2
    assert 'positive' in capsys.readouterr().err


# --------------------------------------------------------------------------- full disk

@contextlib.contextmanager
def small_tmpfs(directory: Path, size: str = '256k') -> Iterator[Path]:
    directory.mkdir()
    done = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=' + size, 'tmpfs',
                           str(directory)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip('cannot mount a tmpfs here (%s)' % done.stderr.strip())
    try:
        yield directory
    finally:
        subprocess.run(['umount', '-l', str(directory)], check=False)


def fill(directory: Path) -> None:
    with open(directory / 'filler', 'ab') as fh:
        with contextlib.suppress(OSError):
            while True:
                fh.write(b'\0' * 4096)
                fh.flush()
        with contextlib.suppress(OSError):
            fh.close()


def test_full_disk_at_start_says_so_and_names_the_file(tmp_path: Path) -> None:
    """Before: "sqlq database '...': IOError while opening it: disk I/O error"."""
    with small_tmpfs(tmp_path / 'small') as small:
        path = str(small / 'q.db')
        storage = SqliteStorage(path, 'test')
        storage.enqueue(b'x')
        storage.close()  # the last connection removes the -wal and -shm files
        fill(small)
        with pytest.raises(StorageError) as info:
            SqliteStorage(path, 'test')
        message = str(info.value)
        assert 'disk is full' in message and repr(path) in message, message
        assert 'disk I/O error' not in message.split(':')[0]


# --------------------------------------------------------------------------- deleted file

@pytest.mark.skipif(not _guard.SUPPORTED, reason='needs /proc/self/fd (Linux)')
@pytest.mark.parametrize('inotify', [True, False], ids=['inotify', 'fallback'])
def test_database_deleted_under_a_storage_logs_one_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
        inotify: bool) -> None:
    if not inotify:  # the fallback scans at least once a PERIOD: here at every write
        monkeypatch.setattr(_guard, 'FORCE_FALLBACK', True)
        monkeypatch.setattr(_guard, 'PERIOD', 0.0)
    path = str(tmp_path / 'q.db')
    storage = SqliteStorage(path, 'test')
    try:
        storage.enqueue(b'x')
        os.remove(path)
        with caplog.at_level(logging.WARNING, logger='sqlq.storage'):
            for _ in range(3):
                storage.enqueue(b'y')
                storage.heartbeat()
        lines = [r.getMessage() for r in caplog.records if 'was deleted' in r.getMessage()]
        assert len(lines) == 1, lines
        assert repr(os.path.realpath(path)) in lines[0]
    finally:
        storage.close()


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.skipif(not _guard.SUPPORTED, reason='needs /proc/self/fd (Linux)')
def test_database_deleted_under_a_running_consumer_logs_one_warning(start_harness) -> None:
    """The consumer writes at least its heartbeat every 2 s: its next write notices."""
    app = start_harness(consumer_app)
    consumer = app.start('-w', '1')
    os.remove(app.db)
    consumer.wait_log('was deleted or replaced', timeout=20)
    assert repr(os.path.realpath(app.db)) in consumer.log()
