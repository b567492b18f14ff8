"""Who is dead: owner ids carry their process's PID namespace and boot (its *scope*), so that
a pid is only ever looked up where it means the same process. The same logic
``test_nothing_lost.py::test_consumer_in_another_pid_namespace_is_not_taken_for_dead`` proves
with real namespaces, here without them (any platform)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from sqlq.recovery import LEASE, ClaimRecovery
from sqlq.storage import MemoryStorage
from sqlq.storage._owners import new_owner_id, owner_parts, parse_owner_id, pid_scope

HOST = socket.gethostname()


def _gone_pid():
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    return child.pid


def test_owner_id_names_host_pid_and_scope():
    owner = new_owner_id()
    assert owner_parts(owner) == (HOST, os.getpid(), pid_scope())
    assert parse_owner_id(owner) == (HOST, os.getpid())
    # the older form, without a scope, still parses
    assert owner_parts('%s:%d:0a1b2c3d' % (HOST, 42)) == (HOST, 42, None)
    assert owner_parts('not an owner id') == (None, None, None)
    assert owner_parts('') == (None, None, None)


@pytest.mark.skipif(not os.path.exists('/proc/self/ns/pid'), reason='Linux PID namespaces')
def test_scope_is_shared_by_the_processes_of_one_namespace():
    out = subprocess.run([sys.executable, '-c', 'from sqlq.storage._owners import pid_scope; '
                          'print(pid_scope())'], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == pid_scope()


def test_a_gone_pid_is_dead_at_once_only_in_its_own_scope():
    recovery = ClaimRecovery(MemoryStorage('test'))
    pid, now = _gone_pid(), 1_000_000.0
    here = '%s:%d:0a1b2c3d:%s' % (HOST, pid, pid_scope())
    other = '%s:%d:0a1b2c3d:%s' % (HOST, pid, 'ffffffff' if pid_scope() != 'ffffffff'
                                   else 'eeeeeeee')
    legacy = '%s:%d:0a1b2c3d' % (HOST, pid)
    fresh, stale = now - 1, now - LEASE - 1
    # this namespace: the pid is gone, so is the owner (no lease to wait out)
    assert recovery.owner_is_dead(here, now - 5, fresh, now)
    # another namespace (a container sharing the hostname): the pid means nothing here; the
    # heartbeat decides
    assert not recovery.owner_is_dead(other, now - 5, fresh, now)
    assert recovery.owner_is_dead(other, now - 20, stale, now)
    assert not recovery.owner_is_dead(other, None, None, now)   # never heartbeated
    # an older sqlq's id: checked by pid, as it always was
    assert recovery.owner_is_dead(legacy, now - 5, fresh, now)
    # a live pid of this namespace is alive whatever its heartbeat
    assert not recovery.owner_is_dead('%s:%d:0a1b2c3d:%s' % (HOST, os.getpid(), pid_scope()),
                                      None, stale, now)
