"""Owner ids: which process holds a claim.

An owner id is ``'host:pid:random'``: made once per process (a forked child makes its own), and
parsed back into host and pid for the liveness checks of dead-owner recovery.
"""
from __future__ import annotations

import os
import secrets
import socket
import threading
from typing import Optional, Tuple

__all__ = ['OwnerId', 'new_owner_id', 'parse_owner_id']


def new_owner_id() -> str:
    """A fresh owner id for this process."""
    return '%s:%d:%s' % (socket.gethostname(), os.getpid(), secrets.token_hex(4))


def parse_owner_id(owner_id: str) -> Tuple[Optional[str], Optional[int]]:
    """``(host, pid)`` of an owner id made by :func:`new_owner_id`, ``(None, None)`` if it is
    not of that form."""
    host, sep, rest = str(owner_id).rpartition(':')
    host, sep2, pid = host.rpartition(':')
    if not sep or not sep2 or not host or not pid.isdigit():
        return None, None
    return host, int(pid)


#: Serialises the creation of owner ids; a new one in a forked child (a fork may happen while
#: another thread holds it).
_LOCK = threading.Lock()


def _new_lock() -> None:
    global _LOCK
    _LOCK = threading.Lock()


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_new_lock)


class OwnerId:
    """The owner id of one storage instance in the current process (a new one after fork)."""

    def __init__(self) -> None:
        self._pid = -1
        self._id = ''

    def get(self) -> str:
        """This process's owner id."""
        pid = os.getpid()
        if pid != self._pid:
            # Threads of a new process (a worker and its heartbeat) ask at the same time: all
            # must get the same id.
            with _LOCK:
                if pid != self._pid:
                    self._id = new_owner_id()
                    self._pid = pid
        return self._id
