"""Finding claims whose owner is gone and giving their tasks back to the queue.

Every process that claims tasks has an owner id ``host:pid:token:scope`` (its storage's
``owner_id``; the scope names its PID namespace and boot, see :mod:`sqlq.storage._owners`)
and, while it runs a consumer or a worker, refreshes a heartbeat row every
:data:`HEARTBEAT_INTERVAL` seconds. A claim's owner is dead when

- it lives on this host, in this PID namespace, during this boot (same host and scope) and
  its pid no longer runs, or runs a process that started after the owner registered (the pid
  was reused) — detected at once, without waiting for a lease; or
- it lives anywhere else — another host, or another container of this host (a shared
  hostname with another PID namespace, where its pid means nothing here), or before a
  reboot — and its heartbeat is older than :data:`LEASE` seconds.

A worker that is alive but hung keeps its claim: the task's ``timeout`` handles it. Released
messages go back to the ready queue with their ``recoveries`` count raised, and their
``deaths`` count if their claim was recorded as started (``Storage.mark_started``); the queue
quarantines a message (dead letter) whose worker died ``quarantine_after`` times while
running it.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from typing import Dict, List, Optional, Tuple

from .storage._owners import owner_parts, pid_scope
from .storage.base import Storage

logger = logging.getLogger('sqlq.recovery')

#: Seconds between two heartbeats of a live owner.
HEARTBEAT_INTERVAL = 2.0
#: Seconds without a heartbeat after which an owner on another host counts as dead.
LEASE = 8.0

_HOST = socket.gethostname()
_SCOPE: Tuple[int, str] = (-1, '')


def _scope() -> str:
    """This process's :func:`~sqlq.storage._owners.pid_scope` (read again after a fork)."""
    global _SCOPE
    if _SCOPE[0] != os.getpid():
        _SCOPE = (os.getpid(), pid_scope())
    return _SCOPE[1]


def process_started_at(pid: int) -> Optional[float]:
    """Epoch seconds at which process ``pid`` started (Linux), or None if unknown."""
    try:
        with open('/proc/%d/stat' % pid) as fh:
            fields = fh.read().rsplit(')', 1)[1].split()
        with open('/proc/stat') as fh:
            boot = next(float(line.split()[1]) for line in fh if line.startswith('btime'))
        return boot + int(fields[19]) / os.sysconf('SC_CLK_TCK')
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited: its claims are as dead as it is
        with open('/proc/%d/stat' % pid) as fh:
            return fh.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return True


class ClaimRecovery:
    """Releases the claims of dead owners of one queue (of its storage)."""

    def __init__(self, storage: Storage, lease: float = LEASE) -> None:
        self.storage = storage
        self.lease = lease

    def owner_is_dead(self, owner_id: str, started_at: Optional[float],
                      heartbeat_at: Optional[float], now: float) -> bool:
        host, pid, scope = owner_parts(owner_id)
        # An older sqlq's id has no scope: its pid is checked as before.
        if pid is not None and host == _HOST and scope in (None, _scope()):
            if not pid_running(pid):
                return True
            started = process_started_at(pid)
            # Started well after the owner registered: the pid now belongs to someone else.
            return started is not None and started_at is not None and started > started_at + 2
        if heartbeat_at is None:
            return False  # never heartbeated (a script's own dequeue): nothing to go by
        return now - heartbeat_at > self.lease

    def dead_owners(self) -> List[str]:
        storage = self.storage
        claimed = storage.claim_owners()
        if not claimed:
            return []
        info: Dict[str, Tuple[Optional[float], Optional[float]]] = {
            o.id: (o.started_at, o.heartbeat_at) for o in storage.owners()}
        now = time.time()
        return [owner for owner in claimed
                if owner != storage.owner_id
                and self.owner_is_dead(owner, *info.get(owner, (None, None)), now=now)]

    def recover(self) -> int:
        """Return the tasks of dead owners to the queue; how many were released."""
        released = 0
        for owner in self.dead_owners():
            count = self.storage.release_owner(owner)
            if count:
                logger.warning('owner %s is gone: %d claimed task(s) returned to the queue',
                               owner, count)
            released += count
        return released
