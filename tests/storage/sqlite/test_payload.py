"""Schema version 5: a message longer than ``_schema.INLINE_MAX`` keeps its bytes in
``task_payload``, apart from the task row that claims, releases and acks rewrite. Every reader
sees the same bytes; every delete of a task row takes its payload row with it; a claim of a
1 MB message writes a few pages, not the message again; a database of every earlier version
upgrades with its rows intact."""
from __future__ import annotations

import contextlib
import os

import apsw
import pytest

from sqlq.storage import Finished
from sqlq.storage.sqlite import SqliteStorage, _schema
from tests.storage._helpers import WAIT, go_idle

LONG = b'L' * 2000 + b'!'  # longer than INLINE_MAX: a payload row
HUGE = bytes(range(256)) * 4096  # 1 MiB
SHORT = b'short'


def payload_rows(s: SqliteStorage) -> list[int]:
    """Ids of the payload rows; asserts that each belongs to a task row with empty data and
    that every such row has one (no orphan, no loss)."""
    conn = s._conn()
    payloads = [row[0] for row in conn.execute('SELECT id FROM task_payload ORDER BY id')]
    spilled = [row[0] for row in conn.execute(
        "SELECT id FROM task WHERE body = x'' AND id IN (SELECT id FROM task_payload) "
        "ORDER BY id")]
    assert payloads == spilled
    return payloads


def inline_lengths(s: SqliteStorage) -> list[int]:
    return [row[0] for row in s._conn().execute('SELECT length(body) FROM task ORDER BY id')]


@pytest.fixture
def s(db_path):
    storage = SqliteStorage(db_path, 'test', timeout=10)
    yield storage
    storage.close()


def test_long_messages_go_to_payload_rows_and_read_back_everywhere(s):
    s.enqueue(SHORT, 0, 'k-short')
    s.enqueue(LONG, 0, 'k-long')
    s.enqueue(b'', 0, 'k-empty')  # an empty message: inline, and reads as empty
    assert inline_lengths(s) == [len(SHORT), 0, 0]
    assert len(payload_rows(s)) == 1
    assert s.enqueued_items() == [SHORT, LONG, b'']
    assert [loc.data for loc in s.locate('k-long')] == [LONG]
    claims = s.dequeue_many(10)
    assert [c.data for c in claims] == [SHORT, LONG, b'']
    assert [item.data for item in s.claimed_items()] == [SHORT, LONG, b'']
    assert [loc.data for loc in s.locate('k-long')] == [LONG]
    assert s.release(claims[1].receipt)
    [again] = s.dequeue_many(1)  # a claim inside no transaction: UPDATE ... RETURNING
    assert again.data == LONG
    with s.transaction():  # inside one: SELECT then UPDATE
        s.release(again.receipt)
        [again] = s.dequeue_many(1)
    assert again.data == LONG
    assert s.bury(again.receipt, 'why')
    assert [d.data for d in s.dead_letters()] == [LONG]
    assert payload_rows(s) == []


def test_enqueue_many_keeps_the_order_of_long_and_short_messages(s):
    items = [(SHORT, 0), (LONG, 0), (LONG + b'2', 0), (b'', 0), (HUGE, 0), (SHORT + b'2', 0)]
    assert s.enqueue_many(items, ['k%d' % i for i in range(len(items))]) == len(items)
    assert s.enqueued_items() == [data for data, _ in items]
    assert len(payload_rows(s)) == 3
    assert [c.data for c in s.dequeue_many(10)] == [data for data, _ in items]
    with s.transaction():  # an enqueue joining a transaction
        s.enqueue(LONG, 5)
        s.enqueue(SHORT, 5)
    assert [c.data for c in s.dequeue_many(10)] == [LONG, SHORT]
    assert len(payload_rows(s)) == 4


