"""Key/value data and results as script operations; inside a transaction, each read of a key
is answered from the block's own writes or guarded (see :mod:`sqlq.storage.redis._transaction`).

Key/value ttls are measured with the storage's ``clock`` (like every backend, so a test clock
works): the expiry time is stored beside the key, expired keys are invisible at once and are
deleted by :meth:`~sqlq.storage.redis.RedisStorage.purge_expired` (the consumer's
maintenance). Hosts sharing a queue should keep their clocks in sync (NTP): lock ttls, result
ttls and the heartbeat lease compare times written by one host with the clock of another.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, cast

from redis import exceptions as _rexc

from sqlq.storage._common import as_bytes, parse_counter
from sqlq.storage.redis._args import NO_ARG
from sqlq.storage.redis._base import RedisBase
from sqlq.storage.redis._transaction import _Tx
from sqlq.storage.types import EMPTY


class DataOps(RedisBase):
    """The key/value store and results of :class:`~sqlq.storage.redis.RedisStorage`."""

    def _tx_get(self, tx: _Tx, key: str) -> Optional[bytes]:
        """The live value of ``key`` as this transaction sees it; guards a server read."""
        if key in tx.kv:
            value, expires = tx.kv[key]
            if value is not None and expires is not None and expires <= self._clock():
                return None
            return value
        if key not in tx.read:
            found = self._read('peek', 1, key)[0]
            tx.read[key] = found[0] if found else None
            tx.guard('K', key, '1' if found else '0', found[0] if found else NO_ARG)
        return tx.read[key]

    def _tx_set(self, tx: _Tx, key: str, value: Optional[bytes], expires: str) -> None:
        tx.kv[key] = (value, float(expires) if expires else None)

    def put_data(self, key: str, value: bytes, is_result: bool = False,
                 ttl: Optional[float] = None) -> None:
        value, expires = as_bytes(value), self._expires(ttl)
        tx = self._tx()
        if tx is not None:
            self._tx_set(tx, key, value, expires)
        self._write(tx, 'put', key, value, '1' if is_result else '0', expires)

    def peek_data(self, key: str) -> Any:
        tx = self._tx()
        if tx is not None:
            value = self._tx_get(tx, key)
            return EMPTY if value is None else value
        found = self._read('peek', 1, key)[0]
        return found[0] if found else EMPTY

    def peek_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        keys = list(keys)
        if not keys:
            return {}
        tx = self._tx()
        if tx is not None:
            return super().peek_many(keys)
        found = self._read('peek', len(keys), *keys)
        return {key: value[0] for key, value in zip(keys, found) if value}

    def _take(self, key: str, op: str) -> list[Any]:
        """Run ``pop``/``del`` now, or (in a transaction) predict it: ``[value or None]``."""
        tx = self._tx()
        if tx is None:
            done: list[Any] = self._one(op, key)
            return done
        value = self._tx_get(tx, key)
        self._tx_set(tx, key, None, NO_ARG)
        self._write(tx, 'del', key)
        if op == 'del':
            return [int(value is not None)]
        return [] if value is None else [value]

    def pop_data(self, key: str) -> Any:
        found = self._take(key, 'pop')
        return found[0] if found else EMPTY

    def delete_data(self, key: str) -> bool:
        return bool(self._take(key, 'del')[0])

    def has_data_for_key(self, key: str) -> bool:
        return self.peek_data(key) is not EMPTY

    def put_if_empty(self, key: str, value: bytes, ttl: Optional[float] = None) -> bool:
        value, expires = as_bytes(value), self._expires(ttl)
        tx = self._tx()
        if tx is None:
            return bool(self._one('pie', key, value, expires)[0])
        if self._tx_get(tx, key) is not None:
            return False
        self._tx_set(tx, key, value, expires)
        self._write(tx, 'put', key, value, '0', expires)
        return True

    def incr(self, key: str, amount: int = 1, ttl: Optional[float] = None) -> int:
        amount = int(amount)
        expires = self._expires(ttl)
        tx = self._tx()
        if tx is None:
            found = self._one('incr', key, amount, expires)
            if found[0] is None:
                value = self.peek_data(key)
                raise ValueError('key %r does not hold an integer: %r' % (key, value[:40]))
            return int(found[0])
        current = self._tx_get(tx, key)
        if current is None:
            value = amount
            self._tx_set(tx, key, b'%d' % value, expires)
        else:
            value = parse_counter(key, current) + amount
            kept = tx.kv.get(key, (None, None))[1]
            tx.kv[key] = (b'%d' % value, kept)
        self._write(tx, 'incr', key, amount, expires)
        return value

    def delete_prefix(self, prefix: str) -> int:
        tx = self._tx()
        if tx is None:
            return int(self._one('delpfx', prefix)[0])
        # Predicted from the committed keys and this block's writes; not guarded (advisory).
        keys = {k for k in self._read_kv_keys() if k.startswith(prefix)}
        keys |= {k for k in tx.kv if k.startswith(prefix)}
        live = sum(1 for k in keys if self._tx_get(tx, k) is not None)
        for k in keys:
            self._tx_set(tx, k, None, NO_ARG)
        self._write(tx, 'delpfx', prefix)
        return live

    def _read_kv_keys(self) -> list[str]:
        try:
            keys = cast('list[bytes]', self._client.hkeys(self._qprefix + 'kv'))  # not decoded
            return [k.decode() for k in keys]
        except _rexc.RedisError as exc:
            raise self._error(exc, 'reading') from exc

    def result_store_size(self) -> int:
        return int(self._counts()[3])

    def result_items(self) -> dict[str, bytes]:
        flat = self._read('results')
        return {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}

    def flush_results(self) -> None:
        self._write(self._tx(), 'flushres')
