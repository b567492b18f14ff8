"""Storage in one SQLite file, through apsw: :class:`SqliteStorage`. The modules of this
package are the only ones of sqlq that import apsw.

Where each concern lives (``SqliteStorage`` is assembled from one class per concern, each
built on the connection and transaction layers):

==================  ==========================================================================
``_connection``     per-thread connections, pid guard (reopen after fork), busy handler,
                    pragmas, apsw errors -> :class:`~sqlq.exceptions.StorageError`
``_guard``          what SQLite's locking cannot see: another SQLite copy in this process on
                    the file, files other users could write, a deleted file, a full disk
``_schema``         DDL, the identity check (``application_id``), migrations by
                    ``user_version``
``_sql``            every statement on sqlq's tables, as a named constant
``_transaction``    the ``BEGIN IMMEDIATE``/savepoint stack, touched topics, wake-ups after
                    the commit
``_wakeup``         the wake-up channel: a directory of ``AF_UNIX`` datagram sockets
``_wakeup_dir``     where that directory is, socket-name limits, making it private
``_handoff``        worker sessions, idle-worker registration, the hand-off datagram, take-back
``_queue``          the ready queue: enqueue, claims, acks, releases, burials, listings
``_schedule``       scheduled messages
``_kv``             key/value data: results, flags, locks, counters
``_dead_letters``   dead letters
``_owners``         claiming processes and the release of a dead one's claims
``_upkeep``         expired keys, WAL checkpoints, incremental vacuum, statistics
``_wait``           ``wait_for_change``
``storage``         :class:`SqliteStorage` itself: construction, ``flush_all``, ``close``
==================  ==========================================================================

Connections: one per thread (``threading.local``), created on first use, plus a pid guard:
after ``fork`` the child opens fresh connections and never touches (nor closes, nor lets the
garbage collector finalise) the ones it inherited. Every connection runs in WAL mode with the
configured ``synchronous`` and busy timeout.

Transactions: every write runs in ``BEGIN IMMEDIATE`` (a deferred read transaction that later
upgrades to a write fails at once with SQLITE_BUSY in WAL mode instead of waiting for the busy
timeout). :meth:`SqliteStorage.transaction` uses the same mechanism, so storage calls made
inside an application's transaction simply join it; nested blocks become SAVEPOINTs.

Waiting: :meth:`SqliteStorage.wait_for_change` is push-based. Each write method records the
*topics* it changed in its thread's transaction (``'queue'``: a message became ready,
``'schedule'``: a message was scheduled, ``'data'``: key/value data). After the outermost commit
of a transaction that changed rows, the writer sends one wake-up datagram to each thread waiting
on the same file for one of those topics, and to each thread waiting without a topic
(:mod:`sqlq.storage.sqlite._wakeup`: a directory of ``AF_UNIX`` sockets beside the database, or
under the temporary directory). So an idle worker (``'queue'``) is not woken by acks and result
writes, nor a ``Result.get`` waiter (``'data'``) by enqueues. For waits without a topic,
``PRAGMA data_version`` stays the source of truth: a waiter checks it before blocking and once
more on timeout, so a writer that could not notify (another program, notifications unavailable)
is still seen -- at the latest when the wait times out.

Hand-off: worker threads run inside :meth:`SqliteStorage.worker_session`. A single enqueue
that finds its queue with no ready message claims the message for an idle worker in its own
transaction, and after its commit sends the message in that worker's wake-up datagram: the
worker starts it without a claim statement of its own (see ``worker_session``).
"""
from __future__ import annotations

from sqlq.storage.sqlite._connection import BUSY_SPIN as BUSY_SPIN
from sqlq.storage.sqlite._connection import SYNCHRONOUS_MODES as SYNCHRONOUS_MODES
from sqlq.storage.sqlite._handoff import HAND_OFF_MAX as HAND_OFF_MAX
from sqlq.storage.sqlite.storage import SqliteStorage

__all__ = ['SqliteStorage']
