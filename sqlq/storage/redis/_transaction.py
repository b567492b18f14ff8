"""The buffer of an optimistic transaction: its writes, and the guards of its reads.

:meth:`RedisStorage.transaction` applies a block's writes, at the end of the outermost block,
in one script run, which first re-checks every guard: a fact a read of server state inside
the block relied on (a claim still held with the receipt's fencing token, a key still holding
the value read, a scheduled message still there, a ready message still ready...). If one no
longer holds, nothing is applied and the commit raises
:class:`~sqlq.exceptions.TransactionConflict`.
"""
from __future__ import annotations

from typing import Any, Optional

from sqlq.storage.redis._args import NO_ARG


class _Tx:
    """The buffered writes and the guards of one thread's open transaction."""

    def __init__(self) -> None:
        self.ops: list[Any] = []
        self.guards: list[Any] = []
        #: key -> (value or None if deleted, expires_at or None) as written by this block.
        self.kv: dict[str, tuple[Optional[bytes], Optional[float]]] = {}
        #: key -> value or None, as read from the server (each read is guarded once).
        self.read: dict[str, Optional[bytes]] = {}
        #: message id -> (owner, attempts, still held) for claims this block took or settled.
        self.claims: dict[int, tuple[str, int, bool]] = {}
        self.savepoints: list[tuple[Any, ...]] = []

    def save(self) -> None:
        self.savepoints.append((len(self.ops), len(self.guards), dict(self.kv),
                                dict(self.read), dict(self.claims)))

    def restore(self) -> None:
        n_ops, n_guards, self.kv, self.read, self.claims = self.savepoints.pop()
        del self.ops[n_ops:]
        del self.guards[n_guards:]

    def guard(self, kind: str, a: Any, b: Any = NO_ARG, c: Any = NO_ARG) -> None:
        self.guards.append((kind, a, b, c))


def describe_guard(kind: bytes | str, a: Any) -> str:
    """What a failed guard found changed, for the conflict's message."""
    kind = kind.decode() if isinstance(kind, bytes) else kind
    return {
        'C': 'the claim of message %s (taken over by another owner)',
        'R': 'ready message %s (claimed by someone else)',
        'K': 'key %r',
        'S': 'scheduled message %s (moved by another consumer)',
        'D': 'dead letter %s',
        'O': 'the claims of owner %s',
    }.get(kind, 'guard %s') % (a,)
