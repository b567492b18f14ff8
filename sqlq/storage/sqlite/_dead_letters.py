"""Dead letters of SQLite storage (rows of ``dead_letter``): messages that could not be
processed, kept for an operator to inspect, requeue or purge."""
from __future__ import annotations

from typing import Any, Iterable, Optional

import apsw

from sqlq.storage._common import as_bytes
from sqlq.storage._common import limit as _limit  # a contract parameter is named limit
from sqlq.storage.sqlite import _sql
from sqlq.storage.sqlite._transaction import Transactions
from sqlq.storage.types import DeadLetter


class DeadLetters(Transactions):
    """Add, list, requeue and purge dead letters."""

    def add_dead_letter(self, data: bytes, reason: str, attempts: int = 0,
                        enqueued_at: Optional[float] = None, key: Optional[str] = None) -> int:
        params = (self.name, as_bytes(data), str(reason), self._clock(), int(attempts),
                  None if enqueued_at is None else float(enqueued_at), key)
        with self._tx() as conn:
            self._do(conn, _sql.ADD_DEAD_LETTER, params)
            dead_id: int = conn.last_insert_rowid()
            return dead_id

    def dead_letters(self, limit: Optional[int] = None) -> list[DeadLetter]:
        return [DeadLetter(*row) for row in self._rows(
            _sql.DEAD_LETTERS, (self.name, _limit(limit)))]

    def dead_letter(self, id: int) -> Optional[DeadLetter]:
        rows = self._rows(_sql.DEAD_LETTER, (self.name, int(id)))
        return DeadLetter(*rows[0]) if rows else None

    def dead_letter_count(self) -> int:
        count: int = self._scalar(_sql.DEAD_LETTER_COUNT, (self.name,))
        return count

    def _take_dead(self, conn: Any, ids: Optional[Iterable[int]]
                   ) -> list[tuple[int, bytes, Optional[str]]]:
        if ids is None:
            rows = self._do(conn, _sql.TAKE_DEAD_LETTERS, (self.name,))
        else:
            rows = []
            for dead_id in sorted({int(i) for i in ids}):
                rows.extend(self._do(conn, _sql.TAKE_DEAD_LETTER, (self.name, dead_id)))
        rows.sort(key=lambda row: row[0])
        return rows

    def requeue_dead_letters(self, ids: Optional[Iterable[int]] = None,
                             priority: int = 0) -> int:
        priority = int(priority)
        with self._tx() as conn:
            rows = self._take_dead(conn, ids)
            if rows:
                now = self._clock()
                try:
                    _sql.insert_tasks(conn, [(self.name, priority, data, now, key)
                                             for _, data, key in rows])
                except apsw.Error as exc:
                    raise self._error(exc, 'writing') from exc
                self._touch('q')
        return len(rows)

    def purge_dead_letters(self, ids: Optional[Iterable[int]] = None) -> int:
        with self._tx() as conn:
            return len(self._take_dead(conn, ids))