def test_no_payload_row_outlives_its_task(s):
    """Drains (ack, complete_many with and without history, finish), dead-lettering (bury,
    finish with a reason), requeue and purge of dead letters, recovery from a dead owner,
    flushes: the payload rows are always exactly those of the long task rows left."""
    def fill(n=4):
        s.enqueue_many([(LONG, 0), (SHORT, 0)] * n)

    fill()
    claims = s.dequeue_many(100)
    assert s.ack(claims[0].receipt)
    assert s.complete_many([(c.receipt, None, None, None) for c in claims[1:4]]) == [True] * 3
    history = [Finished('k', 'app.t', 'succeeded', 10.0, 0.1)] * 2
    assert s.complete_many([(c.receipt, 'r%d' % i, b'v', None)
                            for i, c in enumerate(claims[4:6])], history) == [True, True]
    assert s.finish(claims[6].receipt, history[0])
    assert s.finish(claims[7].receipt, history[0], reason='failed')
    assert payload_rows(s) == [] and s.dead_letter_count() == 1
    fill()
    for claim in s.dequeue_many(100):
        assert s.bury(claim.receipt, 'dead')
    assert payload_rows(s) == [] and s.dead_letter_count() == 9
    assert s.requeue_dead_letters() == 9  # the long ones get payload rows again
    assert len(payload_rows(s)) == 4
    assert sorted(c.data for c in s.dequeue_many(100)) == sorted([LONG] * 4 + [SHORT] * 5)
    assert s.release_owner(s.owner_id) == 9  # all back, payloads kept
    assert len(payload_rows(s)) == 4
    for claim in s.dequeue_many(100):
        assert s.bury(claim.receipt, 'dead')
    assert s.purge_dead_letters() == 9
    fill()
    s.flush_queue()
    assert payload_rows(s) == [] and s.queue_size() == 0
    fill()
    s.dequeue_many(3)
    s.flush_all()
    assert payload_rows(s) == []


def wal_size(s: SqliteStorage) -> int:
    return os.path.getsize(s.filename + '-wal')


def test_a_claim_and_an_ack_of_a_1mb_message_write_only_small_rows(s):
    """Sizes, not times: with the WAL never checkpointed, its growth is what a commit wrote.
    The enqueue writes the message once; the claim and the ack each a few pages (the task row's
    leaf, the index pages, the payload row's leaf and freed overflow pages' freelist trunk)."""
    s._set_autocheckpoint(0)
    page = s._conn().execute('PRAGMA page_size').fetchall()[0][0]
    s.enqueue(SHORT)  # the file and its WAL exist
    [warm] = s.dequeue_many(1)
    s.ack(warm.receipt)
    before = wal_size(s)
    s.enqueue(HUGE)
    enqueued = wal_size(s)
    assert len(HUGE) <= enqueued - before <= 1.1 * len(HUGE)
    [claim] = s.dequeue_many(1)
    claimed = wal_size(s)
    assert claim.data == HUGE
    assert claimed - enqueued <= 8 * (page + 24)  # was more than 1 MB with the row inline
    assert s.ack(claim.receipt)
    assert wal_size(s) - claimed <= 8 * (page + 24)
    assert payload_rows(s) == []


def test_a_long_message_is_handed_off_and_its_payload_row_goes_with_the_ack(producer,
                                                                              open_worker):
    worker = open_worker()
    data = b'h' * 10_000
    with contextlib.ExitStack() as stack:
        go_idle(worker, stack)
        producer.enqueue(data)
        assert worker.wait_for_change(WAIT, 'queue')
        [claim] = worker.dequeue_many(4)
        assert claim.data == data
        assert len(payload_rows(worker)) == 1
        assert worker.ack(claim.receipt)
        assert payload_rows(worker) == []


# ------------------------------------------------------------------ migration

