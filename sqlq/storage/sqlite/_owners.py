"""Owners in SQLite storage: the claiming processes (rows of ``owner``, upserted by their
heartbeats), and the release of a dead owner's claims."""
from __future__ import annotations

from sqlq.storage._owners import parse_owner_id
from sqlq.storage.sqlite import _sql
from sqlq.storage.sqlite._transaction import Transactions
from sqlq.storage.types import OwnerInfo


class Owners(Transactions):
    """Heartbeats, the list of owners and their claims, release of a dead owner."""

    def heartbeat(self, ttl_hint: float = 10.0) -> None:
        owner = self.owner_id
        host, pid = parse_owner_id(owner)
        now = self._clock()
        with self._tx() as conn:
            self._do(conn, _sql.HEARTBEAT, (owner, host, pid, now, now))

    def owners(self) -> list[OwnerInfo]:
        result = []
        for owner, host, pid, started_at, heartbeat_at in self._rows(_sql.OWNERS, (self.name,)):
            if host is None and pid is None:
                host, pid = parse_owner_id(owner)
            result.append(OwnerInfo(owner, host, pid, started_at, heartbeat_at))
        return result

    def claim_owners(self) -> dict[str, int]:
        return dict(self._rows(_sql.CLAIM_OWNERS, (self.name,)))

    def release_owner(self, owner_id: str) -> int:
        owner_id = str(owner_id)
        with self._tx() as conn:
            self._do(conn, _sql.RELEASE_OWNER, (owner_id, self.name))
            released: int = conn.changes()
            self._do(conn, _sql.DEREGISTER_OWNER, (owner_id,))
            if released:
                self._touch('q')
            self._do(conn, _sql.FORGET_OWNER, (owner_id, owner_id))
        return released

    def forget_owner(self, owner_id: str) -> bool:
        owner_id = str(owner_id)
        with self._tx() as conn:
            self._do(conn, _sql.FORGET_OWNER, (owner_id, owner_id))
            forgotten: bool = conn.changes() > 0
            return forgotten
