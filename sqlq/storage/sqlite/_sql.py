"""The statements SQLite storage runs on sqlq's tables, each a named constant.

Constant SQL text keeps apsw's statement cache warm. The tables are described in
:mod:`sqlq.storage.sqlite._schema` (which also holds the DDL and the identity pragmas);
transaction control is in :mod:`sqlq.storage.sqlite._transaction`, connection settings in
:mod:`sqlq.storage.sqlite._connection` and file upkeep pragmas in
:mod:`sqlq.storage.sqlite._upkeep`. Every statement is scoped to one queue (a ``queue = ?``
parameter) except those on ``owner`` and ``idle_worker`` rows, which are file-wide.
"""
from __future__ import annotations

import functools
from typing import Any, Iterable, Optional, Sequence

from sqlq.storage.sqlite._schema import ID_BAND, ID_BANDS, ID_BASE, INLINE_MAX, id_band

#: How every statement reads a message's ``data`` (``task.body``: TASK_DATA) and a key's
#: ``value``: as a BLOB whatever the row holds. The storage contract is bytes, but a row
#: written by other means (the ``sqlite3`` shell stores ``'hello'`` as TEXT, ``42`` as
#: INTEGER) would come back as str or int -- or not at all: TEXT that is not UTF-8 fails in
#: apsw's decoding -- and stop every claim behind it. Cast, it reads as the bytes SQLite
#: holds, which the task layer then fails to decode and buries with the reason. On a BLOB the
#: cast changes nothing.
BLOB_DATA = 'CAST(data AS BLOB)'
BLOB_VALUE = 'CAST(value AS BLOB)'
#: How every statement reads a ``task`` row's message (its column ``body``, as BLOB_DATA):
#: from ``task_payload`` where ``body`` is the empty blob (a long message, see
#: ``_schema.INLINE_MAX``; an empty message has no payload row; TEXT never equals a blob).
TASK_DATA = ("CASE WHEN body = x'' THEN coalesce((SELECT CAST(task_payload.data AS BLOB) "
             "FROM task_payload WHERE task_payload.id = task.id), x'') "
             'ELSE CAST(body AS BLOB) END')

# ------------------------------------------------------------------ ready queue

# A claim inside a transaction reads the head of the ready queue, then marks the same rows
# claimed (the write lock is held in between, so both see the same rows): there, cheaper than
# UPDATE ... RETURNING, which buffers its rows in a temporary table. Outside one, the single
# autocommit UPDATE ... RETURNING below saves the BEGIN and COMMIT statements and wins.
#
# Parameters of the claim statements: ?1 owner, ?2 now, ?3 queue, ?4 limit, ?5 whether the
# claims are recorded as started (a claim of one: its worker runs it at once; see
# Storage.mark_started), ?6 and ?7 the flag_prefix range. Their rows: id, data, attempts,
# recoveries, priority, deaths, started, and (the FLAGGED forms) whether a flag exists.
READY_HEAD = ('SELECT id, ' + TASK_DATA + ', attempts, recoveries, priority, deaths, ?5 '
              'FROM task WHERE queue = ?3 AND owner IS NULL ORDER BY priority DESC, id '
              'LIMIT ?4')
CLAIM_HEAD = (
    'UPDATE task SET owner = ?1, claimed_at = ?2, attempts = attempts + 1, started = ?5 '
    'WHERE id IN (SELECT id FROM task WHERE queue = ?3 AND owner IS NULL '
    'ORDER BY priority DESC, id LIMIT ?4)')
#: The claim outside a transaction: one autocommit statement (a third of the time of
#: BEGIN/SELECT/UPDATE/COMMIT on a cold CPU, which is what an idle worker woken for a task is).
#: RETURNING gives the updated attempts, in no particular order.
CLAIM_RETURNING = (CLAIM_HEAD + ' RETURNING id, ' + TASK_DATA
                   + ', attempts, recoveries, priority, deaths, started')
#: The storage's flag_prefix (FlagWatch): whether a key of the range [?6, ?7) exists (in the
#: claim's own statement: a separate read would cost more than the check).
FLAGGED = 'EXISTS (SELECT 1 FROM kv WHERE queue = ?3 AND key >= ?6 AND key < ?7)'
CLAIM_RETURNING_FLAGGED = CLAIM_RETURNING + ', ' + FLAGGED
READY_HEAD_FLAGGED = READY_HEAD.replace(' FROM task ', ', %s FROM task ' % FLAGGED)
#: claim_outranking: the claim of ready messages of a priority above ?8 (?6, ?7: the
#: flag_prefix range, NULL without one), with whether a flag exists.
CLAIM_OUTRANKING = (CLAIM_HEAD.replace('owner IS NULL ', 'owner IS NULL AND priority > ?8 ')
                    + ' RETURNING id, ' + TASK_DATA
                    + ', attempts, recoveries, priority, deaths, started, '
                    + 'CASE WHEN ?6 IS NULL THEN NULL ELSE ' + FLAGGED + ' END')
