"""Task row ids in bands, one per priority (``_schema.id_band``): the rows of one priority
stay together in ``task``, so that claiming the highest priority of a queue whose priorities
are interleaved rewrites a few pages, not one page per claimed task. The order of the ready
queue (highest priority first, then FIFO) is the same whatever path enqueued the rows and
whatever rows an earlier version left in the file."""
from __future__ import annotations

import os

import apsw
import pytest

from sqlq.storage.sqlite import SqliteStorage, _schema, _sql

LONG = b'L' * (_schema.INLINE_MAX + 1)


@pytest.fixture
def s(db_path: str):
    storage = SqliteStorage(db_path, 'test', timeout=10)
    yield storage
    storage.close()


def drain(s: SqliteStorage) -> list[bytes]:
    """Every ready message, in the order a worker runs them (a batch claim returns its
    messages in no particular order: a worker runs them by priority, then ``seq``)."""
    taken = []
    while True:
        claims = s.dequeue_many(7)
        if not claims:
            return taken
        taken.extend(c.data for c in sorted(claims, key=lambda c: (-c.priority, c.seq)))
        for claim in claims:
            assert s.ack(claim.receipt)


def rows(s: SqliteStorage) -> list[tuple[int, int]]:
    return [(row[0], row[1]) for row in
            s._conn().execute('SELECT id, priority FROM task ORDER BY id')]


def test_the_rows_of_each_priority_are_stored_together_in_enqueue_order(s):
    expected: dict[int, list[bytes]] = {}

    def message(priority: int) -> bytes:
        data = b'%d-%d' % (priority, len(expected.setdefault(priority, [])))
        expected[priority].append(data)
        return data

    for i in range(300):  # interleaved, as one producer per priority would
        s.enqueue(message(i % 3 * 4), i % 3 * 4)
    s.enqueue_many([(message(p), p) for p in [8] * 150 + [4, 0, 8] * 40])  # chunks and rest
    last = [(message(8), 8), (LONG, 8)]
    expected[8].append(LONG)
    s.enqueue_many(last + [(message(4), 4)])  # row by row (a long message)
    by_priority: dict[int, list[int]] = {}
    for row_id, priority in rows(s):
        by_priority.setdefault(priority, []).append(row_id)
    for priority, ids in by_priority.items():
        assert ids == list(range(ids[0], ids[0] + len(ids))), priority  # one contiguous run
        start = _schema.id_band(priority)
        assert start < ids[0] and ids[-1] < start + _schema.ID_BAND
    assert by_priority[0][0] == 1  # the default priority keeps small ids
    assert drain(s) == expected[8] + expected[4] + expected[0]


def test_a_claim_of_the_top_priority_in_an_interleaved_queue_rewrites_few_pages(s):
    """Sizes, not times: with the WAL never checkpointed, its growth is what a commit wrote.
    With ids in enqueue order the 64 claimed rows lie on a leaf of ``task`` in every ten
    (the claim wrote 20 pages); in bands, on two (7 pages, with the indexes')."""
    s._set_autocheckpoint(0)
    page = s._conn().execute('PRAGMA page_size').fetchall()[0][0]
    for start in range(0, 3000, 500):
        s.enqueue_many([(b'm' * 40, i % 10) for i in range(start, start + 500)])
    s.dequeue_many(1)  # the claim statements are prepared; the WAL exists
    before = os.path.getsize(s.filename + '-wal')
    claims = s.dequeue_many(64)
    assert {c.priority for c in claims} == {9}
    frames = (os.path.getsize(s.filename + '-wal') - before) // (page + 24)
    assert frames <= 12, frames


def test_rows_an_earlier_version_wrote_come_first_in_their_priority(s, db_path):
    s.enqueue(b'warm-up')  # the schema exists
    assert drain(s) == [b'warm-up']
    conn = apsw.Connection(db_path)
    try:  # as sqlq wrote them before the bands: SQLite's ids, whatever the priority
        for i, priority in enumerate([3, 0, 3, -2]):
            conn.execute("INSERT INTO task (queue, priority, body, enqueued_at) "
                         "VALUES ('test', ?, ?, 0)", (priority, b'old-%d' % i))
    finally:
        conn.close()
    for priority in (3, 0, -2, 3):
        s.enqueue(b'new-%d' % priority, priority)
    s.enqueue_many([(b'batch-3', 3), (b'batch-0', 0)])
    assert drain(s) == [b'old-0', b'old-2', b'new-3', b'new-3', b'batch-3',
                        b'old-1', b'new-0', b'batch-0', b'old-3', b'new--2']


def test_a_full_band_falls_back_to_sqlites_ids_and_keeps_the_order(s, db_path):
    s.enqueue(b'first', 7)
    top = _schema.id_band(7) + _schema.ID_BAND - 1
    s._conn().execute("INSERT INTO task (id, queue, priority, body, enqueued_at) "
                      "VALUES (?, 'test', 7, 'last in its band', 0)", (top,))
    s.enqueue(b'single', 7)
    s.enqueue_many([(b'batch-a', 7), (b'other', 6), (b'batch-b', 7)])
    ids = [row_id for row_id, _ in rows(s)]
    assert len(ids) == len(set(ids)) == 6
    assert drain(s) == [b'first', b'last in its band', b'single', b'batch-a', b'batch-b',
                        b'other']


@pytest.mark.parametrize('priority', [0, 1, -1, 7, 511, -512, 512, -513, 10 ** 12, -10 ** 12])
def test_the_sql_and_python_forms_of_a_band_agree(s, priority):
    s.enqueue(b'one', priority)
    s.enqueue_many([(b'two', priority), (b'three', priority)])
    start = _schema.id_band(priority)
    assert [row_id for row_id, _ in rows(s)] == [start + 1, start + 2, start + 3]
    with s._tx() as conn:
        assert _sql.band_ids(conn, [priority, priority]) == [start + 4, start + 5]


def test_priorities_beyond_the_bands_share_the_outermost_ones_in_priority_order(s):
    for priority in (600, 10 ** 9, 512, -600, -10 ** 9, -513):
        s.enqueue(b'p%d' % priority, priority)
    assert drain(s) == [b'p1000000000', b'p600', b'p512', b'p-513', b'p-600',
                        b'p-1000000000']


def test_priority_0_rows_stay_in_their_band_whichever_connection_saw_other_bands(db_path):
    """Priority 0 first takes SQLite's next rowid (the band's own while no other band holds
    rows) and moves the row into its band if another band does: two storages on one file,
    each finding out on its own, keep one band and one FIFO order."""
    a = SqliteStorage(db_path, 'test', timeout=10)
    b = SqliteStorage(db_path, 'test', timeout=10)
    try:
        a.enqueue(b'a0')
        b.enqueue(b'b5', 5)
        a.enqueue(b'a1')  # SQLite's choice lands beyond band 5's row: moved
        b.enqueue(b'b0')  # the same, on the other connection
        a.enqueue(b'a2')  # looked up in the band from now on
        with a.transaction():
            a.enqueue(b'a3')
        a.enqueue(LONG)
        zero = [row_id for row_id, priority in rows(a) if priority == 0]
        assert zero == [1, 2, 3, 4, 5, 6]
        assert drain(a) == [b'b5', b'a0', b'a1', b'b0', b'a2', b'a3', LONG]
    finally:
        a.close()
        b.close()
