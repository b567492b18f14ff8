"""The schedule of SQLite storage: messages waiting for their time (rows of ``schedule``)."""
from __future__ import annotations

from typing import Optional

from sqlq.storage._common import as_bytes
from sqlq.storage._common import limit as _limit  # a contract parameter is named limit
from sqlq.storage.sqlite import _sql
from sqlq.storage.sqlite._transaction import Transactions


class Schedule(Transactions):
    """Add scheduled messages, take the due ones, list them."""

    def add_to_schedule(self, data: bytes, timestamp: float, key: Optional[str] = None) -> None:
        params = (self.name, float(timestamp), as_bytes(data), key)
        with self._tx() as conn:
            self._do(conn, _sql.SCHEDULE, params)
            self._touch('s')

    def read_schedule(self, timestamp: float, limit: Optional[int] = None) -> list[bytes]:
        with self._tx() as conn:
            rows = self._do(conn, _sql.TAKE_DUE, (self.name, float(timestamp), _limit(limit)))
        rows.sort(key=lambda row: (row[0], row[1]))  # RETURNING order is unspecified
        return [row[2] for row in rows]

    def next_scheduled_time(self) -> Optional[float]:
        time: Optional[float] = self._scalar(_sql.NEXT_SCHEDULED, (self.name,))
        return time

    def scheduled_items(self, limit: Optional[int] = None) -> list[bytes]:
        return [row[0] for row in self._rows(_sql.SCHEDULED_ITEMS,
                                             (self.name, _limit(limit)))]

    def schedule_size(self) -> int:
        size: int = self._scalar(_sql.SCHEDULE_COUNT, (self.name,))
        return size

    def flush_schedule(self) -> None:
        with self._tx() as conn:
            self._do(conn, _sql.FLUSH_SCHEDULE, (self.name,))
