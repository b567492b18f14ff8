"""A damaged database file fails fast and loudly (issue 14, item 7).

4 KiB of garbage written over a page in the middle of a populated file: SQLite reports
SQLITE_CORRUPT when a statement reads that page. Before, the consumer logged "storage
unavailable, retrying with back-off" and stayed up for ever, running the tasks it could still
reach; now the storage raises :class:`~sqlq.StorageCorruptError` (a StorageError) naming the
file and ``PRAGMA integrity_check``, and a consumer stops claiming, logs that one error and
exits with status 74 (EX_IOERR). Garbage over the header (page 1) is SQLITE_NOTADB: the same
exception, when the file is opened.
"""
from __future__ import annotations

import random
import re

import apsw
import pytest

from sqlq import SqliteQueue, StorageCorruptError, StorageError
from sqlq.worker import EXIT_STORAGE_CORRUPT
from tests.apps import bulk_app

TASKS = 3000
PAGE = 4096
WAIT = 20  # seconds: bound of every wait in this file


def fill(queue, tasks=TASKS):
    """``tasks`` tasks, the WAL folded into the database, the queue closed."""
    for start in range(0, tasks, 1000):
        queue.app.noop.map(range(start, min(tasks, start + 1000)))
    assert queue.pending_count() == tasks
    queue.storage.maintenance()  # checkpoint + truncate: everything is in the main file
    queue.close()


def damage(path, page):
    """Write one page of (reproducible) garbage over page number ``page`` (0-based)."""
    garbage = random.Random(14).randbytes(PAGE)
    with open(path, 'r+b') as f:
        f.seek(page * PAGE)
        f.write(garbage)


def middle_page(path):
    """The middle leaf page of ``task`` (0-based): every drain reads it. (The middle page of
    the file is as often a leaf of ``task_key``, which no claim reads: its keys' random bits
    decide the layout.)"""
    conn = apsw.Connection(path)
    try:
        pages = [row[0] for row in conn.execute(
            "SELECT pageno FROM dbstat WHERE name = 'task' AND pagetype = 'leaf' "
            "ORDER BY pageno")]
    finally:
        conn.close()
    return pages[len(pages) // 2] - 1  # dbstat numbers pages from 1


def error_lines(log):
    return [line for line in log.splitlines() if re.search(r'\b(ERROR|CRITICAL)\b', line)]


# ------------------------------------------------------------------------------ the consumer
@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize('kind', ['thread', 'process'])
def test_a_consumer_on_a_damaged_file_stops_with_one_clear_error(start_harness, kind):
    h = start_harness(bulk_app)
    fill(h.queue)
    damage(h.db, middle_page(h.db))
    consumer = h.start('-w', '2', '-k', kind, ready=False)
    status = consumer.wait_exit(WAIT)
    log = consumer.log()
    assert status == EXIT_STORAGE_CORRUPT, consumer.describe()
    errors = error_lines(log)
    assert len(errors) == 1, consumer.describe()
    assert h.db in errors[0] and 'PRAGMA integrity_check' in errors[0], errors[0]
    assert 'Traceback' not in log and 'Traceback' not in consumer.output(), consumer.describe()


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_consumer_on_a_file_with_a_damaged_header_exits_with_one_line(start_harness):
    h = start_harness(bulk_app)
    fill(h.queue, tasks=100)
    damage(h.db, 0)
    consumer = h.start(ready=False)  # the app's queue cannot even be opened
    assert consumer.wait_exit(WAIT) == EXIT_STORAGE_CORRUPT, consumer.describe()
    output = consumer.output()
    assert output.count('\n') == 1 and h.db in output and 'not a SQLite database' in output, \
        output
    assert 'Traceback' not in output


# ------------------------------------------------------------------------------ embedded use
@pytest.fixture
def damaged_queue(tmp_path):
    """A queue on a populated file with a damaged page in the middle (``bulk.noop`` tasks)."""
    path = str(tmp_path / 'queue.db')
    fill(bulk_app.build(path))
    damage(path, middle_page(path))
    queue = bulk_app.build(path)
    yield queue
    queue.close()


def test_reading_a_damaged_page_raises_storage_corrupt_error(damaged_queue):
    storage = damaged_queue.storage
    with pytest.raises(StorageCorruptError) as info:
        for _ in range(TASKS):
            claims = storage.dequeue_many(64)
            assert claims, 'drained without reaching the damaged page'
            storage.release_unstarted([])  # keep them claimed: every claim reads on
    error = info.value
    assert isinstance(error, StorageError)
    assert storage.filename in str(error) and 'PRAGMA integrity_check' in str(error)


def test_an_embedded_consumer_stops_and_reports_the_error(damaged_queue, caplog):
    consumer = damaged_queue.create_consumer(workers=2, worker_type='thread')
    consumer.start()
    try:
        assert consumer.wait(WAIT), 'the consumer kept running on a damaged file'
    finally:
        consumer.stop(graceful=False, timeout=WAIT)
    assert isinstance(consumer.error, StorageCorruptError)
    errors = [r for r in caplog.records if r.levelname in ('ERROR', 'CRITICAL')]
    assert len(errors) == 1 and 'PRAGMA integrity_check' in errors[0].getMessage()


def test_a_damaged_header_is_refused_when_opening(tmp_path):
    path = str(tmp_path / 'queue.db')
    fill(bulk_app.build(path), tasks=100)
    damage(path, 0)
    with pytest.raises(StorageCorruptError) as info:
        SqliteQueue(path, name='bulk').pending_count()
    assert path in str(info.value) and 'not a SQLite database' in str(info.value)