ANY_READY = 'SELECT 1 FROM task WHERE queue = ? AND owner IS NULL LIMIT 1'
#: A new task row's id (see _schema.id_band, which this computes from the priority ?2): the
#: largest id of its priority's band plus one, the band's first if it has none -- or NULL
#: (SQLite's own choice, unique but not in the band) should a band ever fill up.
_BAND = ('(CASE WHEN ?2 = 0 THEN 0 ELSE %d + (min(max(?2, %d), %d) - %d) * %d END)'
         % (ID_BASE, -ID_BANDS // 2, ID_BANDS // 2 - 1, -ID_BANDS // 2, ID_BAND))
NEXT_ID = ('nullif(coalesce((SELECT max(id) FROM task WHERE id >= {lo} AND id < {lo} + {band}), '
           '{lo}) + 1, {lo} + {band})'.format(lo=_BAND, band=ID_BAND))
#: The largest id in [?, ?): the batch form of NEXT_ID (see band_ids).
BAND_MAX = 'SELECT max(id) FROM task WHERE id >= ? AND id < ?'
#: Parameters: ?1 queue, ?2 priority, ?3 body, ?4 enqueued_at, ?5 key.
ENQUEUE = ('INSERT INTO task (id, queue, priority, body, enqueued_at, key) VALUES ('
           + NEXT_ID + ', ?1, ?2, ?3, ?4, ?5)')
#: The payload of the task row just inserted, for a message longer than _schema.INLINE_MAX
#: (the row's own body is then empty): parameters (id, data).
SPILL = 'INSERT INTO task_payload (id, data) VALUES (?, ?)'
#: enqueue_many inserts this many rows per statement.
INSERT_ROWS = 100
#: ENQUEUE with SQLite's choice of id (the largest plus one: ReadyQueue._insert_inline),
#: and the move of a row to another id (parameters: new id, id).
ENQUEUE_ANY_ID = 'INSERT INTO task (queue, priority, body, enqueued_at, key) VALUES (?, ?, ?, ?, ?)'
MOVE_ROW = 'UPDATE task SET id = ? WHERE id = ?'
#: ENQUEUE with the id given (band_ids), one row and INSERT_ROWS rows.
ENQUEUE_WITH_ID = ('INSERT INTO task (id, queue, priority, body, enqueued_at, key) '
                   'VALUES (?, ?, ?, ?, ?, ?)')
ENQUEUE_CHUNK = ('INSERT INTO task (id, queue, priority, body, enqueued_at, key) VALUES '
                 + ', '.join(['(?, ?, ?, ?, ?, ?)'] * INSERT_ROWS))
#: What every release of a claim sets: a ready row is unowned, handed to nobody and not
#: started.
UNCLAIMED = 'owner = NULL, claimed_at = NULL, assignee = NULL, started = 0'
#: Storage.mark_started: parameters (id, owner, attempts, queue).
MARK_STARTED = ('UPDATE task SET started = 1 WHERE id = ? AND owner = ? AND attempts = ? '
                'AND queue = ?')
#: Receipt-fenced statements: parameters (id, owner, attempts, queue) for the batch forms,
#: (id, queue, owner, attempts) for the single ones.
RELEASE_UNSTARTED = ('UPDATE task SET ' + UNCLAIMED + ' WHERE id = ? '
                     'AND owner = ? AND attempts = ? AND queue = ?')
ACK_RETURNING = ('DELETE FROM task WHERE id = ? AND owner = ? AND attempts = ? AND queue = ? '
                 'RETURNING id, owner, attempts')
#: The ack of a run recorded in the history: what its row takes from the message's.
ACK_RETURNING_TIMES = ('DELETE FROM task WHERE id = ? AND owner = ? AND attempts = ? '
                       'AND queue = ? RETURNING id, enqueued_at, claimed_at')
ACK = 'DELETE FROM task WHERE id = ? AND queue = ? AND owner = ? AND attempts = ?'
RELEASE = ('UPDATE task SET ' + UNCLAIMED + ' WHERE id = ? AND queue = ? '
           'AND owner = ? AND attempts = ?')
BURY = ('DELETE FROM task WHERE id = ? AND queue = ? AND owner = ? '
        'AND attempts = ? RETURNING ' + TASK_DATA + ', attempts, enqueued_at, key, claimed_at')
READY_COUNT = 'SELECT count(*) FROM task WHERE queue = ? AND owner IS NULL'
CLAIMED_COUNT = 'SELECT count(*) FROM task WHERE queue = ? AND owner IS NOT NULL'
READY_ITEMS = ('SELECT ' + TASK_DATA + ' FROM task WHERE queue = ? AND owner IS NULL '
               'ORDER BY priority DESC, id LIMIT ?')
CLAIMED_ITEMS = ('SELECT id, ' + TASK_DATA + ', owner, claimed_at, attempts, recoveries '
                 'FROM task '
                 'WHERE queue = ? AND owner IS NOT NULL ORDER BY claimed_at, id')
FLUSH_QUEUE = 'DELETE FROM task WHERE queue = ?'

# ------------------------------------------------------------------ hand-off

# Hand-off (see SqliteStorage.worker_session): a single enqueue that finds its queue with no
# ready message takes one idle worker's registration and inserts the message already claimed
# for it, in its own transaction; after the commit the message travels in the datagram that
# wakes the worker. The newest registration is taken (its thread ran last: warmest caches).
# The first statement is the cheapest test (an index probe); the rest only run on a hit.
IDLE_WORKER = ('SELECT token, owner, socket FROM idle_worker '
               'WHERE queue = ?1 AND token != ?2 ORDER BY since DESC LIMIT 1')
HAND_OFF_CHECK = ('SELECT EXISTS (SELECT 1 FROM task WHERE queue = ?1 AND owner IS NULL), '
                  'CASE WHEN ?2 IS NULL THEN NULL ELSE '
                  'EXISTS (SELECT 1 FROM kv WHERE queue = ?1 AND key >= ?2 AND key < ?3) END')
ENQUEUE_HANDED = ('INSERT INTO task (id, queue, priority, body, enqueued_at, key, owner, '
                  'claimed_at, attempts, assignee, started) VALUES (' + NEXT_ID
                  + ', ?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, 1)')
DEREGISTER = 'DELETE FROM idle_worker WHERE token = ?'
#: A handed message whose datagram could not be delivered becomes an ordinary ready one.
TAKE_BACK = ('UPDATE task SET ' + UNCLAIMED + ', attempts = 0 '
             'WHERE id = ? AND assignee = ?')
# (idle_worker's flag_lo/flag_hi columns are no longer written: the producer checks its own
# flag_prefix. They stay in the schema so that an older sqlq sharing the file keeps working.)
REGISTER_IDLE = ('INSERT OR REPLACE INTO idle_worker (token, queue, owner, socket, since) '
                 'VALUES (?, ?, ?, ?, ?)')
#: A registered worker's claim takes what was handed to it but never arrived (no datagram).
TAKE_HANDED = ('UPDATE task SET assignee = NULL WHERE assignee = ?1 AND owner = ?2 '
               'AND queue = ?3 RETURNING id, ' + TASK_DATA + ', attempts, recoveries, priority')
#: A datagram for a registration its thread no longer counted on: the message, if still ours.
TAKE_HANDED_ONE = ('UPDATE task SET assignee = NULL WHERE id = ? AND assignee = ? AND owner = ? '
                   'RETURNING id')
#: A registered worker's cheap check after a wait: work is ready, or its registration was
#: taken by a producer whose datagram it did not get.
READY_OR_HANDED = ('SELECT EXISTS (SELECT 1 FROM task WHERE queue = ?1 AND owner IS NULL) '
                   'OR NOT EXISTS (SELECT 1 FROM idle_worker WHERE token = ?2)')
DEREGISTER_SOCKET = 'DELETE FROM idle_worker WHERE socket = ?'
#: The end of a worker session: messages handed to its tokens (``[?3, ?4)``) and not returned.
RELEASE_HANDED = ('UPDATE task SET ' + UNCLAIMED + ' WHERE owner = ? AND queue = ? '
                  'AND assignee >= ? AND assignee < ?')

# ------------------------------------------------------------------ schedule

SCHEDULE = 'INSERT INTO schedule (queue, ts, data, key) VALUES (?, ?, ?, ?)'
#: The due messages (the first ``?`` of them; -1: all), earliest first.
TAKE_DUE = ('DELETE FROM schedule WHERE id IN (SELECT id FROM schedule WHERE queue = ? AND '
            'ts <= ? ORDER BY ts, id LIMIT ?) RETURNING ts, id, ' + BLOB_DATA)
NEXT_SCHEDULED = 'SELECT min(ts) FROM schedule WHERE queue = ?'
SCHEDULED_ITEMS = 'SELECT ' + BLOB_DATA + ' FROM schedule WHERE queue = ? ORDER BY ts, id LIMIT ?'
SCHEDULE_COUNT = 'SELECT count(*) FROM schedule WHERE queue = ?'
FLUSH_SCHEDULE = 'DELETE FROM schedule WHERE queue = ?'

# ------------------------------------------------------------------ key/value

#: A key is live while ``?`` (now) is before its expiry.
LIVE = '(expires_at IS NULL OR expires_at > ?)'
PUT = ('INSERT OR REPLACE INTO kv (queue, key, value, is_result, '
       'expires_at) VALUES (?, ?, ?, ?, ?)')
PUT_RESULT = ('INSERT OR REPLACE INTO kv (queue, key, value, is_result, '
              'expires_at) VALUES (?, ?, ?, 1, ?)')
#: peek_many: ``%s`` is one ``?`` per key.
GET_MANY = 'SELECT key, ' + BLOB_VALUE + ', expires_at FROM kv WHERE queue = ? AND key IN (%s)'
GET = 'SELECT ' + BLOB_VALUE + ', expires_at FROM kv WHERE queue = ? AND key = ?'
GET_COUNTER = ('SELECT ' + BLOB_VALUE + ', is_result, expires_at FROM kv '
               'WHERE queue = ? AND key = ?')
DELETE_EXPIRED_KEY = 'DELETE FROM kv WHERE queue = ? AND key = ? AND expires_at <= ?'
POP = 'DELETE FROM kv WHERE queue = ? AND key = ? RETURNING ' + BLOB_VALUE + ', expires_at'
DELETE = 'DELETE FROM kv WHERE queue = ? AND key = ? RETURNING expires_at'
PUT_IF_EMPTY = ('INSERT INTO kv (queue, key, value, is_result, expires_at) '
                'VALUES (?, ?, ?, 0, ?) ON CONFLICT (queue, key) DO UPDATE SET '
                'value = excluded.value, is_result = 0, '
                'expires_at = excluded.expires_at '
                'WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= ?')
# A range + substr comparison: no LIKE, so '_' and '%' are ordinary characters.
DELETE_PREFIX = ('DELETE FROM kv WHERE queue = ? AND key >= ? '
                 'AND substr(key, 1, ?) = ? RETURNING expires_at')
RESULT_COUNT = 'SELECT count(*) FROM kv WHERE queue = ? AND is_result = 1 AND ' + LIVE
RESULT_ITEMS = ('SELECT key, ' + BLOB_VALUE + ' FROM kv WHERE queue = ? AND is_result = 1 AND '
                + LIVE)
FLUSH_RESULTS = 'DELETE FROM kv WHERE queue = ? AND is_result = 1'
KEY_COUNT = 'SELECT count(*) FROM kv WHERE queue = ? AND ' + LIVE
EXPIRED_COUNT = ('SELECT count(*) FROM kv WHERE queue = ? AND '
                 'expires_at IS NOT NULL AND expires_at <= ?')
PURGE_EXPIRED = ('DELETE FROM kv WHERE queue = ? AND expires_at IS NOT NULL '
                 'AND expires_at <= ?')

# ------------------------------------------------------------------ dead letters

ADD_DEAD_LETTER = ('INSERT INTO dead_letter (queue, data, reason, failed_at, attempts, '
                   'enqueued_at, key) VALUES (?, ?, ?, ?, ?, ?, ?)')
DEAD_LETTERS = ('SELECT id, ' + BLOB_DATA + ', reason, failed_at, attempts, enqueued_at, key '
                'FROM dead_letter WHERE queue = ? ORDER BY id LIMIT ?')
DEAD_LETTER = ('SELECT id, ' + BLOB_DATA + ', reason, failed_at, attempts, enqueued_at, key '
               'FROM dead_letter WHERE queue = ? AND id = ?')
DEAD_LETTER_COUNT = 'SELECT count(*) FROM dead_letter WHERE queue = ?'
TAKE_DEAD_LETTERS = ('DELETE FROM dead_letter WHERE queue = ? RETURNING id, ' + BLOB_DATA
                     + ', key')
TAKE_DEAD_LETTER = ('DELETE FROM dead_letter WHERE queue = ? AND id = ? RETURNING id, '
                    + BLOB_DATA + ', key')

# ------------------------------------------------------------------ owners

HEARTBEAT = ('INSERT INTO owner (id, host, pid, started_at, heartbeat_at) '
             'VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET '
             'heartbeat_at = excluded.heartbeat_at')
#: Owners with a heartbeat row, and owners of this queue's claims without one.
OWNERS = ('SELECT id, host, pid, started_at, heartbeat_at FROM owner UNION '
          'SELECT DISTINCT owner, NULL, NULL, NULL, NULL FROM task WHERE queue = ? '
          'AND owner IS NOT NULL AND owner NOT IN (SELECT id FROM owner) ORDER BY 1')
CLAIM_OWNERS = ('SELECT owner, count(*) FROM task WHERE queue = ? '
                'AND owner IS NOT NULL GROUP BY owner')
# claimed_at is part of the task_claimed index: the owner's rows are found by it. Only a
# claim recorded as started is charged a death (the right-hand sides read the old row).
RELEASE_OWNER = ('UPDATE task SET ' + UNCLAIMED + ', recoveries = recoveries + 1, '
                 'deaths = deaths + started WHERE owner = ? AND queue = ?')
DEREGISTER_OWNER = 'DELETE FROM idle_worker WHERE owner = ?'
#: An owner row goes once the owner holds no claim in any queue: parameters (owner, owner).
FORGET_OWNER = ('DELETE FROM owner WHERE id = ? AND NOT EXISTS '
                '(SELECT 1 FROM task WHERE owner = ?)')

# ------------------------------------------------------------------ whole queue

FLUSH_ALL = tuple('DELETE FROM %s WHERE queue = ?' % table
                  for table in ('task', 'schedule', 'kv', 'dead_letter', 'history',
                                'run_stats'))


# ------------------------------------------------------------------ long messages

def insert_long(conn: Any, statement: str, params: Sequence[Any]) -> int:
    """Insert a task row with ``statement`` (an ENQUEUE form: the message is its third
    parameter) whose message is longer than INLINE_MAX: the row gets an empty ``body``, the
    message a ``task_payload`` row. Returns the task row's id."""
    conn.execute(statement, (params[0], params[1], b'', *params[3:]))
    task_id: int = conn.last_insert_rowid()
    conn.execute(SPILL, (task_id, params[2]))
    return task_id


def band_ids(conn: Any, priorities: Sequence[int]) -> Optional[list[int]]:
    """The ids NEXT_ID would give new task rows of ``priorities``, inserted in this order in
    the current write transaction; None if one would not fit in its band (the rows must then
    be inserted with NEXT_ID, one by one)."""
    if not priorities:
        return []
    first = priorities[0]
    if priorities.count(first) == len(priorities):  # the usual batch: one priority
        bands = {first: id_band(first)}
    else:
        bands = {priority: id_band(priority) for priority in set(priorities)}
    following: dict[int, int] = {}
    for start in set(bands.values()):
        top = conn.execute(BAND_MAX, (start, start + ID_BAND)).fetchall()[0][0]
        following[start] = (start if top is None else top) + 1
    if len(bands) == 1:
        start = bands[first]
        low = following[start]
        if low + len(priorities) > start + ID_BAND:
            return None
        return list(range(low, low + len(priorities)))
    ids = []
    for priority in priorities:
        start = bands[priority]
        next_id = following[start]
        if next_id >= start + ID_BAND:
            return None
        ids.append(next_id)
        following[start] = next_id + 1
    return ids


def insert_tasks(conn: Any, rows: Iterable[Sequence[Any]]) -> None:
    """Insert ENQUEUE rows in their order (ids follow it), long messages apart."""
    short: list[Sequence[Any]] = []
    for row in rows:
        if len(row[2]) > INLINE_MAX:
            if short:
                conn.executemany(ENQUEUE, short)
                short = []
            insert_long(conn, ENQUEUE, row)
        else:
            short.append(row)
    if short:
        conn.executemany(ENQUEUE, short)


# ------------------------------------------------------------------ parameters

@functools.lru_cache(maxsize=16)
def prefix_range(prefix: str) -> tuple[str, str]:
    """The key range ``[low, high)`` holding the keys that start with ``prefix`` (UTF-8 byte
    order is code point order)."""
    if not prefix:
        raise ValueError('flag_prefix must not be empty')
    last = ord(prefix[-1]) + 1
    if last > 0x10FFFF:  # no next character: every key below this bound
        return prefix, prefix + '\U0010ffff' * 16
    return prefix, prefix[:-1] + chr(0xE000 if 0xD800 <= last <= 0xDFFF else last)
