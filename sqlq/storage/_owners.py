"""Owner ids: which process holds a claim.

An owner id is ``'host:pid:random:scope'``: made once per process (a forked child makes its
own), and parsed back into host, pid and scope for the liveness checks of dead-owner recovery.

A pid means something only in its PID namespace, during one boot: two containers sharing a
hostname (host network, a pod) each have a pid 7, and after a reboot every pid is another
process. The *scope* (:func:`pid_scope`) names the PID namespace and the boot, so that a pid is
only ever looked up by a process that shares both; anyone else judges the owner by its
heartbeat. Ids of the older form ``'host:pid:random'`` (without a scope: written by an older
sqlq) parse with scope None.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import socket
import threading
from typing import NamedTuple, Optional, Tuple

__all__ = ['OwnerId', 'OwnerParts', 'new_owner_id', 'parse_owner_id', 'owner_parts',
           'pid_scope']


def pid_scope() -> str:
    """This process's PID namespace and boot, as 8 hex digits: equal for two processes exactly
    when a pid means the same process to both (Linux: ``/proc/self/ns/pid`` and the kernel's
    ``boot_id``). Where neither can be read (not Linux), every process of a machine has the
    same scope: they compare pids, as they did before scopes."""
    parts = []
    for path, read in (('/proc/sys/kernel/random/boot_id', _read_text),
                       ('/proc/self/ns/pid', os.readlink)):
        try:
            parts.append(read(path).strip())
        except OSError:
            parts.append('')
    return hashlib.sha256('|'.join(parts).encode()).hexdigest()[:8]


def _read_text(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def new_owner_id() -> str:
    """A fresh owner id for this process."""
    return '%s:%d:%s:%s' % (socket.gethostname(), os.getpid(), secrets.token_hex(4),
                            pid_scope())


class OwnerParts(NamedTuple):
    """What an owner id says about its process."""

    host: Optional[str]
    pid: Optional[int]
    #: Its PID namespace and boot (:func:`pid_scope`); None for an id of the older form.
    scope: Optional[str]


_HEX = frozenset('0123456789abcdef')


def owner_parts(owner_id: str) -> OwnerParts:
    """Host, pid and scope of an owner id made by :func:`new_owner_id` (or by an older sqlq,
    scope None); all None if it is of neither form."""
    fields = str(owner_id).split(':')
    scope: Optional[str] = None
    if len(fields) >= 4 and len(fields[-1]) == 8 and set(fields[-1]) <= _HEX \
            and fields[-3].isdigit():
        scope = fields[-1]
        fields = fields[:-1]
    if len(fields) < 3 or not fields[-2].isdigit() or not ':'.join(fields[:-2]):
        return OwnerParts(None, None, None)
    return OwnerParts(':'.join(fields[:-2]), int(fields[-2]), scope)


def parse_owner_id(owner_id: str) -> Tuple[Optional[str], Optional[int]]:
    """``(host, pid)`` of an owner id (see :func:`owner_parts`), ``(None, None)`` if it is not
    of that form."""
    parts = owner_parts(owner_id)
    return parts.host, parts.pid


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
