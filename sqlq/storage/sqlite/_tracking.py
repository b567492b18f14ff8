"""Tracking in SQLite storage (see :class:`~sqlq.storage.capabilities.Tracking`): messages by
key, the ``history`` of finished runs and its per-minute sums (``run_stats``).

A history row is written by the statement after the one that releases the run's claim, in the
same transaction; the sums of a batch of rows take one upsert per (minute, task name,
outcome). Reads take one snapshot; pruning deletes in bounded chunks, each a short write
transaction of its own.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
from bisect import bisect_left
from typing import Any, Iterator, Optional, Sequence

import apsw

from sqlq.exceptions import StorageError
from sqlq.storage._history import BUCKETS, outcome_error, to_stats
from sqlq.storage.sqlite import _sql
from sqlq.storage.sqlite._schema import STATS_BUCKETS
from sqlq.storage.sqlite._transaction import Transactions
from sqlq.storage.types import (
    DURATION_BUCKETS,
    Finished,
    HistoryEntry,
    Location,
    Receipt,
    RunStats,
)

assert BUCKETS == STATS_BUCKETS, 'the run_stats columns must match DURATION_BUCKETS'

_B = ['b%d' % i for i in range(STATS_BUCKETS)]
#: History rows per INSERT statement at most. One statement of many rows, not executemany:
#: besides costing less per row, executemany puts its statement back in apsw's statement cache
#: after every row, and a group commit's worth of them evicted every other cached statement.
HISTORY_ROWS = 16
_HISTORY_COLUMNS = 11
#: The claim of a run that was never claimed, as :meth:`TaskTracking._record` reads it.
_UNCLAIMED = ((None, None, 0, None), (None, None, None))


@functools.lru_cache(maxsize=HISTORY_ROWS)
def insert_history(rows: int) -> str:
    """The statement inserting ``rows`` history rows."""
    return ('INSERT INTO history (queue, key, name, outcome, finished_at, duration, error, '
            'enqueued_at, claimed_at, attempts, owner) VALUES '
            + ', '.join(['(%s)' % ', '.join(['?'] * _HISTORY_COLUMNS)] * rows))


#: Columns of a history row that :func:`insert_alike` binds per row.
_ALIKE_COLUMNS = 6


@functools.lru_cache(maxsize=HISTORY_ROWS)
def insert_alike(rows: int) -> str:
    """The statement inserting ``rows`` history rows of one task name, outcome and owner,
    without error: ?1 the queue, ?2 the name, ?3 the outcome, ?4 the owner, then per row key,
    finished_at, duration, enqueued_at, claimed_at, attempts. (Every bound value costs: the
    common group, a worker's successful runs of one task, binds 6 per row instead of 11.)"""
    return ('INSERT INTO history (queue, name, outcome, owner, key, finished_at, duration, '
            'enqueued_at, claimed_at, attempts) VALUES '
            + ','.join(['(?1,?2,?3,?4,?,?,?,?,?,?)'] * rows))

ADD_STATS = ('INSERT INTO run_stats (queue, minute, name, outcome, count, seconds, %s) '
             'VALUES (%s) ON CONFLICT (queue, minute, name, outcome) DO UPDATE SET %s'
             % (', '.join(_B), ', '.join(['?'] * (6 + STATS_BUCKETS)),
                ', '.join('%s = %s + excluded.%s' % (c, c, c)
                          for c in ['count', 'seconds'] + _B)))
_SUMS = 'sum(count), sum(seconds), ' + ', '.join('sum(%s)' % b for b in _B)
#: Sums since minute ?2 (0: all time, the folded sums of pruned minutes included).
STATS_TOTAL = ('SELECT name, outcome, %s FROM run_stats WHERE queue = ?1 AND minute >= ?2 '
               'GROUP BY name, outcome ORDER BY name, outcome' % _SUMS)
STATS_MINUTES = ('SELECT name, outcome, count, seconds, %s, minute FROM run_stats '
                 'WHERE queue = ?1 AND minute >= ?2 AND minute > 0 '
                 'ORDER BY minute, name, outcome' % ', '.join(_B))
#: Fold the sums of minutes before ?2 into minute 0 (then delete them: FORGET_MINUTES).
FOLD_MINUTES = ('INSERT INTO run_stats (queue, minute, name, outcome, count, seconds, %s) '
                'SELECT queue, 0, name, outcome, %s FROM run_stats WHERE queue = ?1 '
                'AND minute > 0 AND minute < ?2 GROUP BY name, outcome '
                'ON CONFLICT (queue, minute, name, outcome) DO UPDATE SET %s'
                % (', '.join(_B), _SUMS, ', '.join('%s = %s + excluded.%s' % (c, c, c)
                                                    for c in ['count', 'seconds'] + _B)))
FORGET_MINUTES = 'DELETE FROM run_stats WHERE queue = ?1 AND minute > 0 AND minute < ?2'

LOCATE_TASK = ('SELECT id, ' + _sql.TASK_DATA + ', enqueued_at, owner, claimed_at, attempts, '
               'recoveries, priority FROM task WHERE key = ? AND queue = ? '
               'ORDER BY owner IS NULL, id')
LOCATE_SCHEDULED = ('SELECT id, ' + _sql.BLOB_DATA + ', ts FROM schedule '
                    'WHERE key = ? AND queue = ? ORDER BY ts, id')
LOCATE_DEAD = ('SELECT id, ' + _sql.BLOB_DATA + ', enqueued_at, attempts, reason, failed_at '
               'FROM dead_letter WHERE key = ? AND queue = ? ORDER BY id')

_COLUMNS = ('SELECT id, key, name, outcome, finished_at, duration, error, enqueued_at, '
            'claimed_at, attempts, owner FROM history ')
#: Listings, newest first: parameters (queue, below id, limit[, key | name | outcome]).
HISTORY = {
    (): _COLUMNS + 'WHERE queue = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3',
    ('key',): _COLUMNS + 'WHERE key = ?4 AND queue = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3',
    ('name',): _COLUMNS + 'WHERE queue = ?1 AND id < ?2 AND name = ?4 '
                          'ORDER BY id DESC LIMIT ?3',
    ('outcome',): _COLUMNS + 'WHERE queue = ?1 AND id < ?2 AND outcome = ?4 '
                             'ORDER BY id DESC LIMIT ?3',
}
ID_RANGE = 'SELECT min(id), max(id) FROM history'
FIRST_FROM = 'SELECT id, finished_at FROM history WHERE id >= ? ORDER BY id LIMIT 1'
NEWEST_KEPT = 'SELECT id FROM history WHERE queue = ? ORDER BY id DESC LIMIT 1 OFFSET ?'
PRUNE_CHUNK = ('DELETE FROM history WHERE id IN (SELECT id FROM history WHERE queue = ?1 '
               'AND id < ?2 ORDER BY id LIMIT ?3)')

#: Rows one pruning transaction deletes, and most chunks per prune_history call.
PRUNE_ROWS = 5000
PRUNE_CHUNKS = 40
_NO_ID = (1 << 63) - 1


class TaskTracking(Transactions):
    """Locate messages by key; record, list, sum and prune the history."""

    tracks_tasks = True

    # ------------------------------------------------------------------ writes

    def _record(self, conn: Any, entries: Sequence[Finished],
                acks: Optional[Sequence[Sequence[Any]]] = None,
                times: Optional[Sequence[Sequence[Any]]] = None) -> None:
        """Write history rows (and their sums) in the current transaction. ``entries``: the
        runs; ``acks[i]``: the claim of ``entries[i]`` as acked, ``(id, owner, attempts,
        queue)``, ``times[i]``: ``(id, enqueued_at, claimed_at)`` of its message's row; both
        None for runs that were never claimed."""
        if not entries:
            return
        name = self.name
        params: list[Any] = []
        add = params.extend
        sums: dict[Any, list[Any]] = {}
        bounds = DURATION_BUCKETS
        claims: Any = zip(acks, times) if acks is not None and times is not None else \
            itertools.repeat(_UNCLAIMED)
        # The common case first: runs alike (see insert_alike), whose rows bind less.
        _, task0, outcome0, _, _, _ = entries[0]
        owner0 = None if acks is None else acks[0][1]
        alike = owner0 is not None
        minute = end = 0.0
        current_task = current_outcome = ''
        row: list[Any] = []
        for (key, task, outcome, at, duration, error), ((_, owner, attempts, _),
                                                         (_, enqueued, claimed)) in zip(
                entries, claims):
            if alike:
                if error is None and task == task0 and outcome == outcome0 and \
                        owner == owner0:
                    add((key, at, duration, enqueued, claimed, attempts))
                else:
                    alike = False
            # The per-minute sums (as _history.aggregate, inline: this runs per task).
            if not minute <= at < end or task != current_task or outcome != current_outcome:
                minute = at - at % 60
                end = minute + 60
                current_task, current_outcome = task, outcome
                stat_key = (minute, task, outcome)
                row = sums.get(stat_key)  # type: ignore[assignment]
                if row is None:
                    row = sums[stat_key] = [0] * (STATS_BUCKETS + 2)
            row[0] += 1
            if duration is not None:
                row[1] += duration
                row[2 + bisect_left(bounds, duration)] += 1
        if alike:
            columns, insert = _ALIKE_COLUMNS, insert_alike
            head: list[Any] = [name, task0, outcome0, owner0]
        else:
            params.clear()
            claims = zip(acks, times) if acks is not None and times is not None else \
                itertools.repeat(_UNCLAIMED)
            for (key, task, outcome, at, duration, error), ((_, owner, attempts, _),
                                                             (_, enqueued, claimed)) in zip(
                    entries, claims):
                if error is not None:
                    error = outcome_error(error)
                add((name, key, task, outcome, at, duration, error, enqueued, claimed,
                     attempts, owner))
            columns, insert, head = _HISTORY_COLUMNS, insert_history, []
        width = columns * HISTORY_ROWS
        try:
            for start in range(0, len(params), width):
                chunk = params[start:start + width]
                conn.execute(insert(len(chunk) // columns), head + chunk)
            for (minute, task, outcome), row in sums.items():
                conn.execute(ADD_STATS, (name, minute, task, outcome, *row))
        except apsw.Error as exc:
            raise self._error(exc, 'writing the history') from exc

    def finish(self, receipt: Any, finished: Optional[Finished] = None,
               reason: Optional[str] = None) -> bool:
        msg_id, owner, attempts = Receipt.of(receipt)
        with self._tx() as conn:
            if reason is None:
                rows = self._do(conn, _sql.ACK_RETURNING_TIMES,
                                (msg_id, owner, attempts, self.name))
                if not rows:
                    return False
                times = rows[0]
            else:
                rows = self._do(conn, _sql.BURY, (msg_id, self.name, owner, attempts))
                if not rows:
                    return False
                data, tries, enqueued_at, key, claimed_at = rows[0]
                self._do(conn, _sql.ADD_DEAD_LETTER, (self.name, data, str(reason),
                                                      self._clock(), tries, enqueued_at, key))
                times = (msg_id, enqueued_at, claimed_at)
            if finished is not None:
                self._record(conn, [finished], [(msg_id, owner, attempts, self.name)],
                             [times])
        return True

    def record_finished(self, entries: Sequence[Finished]) -> None:
        if entries:
            with self._tx() as conn:
                self._record(conn, entries)

    # ------------------------------------------------------------------ reads

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[Any]:
        """A read transaction (one snapshot) unless one is open already."""
        conn = self._conn()
        own = not conn.in_transaction
        try:
            if own:
                conn.execute('BEGIN')
            try:
                yield conn
            finally:
                if own and conn.in_transaction:
                    conn.execute('COMMIT')
        except apsw.Error as exc:
            raise self._error(exc, 'reading') from exc

    def locate(self, key: str) -> list[Location]:
        params = (str(key), self.name)
        with self._snapshot() as conn:
            tasks = conn.execute(LOCATE_TASK, params).fetchall()
            scheduled = conn.execute(LOCATE_SCHEDULED, params).fetchall()
            dead = conn.execute(LOCATE_DEAD, params).fetchall()
        found = [Location('ready' if owner is None else 'claimed', i, data, enqueued_at, None,
                          owner, claimed_at, attempts, recoveries, priority)
                 for i, data, enqueued_at, owner, claimed_at, attempts, recoveries, priority
                 in tasks]
        found += [Location('scheduled', i, data, eta=ts) for i, data, ts in scheduled]
        found += [Location('dead', i, data, enqueued_at, attempts=attempts, reason=reason,
                           failed_at=failed_at)
                  for i, data, enqueued_at, attempts, reason, failed_at in dead]
        return found

    def history(self, limit: Optional[int] = 50, before: Optional[int] = None,
                key: Optional[str] = None, name: Optional[str] = None,
                outcome: Optional[str] = None) -> list[HistoryEntry]:
        params: tuple[Any, ...] = (self.name, _NO_ID if before is None else int(before),
                                   -1 if limit is None else max(int(limit), 0))
        filters = [(field, value) for field, value in
                   (('key', key), ('name', name), ('outcome', outcome)) if value is not None]
        if len(filters) > 1:  # rare: the most selective filter in SQL, the rest here
            found = [entry for entry in self.history(None, before, **dict(filters[:1]))
                     if all(getattr(entry, f) == v for f, v in filters[1:])]
            return found if limit is None else found[:max(int(limit), 0)]
        sql = HISTORY[tuple(f for f, _ in filters)]
        params += tuple(str(v) for _, v in filters)
        return [HistoryEntry(*row) for row in self._rows(sql, params)]

    def history_stats(self, since: Optional[float] = None,
                      per_minute: bool = False) -> list[RunStats]:
        params = (self.name, 0.0 if since is None else float(since))
        if per_minute:
            return [to_stats(row[0], row[1], row[2:-1], row[-1])
                    for row in self._rows(STATS_MINUTES, params)]
        return [to_stats(row[0], row[1], row[2:]) for row in self._rows(STATS_TOTAL, params)]

    # ------------------------------------------------------------------ pruning

    def prune_history(self, before: Optional[float] = None, keep: Optional[int] = None,
                      stats_before: Optional[float] = None) -> int:
        if self._in_transaction():
            raise StorageError('prune_history() cannot be called inside transaction()')
        cutoff = 0
        if before is not None:
            cutoff = self._first_finished_from(float(before))
        if keep is not None:
            newest = self._rows(NEWEST_KEPT, (self.name, max(int(keep), 0)))
            if newest:
                cutoff = max(cutoff, newest[0][0] + 1)
        deleted = 0
        for _ in range(PRUNE_CHUNKS if cutoff else 0):
            with self._tx() as conn:
                self._do(conn, PRUNE_CHUNK, (self.name, cutoff, PRUNE_ROWS))
                done: int = conn.changes()
            deleted += done
            if done < PRUNE_ROWS:
                break
        if stats_before is not None:
            with self._tx() as conn:
                self._do(conn, FOLD_MINUTES, (self.name, float(stats_before)))
                self._do(conn, FORGET_MINUTES, (self.name, float(stats_before)))
        return deleted

    def _first_finished_from(self, before: float) -> int:
        """The lowest history id whose run finished at or after ``before`` (rows are written
        in time order, so a binary search on the rowid finds it); 0 if none is older."""
        low: Optional[int]
        high: int
        low, high = self._rows(ID_RANGE)[0]
        if low is None:
            return 0
        first = self._rows(FIRST_FROM, (low,))
        if first and first[0][1] >= before:
            return 0
        last = self._rows(FIRST_FROM, (high,))
        if last and last[0][1] < before:
            return high + 1
        # P(x): the first row from id x on finished at or after ``before``; P(low) is false,
        # P(high) true. Find the smallest such x.
        while high - low > 1:
            middle = (low + high) // 2
            if self._rows(FIRST_FROM, (middle,))[0][1] >= before:
                high = middle
            else:
                low = middle
        return int(self._rows(FIRST_FROM, (high,))[0][0])
