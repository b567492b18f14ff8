"""Key/value data of SQLite storage (rows of ``kv``): results, flags, locks and counters.

A key with an ``expires_at`` in the past is invisible: reads skip it, and it is deleted
lazily (by :meth:`~KeyValue.peek_data`) or by ``purge_expired``.
"""
from __future__ import annotations

import contextlib
from typing import Any, Optional, Sequence

from sqlq.exceptions import DatabaseLockedError
from sqlq.storage._common import as_bytes, parse_counter
from sqlq.storage.sqlite import _sql
from sqlq.storage.sqlite._transaction import Transactions
from sqlq.storage.types import EMPTY


class KeyValue(Transactions):
    """Put, read, pop, count and delete keys of this queue; list its results."""

    def _expires(self, ttl: Optional[float]) -> Optional[float]:
        return None if ttl is None else self._clock() + float(ttl)

    def _is_live(self, expires_at: Optional[float], now: Optional[float] = None) -> bool:
        return expires_at is None or expires_at > (self._clock() if now is None else now)

    def put_data(self, key: str, value: bytes, is_result: bool = False,
                 ttl: Optional[float] = None) -> None:
        params = (self.name, key, as_bytes(value), int(bool(is_result)), self._expires(ttl))
        with self._tx() as conn:
            self._do(conn, _sql.PUT, params)
            self._touch('d')

    def peek_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        rows = self._rows(_sql.GET_MANY % ','.join('?' * len(keys)), (self.name, *keys))
        now = self._clock()
        return {key: value for key, value, expires_at in rows if self._is_live(expires_at, now)}

    def peek_data(self, key: str) -> Any:
        rows = self._rows(_sql.GET, (self.name, key))
        if not rows:
            return EMPTY
        value, expires_at = rows[0]
        now = self._clock()
        if self._is_live(expires_at, now):
            return value
        with contextlib.suppress(DatabaseLockedError):  # lazy expiry is best effort
            with self._tx() as conn:
                self._do(conn, _sql.DELETE_EXPIRED_KEY, (self.name, key, now))
                self._touch('d')
        return EMPTY

    def pop_data(self, key: str) -> Any:
        with self._tx() as conn:
            rows = self._do(conn, _sql.POP, (self.name, key))
            if rows:
                self._touch('d')
        if rows and self._is_live(rows[0][1]):
            return rows[0][0]
        return EMPTY

    def delete_data(self, key: str) -> bool:
        with self._tx() as conn:
            rows = self._do(conn, _sql.DELETE, (self.name, key))
            if rows:
                self._touch('d')
        return bool(rows) and self._is_live(rows[0][0])

    def has_data_for_key(self, key: str) -> bool:
        return self.peek_data(key) is not EMPTY

    def put_if_empty(self, key: str, value: bytes, ttl: Optional[float] = None) -> bool:
        now = self._clock()
        expires_at = None if ttl is None else now + float(ttl)
        with self._tx() as conn:
            self._do(conn, _sql.PUT_IF_EMPTY, (self.name, key, as_bytes(value), expires_at, now))
            if conn.changes() > 0:
                self._touch('d')
                return True
            return False

    def incr(self, key: str, amount: int = 1, ttl: Optional[float] = None) -> int:
        amount = int(amount)
        now = self._clock()
        with self._tx() as conn:
            rows = self._do(conn, _sql.GET_COUNTER, (self.name, key))
            if rows and self._is_live(rows[0][2], now):
                value = parse_counter(key, rows[0][0]) + amount
                is_result, expires_at = rows[0][1], rows[0][2]
            else:
                value, is_result = amount, 0
                expires_at = None if ttl is None else now + float(ttl)
            self._do(conn, _sql.PUT, (self.name, key, b'%d' % value, is_result, expires_at))
            self._touch('d')
        return value

    def delete_prefix(self, prefix: str) -> int:
        with self._tx() as conn:
            rows = self._do(conn, _sql.DELETE_PREFIX, (self.name, prefix, len(prefix), prefix))
            if rows:
                self._touch('d')
        now = self._clock()
        return sum(1 for (expires_at,) in rows if self._is_live(expires_at, now))

    def result_store_size(self) -> int:
        size: int = self._scalar(_sql.RESULT_COUNT, (self.name, self._clock()))
        return size

    def result_items(self) -> dict[str, bytes]:
        return dict(self._rows(_sql.RESULT_ITEMS, (self.name, self._clock())))

    def flush_results(self) -> None:
        with self._tx() as conn:
            self._do(conn, _sql.FLUSH_RESULTS, (self.name,))
            self._touch('d')