def make_old_database(path: str, version: int) -> None:
    """A file as sqlq left it at schema ``version``, long and short messages inline (from
    version 5 on, moved out by the migration that made it): ready, claimed (from version 3 on,
    started and with two deaths), scheduled, dead."""
    conn = apsw.Connection(path)
    conn.execute('PRAGMA journal_mode=WAL')
    conn.execute('BEGIN IMMEDIATE')
    inline = min(version, 4)  # the last version whose task rows hold every message
    for step in range(inline):
        _schema.MIGRATIONS[step](conn)
    insert = ('INSERT INTO task (queue, priority, data, enqueued_at, owner, claimed_at, '
              'attempts) VALUES (?, ?, ?, ?, ?, ?, ?)')
    conn.execute(insert, ('sqlq', 0, SHORT, 1.0, None, None, 0))
    conn.execute(insert, ('sqlq', 0, LONG, 1.5, None, None, 0))
    conn.execute(insert, ('sqlq', 0, HUGE, 2.0, 'gone:1:x', 2.5, 1))
    conn.execute(insert, ('sqlq', 0, SHORT + b'-run', 2.0, 'gone:1:x', 2.5, 1))
    conn.execute(insert, ('sqlq', 0, b'', 3.0, None, None, 0))
    if version >= 3:
        conn.execute('UPDATE task SET started = 1, deaths = 2 WHERE owner IS NOT NULL')
    conn.execute("INSERT INTO schedule (queue, ts, data) VALUES ('sqlq', 5.0, ?)", (LONG,))
    conn.execute("INSERT INTO dead_letter (queue, data, reason, failed_at) "
                 "VALUES ('sqlq', ?, 'why', 3.0)", (HUGE,))
    for step in range(inline, version):
        _schema.MIGRATIONS[step](conn)
    conn.execute('PRAGMA application_id=%d' % _schema.APPLICATION_ID)
    conn.execute('PRAGMA user_version=%d' % version)
    conn.execute('COMMIT')
    conn.close()


def test_an_older_sqlq_running_on_the_file_fails_after_the_upgrade_instead_of_losing(tmp_path):
    """Its statements on ``task`` name ``data`` (``body`` since version 5): they fail when
    SQLite prepares them again for the new schema, instead of reading a long message as the
    empty blob its row now holds (and burying that)."""
    path = str(tmp_path / 'old.db')
    make_old_database(path, 4)
    older = apsw.Connection(path)
    older_claim = ('SELECT id, CAST(data AS BLOB) FROM task WHERE queue = ? AND owner IS NULL '
                   'ORDER BY priority DESC, id LIMIT 10')
    assert len(older.execute(older_claim, ('sqlq',)).fetchall()) == 3  # prepared, cached
    with contextlib.closing(SqliteStorage(path)) as s:
        assert s.enqueued_items() == [SHORT, LONG, b'']
        with pytest.raises(apsw.SQLError, match='no such column: data'):
            older.execute(older_claim, ('sqlq',)).fetchall()
        with pytest.raises(apsw.SQLError, match='data'):
            older.execute("INSERT INTO task (queue, priority, data, enqueued_at) "
                          "VALUES ('sqlq', 0, x'00', 0)")
        assert s.enqueued_items() == [SHORT, LONG, b'']
    older.close()


@pytest.mark.parametrize('version', range(1, _schema.SCHEMA_VERSION))
def test_upgrade_moves_long_messages_out_and_keeps_every_row(tmp_path, version):
    path = str(tmp_path / 'old.db')
    make_old_database(path, version)
    with contextlib.closing(SqliteStorage(path)) as s:
        version_now = s._conn().execute('PRAGMA user_version').fetchall()[0][0]
        assert version_now == _schema.SCHEMA_VERSION
        assert inline_lengths(s) == [len(SHORT), 0, 0, len(SHORT) + 4, 0]
        assert len(payload_rows(s)) == 2  # the two long ones; the empty message has none
        assert s.enqueued_items() == [SHORT, LONG, b'']
        items = s.claimed_items()
        assert [(i.data, i.owner, i.claimed_at, i.attempts) for i in items] == [
            (HUGE, 'gone:1:x', 2.5, 1), (SHORT + b'-run', 'gone:1:x', 2.5, 1)]
        assert s.scheduled_items() == [LONG]
        assert [d.data for d in s.dead_letters()] == [HUGE]
        assert s.release_owner('gone:1:x') == 2
        claims = s.dequeue_many(10)
        assert [c.data for c in claims] == [SHORT, LONG, HUGE, SHORT + b'-run', b'']
        huge = claims[2]
        assert (huge.recoveries, huge.deaths) == ((1, 3) if version >= 3 else (1, 0))
        for claim in claims:
            assert s.ack(claim.receipt)
        assert payload_rows(s) == []
        assert s.requeue_dead_letters() == 1
        assert [c.data for c in s.dequeue_many(1)] == [HUGE]
