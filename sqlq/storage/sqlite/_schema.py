"""The SQLite schema of a sqlq database and its migrations.

A sqlq database is recognised by ``PRAGMA application_id`` = :data:`APPLICATION_ID` ('SQLQ')
and versioned by ``PRAGMA user_version``. Opening a database whose ``user_version`` is below
:data:`SCHEMA_VERSION` runs ``MIGRATIONS[v]`` for each ``v`` from the stored version up to
``SCHEMA_VERSION - 1`` in one ``BEGIN IMMEDIATE`` transaction (so concurrent openers serialise
and the second one finds the work done). A brand-new file is version 0: ``MIGRATIONS[0]``
creates everything. To change the schema: add ``MIGRATIONS[SCHEMA_VERSION]`` and bump
``SCHEMA_VERSION``; never edit a released migration.

Tables (every row carries the name of the queue it belongs to; one file holds many queues):

``task``
    Messages of the ready queue (the message in ``body``, called ``data`` before version 5;
    a long one in ``task_payload``). ``owner IS NULL`` means ready; otherwise the row is claimed
    by ``owner`` (a consumer process's owner id) since ``claimed_at``. ``attempts`` counts
    claims and, together with ``id`` and ``owner``, fences receipts. A released row keeps its
    ``id`` and so its FIFO position. ``recoveries`` counts how often the message was taken back
    from a dead owner (``release_owner``); ``enqueued_at`` is copied to the dead letter.
    ``started`` (version 3) is 1 while the claim is recorded as started (``mark_started``, or
    a claim of one): ``release_owner`` then also raises ``deaths``, the count the queue
    quarantines by; a claim that waited unstarted in a worker's batch goes back uncharged.
``schedule``
    Messages waiting for their ``ts`` (unix epoch seconds); moved to ``task`` by the scheduler.
``kv``
    Key/value data: task results (``is_result=1``), revoke flags, locks and counters.
    ``expires_at`` (NULL = never) makes a key invisible once passed.
``dead_letter``
    Messages that could not be processed: undecodable or tampered bytes, unknown task names,
    tasks quarantined after too many attempts, messages rejected at enqueue time. It exists so
    that nothing is ever lost silently: an operator can inspect, requeue or purge them.
    ``enqueued_at`` is the buried task row's (NULL for a message that was never enqueued).
``owner``
    One row per live claiming process (its owner id: ``host:pid:random:scope``), upserted by its
    ``heartbeat``. It exists for dead-owner detection: a consumer whose ``heartbeat_at`` is
    stale (or whose pid is gone on this host) holds claims nobody will settle, and
    ``release_owner`` returns them to the ready queue; and so that the inspection CLI can show
    running tasks with the host, pid and start time of the process running them. Owners are
    per process and file-wide (no ``queue`` column): one process may serve several queues.
``idle_worker`` (version 2)
    One row per worker thread that found its queue empty and waits for work: its ``token``
    (new for each registration), ``owner``, and the path of its wake-up ``socket``. A producer
    that enqueues one message while the queue has no ready message takes (deletes) one row in
    its transaction and inserts the message already claimed for that worker's owner, with
    ``task.assignee`` set to the token; after its commit it sends the message over the socket,
    so the worker starts it without a claim of its own. ``flag_lo``/``flag_hi`` is the key
    range whose existence the producer reports with it (the worker's revoke flags).
    ``task.assignee`` is cleared when the worker takes the message from the table instead
    (the datagram never came) and by every release: a ready row never has one.
``key`` of ``task``, ``schedule`` and ``dead_letter`` (version 4)
    The message's key (the task layer's task id), indexed: a task's status is one index
    look-up per table, whatever the size of the queue. A buried task's key goes with it to the
    dead letter, and back when it is requeued.
``history`` (version 4)
    One row per run of a task that ended (succeeded, failed, retried, or skipped: revoked,
    expired, canceled), written in the transaction that releases the run's claim: its key and
    name, outcome, end time, duration, error summary, and from the claim its enqueue and claim
    times, attempts and owner. Rows go in the order they commit (``id``), which is also their
    order in time, so pruning by age walks the rowid; ``history_key`` finds a task's runs.
``run_stats`` (version 4)
    Sums of the runs per (queue, minute, task name, outcome): count, seconds, and counts per
    duration bucket (``b0``...; bounds in ``sqlq.storage.types.DURATION_BUCKETS``), upserted
    with the history rows of the same commit. Pruning folds old minutes into the row of minute
    0 (all-time sums), so totals survive it.
``task_payload`` (version 5)
    The bytes of a ``task`` row's message longer than :data:`INLINE_MAX` bytes, keyed by the
    task row's ``id``; that row's own message column, ``body`` (``data`` before version 5), is
    then the empty blob. A claim, a release or an ack rewrites only the small task row:
    SQLite rewrites a whole record on UPDATE, overflow pages included, so a 1 MB message kept
    inline cost a second megabyte of WAL at its claim. Smaller messages stay inline (one row
    per message: the cheapest enqueue and claim). Readers take ``task_payload.data`` where
    ``task.body`` is the empty blob (an empty message has no payload row and reads as empty);
    the trigger ``task_payload_gone`` deletes a task's payload row with it, whatever statement
    deletes the task. The column is renamed so that an older sqlq still running on the file
    when it is upgraded fails its statements on ``task`` (no such column) instead of reading a
    long message as empty and burying it: nothing is lost while it is restarted.
Task row ids (version 6)
    Each priority takes its ids from a band of its own (:func:`id_band`), so that the rows of
    one priority stay together. No table changes; the version keeps an older sqlq from opening
    the file (its rows would go after every band). One still running when the file is upgraded
    keeps working, but its tasks wait behind the newer rows of their priority: stop older
    producers before upgrading.

Opening: :func:`check_identity` refuses foreign or newer databases before anything writes to
the file, then :func:`migrate` brings an older one up to date.

Pragmas: a new file gets ``auto_vacuum=INCREMENTAL`` (set by the opener *before* the switch to
WAL: it only takes effect on an empty file, before the first page is written), so that
``maintenance`` can return free pages to the file system in bounded steps
(``incremental_vacuum(N)``) instead of a full ``VACUUM``. Every connection sets
``journal_size_limit`` so that the WAL file is truncated back after checkpoints.
"""
from __future__ import annotations

