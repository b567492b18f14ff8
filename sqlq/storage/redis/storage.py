""":class:`RedisStorage`: the storage contract on a Redis server.

Its methods come from the modules of this package, one concern each (see the package
documentation); this one adds the schedule, dead letters, owners and upkeep.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

from redis import exceptions as _rexc

from sqlq.storage._common import as_bytes
from sqlq.storage._common import limit as _limit  # a contract parameter is named limit
from sqlq.storage._owners import parse_owner_id
from sqlq.storage.redis._args import NO_ARG, num, opt_float
from sqlq.storage.redis._data import DataOps
from sqlq.storage.redis._queue import HAND_OFF_MAX
from sqlq.storage.redis._tracking import TrackingOps
from sqlq.storage.redis._transaction import _Tx
from sqlq.storage.redis._wait import WaitOps
from sqlq.storage.types import DeadLetter, OwnerInfo

__all__ = ['RedisStorage', 'HAND_OFF_MAX']


class RedisStorage(TrackingOps, DataOps, WaitOps):
    """Byte-level storage on a Redis server; see :class:`~sqlq.storage.base.Storage` and the
    package documentation for the design.

    Connection: ``url='redis://[:password@]host:port/db'`` (or ``rediss://``, ``unix://``), or
    ``connection_pool=`` (a ``redis.ConnectionPool``; it must not use ``decode_responses``),
    or ``host``/``port``/``db``/``password``. Other keyword arguments go to redis-py's
    connection (``socket_timeout``, ``ssl``...). ``prefix``: first part of every key, so
    several applications can share one database.
    """

    # Every call is one atomic server-side function; a transaction() must also re-read what it
    # depends on to guard its commit, so grouped work is cheaper as separate calls.
    batch_in_transaction = False

    # ------------------------------------------------------------------ schedule

    def add_to_schedule(self, data: bytes, timestamp: float, key: Optional[str] = None) -> None:
        self._write(self._tx(), 'sched', num(timestamp), as_bytes(data), key or NO_ARG)

    def read_schedule(self, timestamp: float, limit: Optional[int] = None) -> list[bytes]:
        tx = self._tx()
        if tx is None:
            return list(self._one('rsched', num(timestamp), _limit(limit)))
        due = self._read('due', num(timestamp), _limit(limit))
        for member, _ in due:
            tx.guard('S', member)
        if due:
            self._write(tx, 'rschedids', len(due), *[member for member, _ in due])
        return [data for _, data in due]

    def next_scheduled_time(self) -> Optional[float]:
        try:
            found = self._client.zrange(self._qprefix + 'sched', 0, 0, withscores=True)
        except _rexc.RedisError as exc:
            raise self._error(exc, 'reading') from exc
        return float(found[0][1]) if found else None

    def scheduled_items(self, limit: Optional[int] = None) -> list[bytes]:
        return list(self._read('schedule', _limit(limit)))

    def schedule_size(self) -> int:
        return int(self._counts()[2])

    def flush_schedule(self) -> None:
        self._write(self._tx(), 'flushs')

    # ------------------------------------------------------------------ dead letters

    def add_dead_letter(self, data: bytes, reason: str, attempts: int = 0,
                        enqueued_at: Optional[float] = None, key: Optional[str] = None) -> int:
        args = (as_bytes(data), str(reason), int(attempts),
                NO_ARG if enqueued_at is None else num(enqueued_at), key or NO_ARG)
        tx = self._tx()
        if tx is None:
            return int(self._one('dead', NO_ARG, *args)[0])
        try:  # the id is returned before the commit: take it from the counter now
            dead_id = int(self._client.incr(self._qprefix + 'seq'))
        except _rexc.RedisError as exc:
            raise self._error(exc, 'writing') from exc
        self._write(tx, 'dead', dead_id, *args)
        return dead_id

    def _dead(self, n: int, id: Any = NO_ARG) -> list[DeadLetter]:
        return [DeadLetter(int(i), d, why.decode(), float(t), int(a), opt_float(e),
                           k.decode() or None)
                for i, d, why, t, a, e, k in self._read('deadlist', n, id)]

    def dead_letters(self, limit: Optional[int] = None) -> list[DeadLetter]:
        return self._dead(_limit(limit))

    def dead_letter(self, id: int) -> Optional[DeadLetter]:
        found = self._dead(1, int(id))
        return found[0] if found else None

    def dead_letter_count(self) -> int:
        return int(self._counts()[6])

    def _dead_args(self, tx: Optional[_Tx], ids: Optional[Iterable[int]]
                   ) -> tuple[list[int], int]:
        """Script arguments selecting dead letters, and (in a transaction) how many exist."""
        if ids is None:
            if tx is None:
                return [-1], 0
            chosen = [d.id for d in self.dead_letters()]
        else:
            chosen = sorted({int(i) for i in ids})
            if tx is None:
                return [len(chosen)] + chosen, 0
            chosen = [i for i in chosen if self.dead_letter(i) is not None]
        for dead_id in chosen:
            tx.guard('D', dead_id)
        return [len(chosen)] + chosen, len(chosen)

    def requeue_dead_letters(self, ids: Optional[Iterable[int]] = None,
                             priority: int = 0) -> int:
        priority = int(priority)
        tx = self._tx()
        args, predicted = self._dead_args(tx, ids)
        found = self._write(tx, 'requeue', priority, -priority, *args)
        return predicted if found is None else int(found[0])

    def purge_dead_letters(self, ids: Optional[Iterable[int]] = None) -> int:
        tx = self._tx()
        args, predicted = self._dead_args(tx, ids)
        found = self._write(tx, 'purgedead', *args)
        return predicted if found is None else int(found[0])

    # ------------------------------------------------------------------ owners

    def heartbeat(self, ttl_hint: float = 10.0) -> None:
        self._write(self._tx(), 'hb', self.owner_id)

    def owners(self) -> list[OwnerInfo]:
        result = []
        for owner, started, beat in self._read('owners'):
            owner = owner.decode()
            host, pid = parse_owner_id(owner)
            result.append(OwnerInfo(owner, host, pid, opt_float(started), opt_float(beat)))
        result.sort(key=lambda o: o.id)
        return result

    def claim_owners(self) -> dict[str, int]:
        flat = self._read('cowners')
        return {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    def release_owner(self, owner_id: str) -> int:
        owner_id = str(owner_id)
        tx = self._tx()
        if tx is None:
            return int(self._one('relown', owner_id)[0])
        count = self.claim_owners().get(owner_id, 0)
        tx.guard('O', owner_id, count)
        self._write(tx, 'relown', owner_id)
        return count

    def forget_owner(self, owner_id: str) -> bool:
        found = self._write(self._tx(), 'forget', str(owner_id))
        return True if found is None else bool(found[0])

    # ------------------------------------------------------------------ upkeep

    def purge_expired(self) -> int:
        self._refuse_in_transaction('purge_expired')
        return int(self._one('purgeexp')[0])

    def maintenance(self) -> dict[str, Any]:
        """:meth:`purge_expired`; Redis needs no other upkeep (``'vacuumed_pages': 0``,
        ``'checkpoint': None``)."""
        self._refuse_in_transaction('maintenance')
        return {'purged': self.purge_expired(), 'vacuumed_pages': 0, 'checkpoint': None}

    def vacuum(self) -> None:
        """Nothing to compact on Redis (it frees memory as keys are deleted)."""
        self._refuse_in_transaction('vacuum')

    def stats(self) -> dict[str, Any]:
        """The counts of every backend; ``db_size`` is the memory the Redis server uses (all
        its data, not only this queue's), ``wal_size`` its append-only file (0 without one)."""
        ready, claimed, scheduled, results, kv_keys, expired, dead = self._counts()
        try:
            memory = self._client.info('memory')
            persistence = self._client.info('persistence')
        except _rexc.RedisError as exc:
            raise self._error(exc, 'reading stats') from exc
        return {
            'ready': int(ready), 'claimed': int(claimed), 'scheduled': int(scheduled),
            'results': int(results), 'kv_keys': int(kv_keys), 'expired_keys': int(expired),
            'dead_letters': int(dead),
            'db_size': int(memory.get('used_memory', 0)),
            'wal_size': int(persistence.get('aof_current_size', 0) or 0),
            'page_size': 0, 'page_count': 0, 'freelist_count': 0,
            'server': self.address,
        }

    # ------------------------------------------------------------------ whole storage

    def flush_all(self) -> None:
        self._write(self._tx(), 'flushall')