from typing import Any, Callable

from sqlq.exceptions import StorageError

#: Current schema version (stored in ``PRAGMA user_version``).
SCHEMA_VERSION = 6

#: ``PRAGMA application_id`` of a sqlq database: b'SQLQ' as a big-endian 32-bit integer.
APPLICATION_ID = 0x53514C51

#: ``PRAGMA journal_size_limit`` of every connection (bytes): the WAL is truncated back to this
#: size after a checkpoint that reset it.
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024

SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS task (
    id          INTEGER PRIMARY KEY,
    queue       TEXT    NOT NULL,
    priority    INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    enqueued_at REAL    NOT NULL,
    owner       TEXT,
    claimed_at  REAL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    recoveries  INTEGER NOT NULL DEFAULT 0
);
-- The dequeue hot path: next ready message of a queue, highest priority first, then FIFO.
CREATE INDEX IF NOT EXISTS task_ready ON task (queue, priority DESC, id) WHERE owner IS NULL;
-- Claimed (running) messages, by owner (lease recovery, claimed_items).
CREATE INDEX IF NOT EXISTS task_claimed ON task (owner, claimed_at) WHERE owner IS NOT NULL;

CREATE TABLE IF NOT EXISTS schedule (
    id    INTEGER PRIMARY KEY,
    queue TEXT NOT NULL,
    ts    REAL NOT NULL,
    data  BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS schedule_due ON schedule (queue, ts, id);

CREATE TABLE IF NOT EXISTS kv (
    queue      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      BLOB    NOT NULL,
    is_result  INTEGER NOT NULL DEFAULT 0,
    expires_at REAL,
    PRIMARY KEY (queue, key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS dead_letter (
    id          INTEGER PRIMARY KEY,
    queue       TEXT    NOT NULL,
    data        BLOB    NOT NULL,
    reason      TEXT    NOT NULL,
    failed_at   REAL    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    enqueued_at REAL
);
CREATE INDEX IF NOT EXISTS dead_letter_queue ON dead_letter (queue, id);

CREATE TABLE IF NOT EXISTS owner (
    id           TEXT PRIMARY KEY,
    host         TEXT,
    pid          INTEGER,
    started_at   REAL,
    heartbeat_at REAL
);
"""


def _create_v1(conn: Any) -> None:
    """Version 0 (empty file) -> 1: create every table and index."""
    conn.execute(SCHEMA_V1)


SCHEMA_V2 = """
ALTER TABLE task ADD COLUMN assignee TEXT;
CREATE TABLE IF NOT EXISTS idle_worker (
    token   TEXT PRIMARY KEY,
    queue   TEXT NOT NULL,
    owner   TEXT NOT NULL,
    socket  TEXT NOT NULL,
    since   REAL NOT NULL,
    flag_lo TEXT,
    flag_hi TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idle_worker_queue ON idle_worker (queue, since);
CREATE INDEX IF NOT EXISTS idle_worker_owner ON idle_worker (owner);
"""


def _add_hand_off(conn: Any) -> None:
    """1 -> 2: idle worker registry and ``task.assignee`` (hand-off of single enqueues)."""
    conn.execute(SCHEMA_V2)


SCHEMA_V3 = """
ALTER TABLE task ADD COLUMN started INTEGER NOT NULL DEFAULT 0;
ALTER TABLE task ADD COLUMN deaths INTEGER NOT NULL DEFAULT 0;
"""


def _add_start_marks(conn: Any) -> None:
    """2 -> 3: ``task.started`` and ``task.deaths`` (only a started claim is charged a death;
    existing rows start with none: their ``recoveries`` counted claims that never ran)."""
    conn.execute(SCHEMA_V3)


#: Duration buckets of ``run_stats`` (``b0`` ... ``b19``): sqlq.storage.types.DURATION_BUCKETS
#: has 19 bounds, plus one bucket for longer runs. (A constant of this version of the schema:
#: a later change of the bounds needs a migration.)
STATS_BUCKETS = 20

SCHEMA_V4 = """
ALTER TABLE task ADD COLUMN key TEXT;
ALTER TABLE schedule ADD COLUMN key TEXT;
ALTER TABLE dead_letter ADD COLUMN key TEXT;
CREATE INDEX IF NOT EXISTS task_key ON task (key) WHERE key IS NOT NULL;
CREATE INDEX IF NOT EXISTS schedule_key ON schedule (key) WHERE key IS NOT NULL;
CREATE INDEX IF NOT EXISTS dead_letter_key ON dead_letter (key) WHERE key IS NOT NULL;
CREATE TABLE IF NOT EXISTS history (
    id          INTEGER PRIMARY KEY,
    queue       TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    finished_at REAL    NOT NULL,
    duration    REAL,
    error       TEXT,
    enqueued_at REAL,
    claimed_at  REAL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    owner       TEXT
);
CREATE INDEX IF NOT EXISTS history_key ON history (key);
CREATE TABLE IF NOT EXISTS run_stats (
    queue   TEXT    NOT NULL,
    minute  REAL    NOT NULL,
    name    TEXT    NOT NULL,
    outcome TEXT    NOT NULL,
    count   INTEGER NOT NULL,
    seconds REAL    NOT NULL,
    %s,
    PRIMARY KEY (queue, minute, name, outcome)
) WITHOUT ROWID;
""" % ',\n    '.join('b%d INTEGER NOT NULL DEFAULT 0' % i for i in range(STATS_BUCKETS))


def _add_tracking(conn: Any) -> None:
    """3 -> 4: message keys (indexed), the history of finished runs and its per-minute sums."""
    conn.execute(SCHEMA_V4)


#: Task row ids come in bands, one per priority: the rows of one priority stay together in
#: ``task``, so that a batch claim of the highest priority and its acks rewrite a few pages of
#: the table even when priorities are interleaved in the queue (bench/wal_pages.py
#: --priorities 10: 6.9 kB of WAL per drained task with ids in enqueue order, 3.3 kB in
#: bands). Priority 0, the default, keeps the ids below ID_BAND (continuing the rows of
#: earlier versions, and as small as ever); every other priority from -ID_BANDS/2 to
#: ID_BANDS/2 - 1 has ID_BAND ids from ID_BASE on (priorities beyond share the outermost
#: bands: their order comes from the ready index, as always). No table changes (a rowid is a
#: rowid); schema version 6 keeps older versions from opening the file, since their rows
#: would take SQLite's own choice (the largest id plus one: unique, but behind every band).
ID_BAND = 2 ** 32
ID_BANDS = 2 ** 10
ID_BASE = 2 ** 42


def id_band(priority: int) -> int:
    """The first id of the band that task rows of ``priority`` take their ids from (the same
    as the SQL of ``_sql.NEXT_ID``)."""
    if priority == 0:
        return 0
    low = -ID_BANDS // 2
    return ID_BASE + (min(max(priority, low), ID_BANDS // 2 - 1) - low) * ID_BAND


#: Messages longer than this (bytes) keep their bytes in ``task_payload`` (version 5): the
#: row of ``task`` a claim rewrites stays small. At 512 bytes a page of task rows holds at
#: least 7 (a batch claim rewrites few pages); below it, the extra insert of a payload row
#: would cost more than the bytes it saves a claim.
INLINE_MAX = 512

SCHEMA_V5 = """
ALTER TABLE task RENAME COLUMN data TO body;
CREATE TABLE IF NOT EXISTS task_payload (
    id   INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS task_payload_gone AFTER DELETE ON task
WHEN old.body = x'' BEGIN
    DELETE FROM task_payload WHERE id = old.id;
END;
INSERT INTO task_payload (id, data)
    SELECT id, body FROM task WHERE typeof(body) = 'blob' AND length(body) > %d;
UPDATE task SET body = x'' WHERE typeof(body) = 'blob' AND length(body) > %d;
""" % (INLINE_MAX, INLINE_MAX)


def _add_task_payload(conn: Any) -> None:
    """4 -> 5: ``task_payload``: long messages move out of their task rows, so that a claim
    and an ack rewrite only a small row; ``task.data`` becomes ``task.body``."""
    conn.execute(SCHEMA_V5)


def _mark_id_bands(conn: Any) -> None:
    """5 -> 6: task row ids in bands, one per priority (see :func:`id_band`). No table
    changes: the version keeps an older sqlq, whose rows would take the largest id plus one
    (after every band, behind the newer rows of their priority), from opening the file."""


#: ``MIGRATIONS[n](conn)`` upgrades a version-``n`` database to ``n + 1``. It runs inside the
#: opener's IMMEDIATE transaction; it must not commit, and the caller sets ``user_version``.
MIGRATIONS: dict[int, Callable[[Any], None]] = {
    0: _create_v1,
    1: _add_hand_off,
    2: _add_start_marks,
    3: _add_tracking,
    4: _add_task_payload,
    5: _mark_id_bands,
}


#: Schema objects of the file (tables, indexes, views, triggers), but SQLite's own.
_LIST_OBJECTS = ("SELECT DISTINCT tbl_name FROM sqlite_schema "
                 "WHERE name NOT LIKE 'sqlite!_%' ESCAPE '!'")


def check_identity(conn: Any, path: str) -> int:
    """Refuse foreign or newer databases; return the stored schema version. ``path`` names
    the file in errors."""
    if not conn.in_transaction:  # one snapshot: another opener may be migrating right now
        conn.execute('BEGIN')
        try:
            return check_identity(conn, path)
        finally:
            if conn.in_transaction:
                conn.execute('COMMIT')
    app_id = conn.execute('PRAGMA application_id').fetchall()[0][0]
    version: int = conn.execute('PRAGMA user_version').fetchall()[0][0]
    if app_id not in (0, APPLICATION_ID):
        raise StorageError('%r is a SQLite database of another application '
                           '(application_id %#x), not a sqlq database' % (path, app_id))
    if app_id == 0:
        # sqlq sets application_id in the transaction that creates its tables: a file without
        # it must be empty. (Whatever its tables are called: one named 'task' is no sqlq's.)
        tables = {row[0] for row in conn.execute(_LIST_OBJECTS)}
        if version != 0 or tables:
            raise StorageError('%r is a SQLite database of another application (tables: '
                               '%s; no sqlq application_id), not a sqlq database: nothing '
                               'was written to it. Give the queue a file of its own.'
                               % (path, ', '.join(sorted(tables)) or 'none'))
    if version > SCHEMA_VERSION:
        raise StorageError('%r was created by a newer sqlq (schema version %d; this sqlq '
                           'supports up to %d): upgrade sqlq'
                           % (path, version, SCHEMA_VERSION))
    return version


def migrate(conn: Any, path: str) -> None:
    """Bring the database up to :data:`SCHEMA_VERSION` (see the module docstring)."""
    if check_identity(conn, path) >= SCHEMA_VERSION:
        return
    conn.execute('BEGIN IMMEDIATE')
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        version = check_identity(conn, path)
        for v in range(version, SCHEMA_VERSION):
            try:
                step = MIGRATIONS[v]
            except KeyError:
                raise StorageError('no migration of sqlq database %r from schema version '
                                   '%d' % (path, v)) from None
            step(conn)
        conn.execute('PRAGMA application_id=%d' % APPLICATION_ID)
        conn.execute('PRAGMA user_version=%d' % SCHEMA_VERSION)
        conn.execute('COMMIT')
    except BaseException:
        if conn.in_transaction:
            conn.execute('ROLLBACK')
        raise
