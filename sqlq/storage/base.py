"""The storage contract every sqlq backend implements.

Storage is *bytes in, bytes out*: it never serializes, decodes or interprets a message. The task
layer and the consumer talk to a backend only through :class:`Storage`, so a backend (SQLite,
memory, later Redis) can be swapped without touching them.

One :class:`Storage` instance serves one *named queue*. Several named queues may share one
backend (one SQLite file, one Redis server): every method only ever sees and changes the data of
its own ``name``.

Delivery model
--------------
A message is *ready* after :meth:`Storage.enqueue`. :meth:`Storage.dequeue` *claims* the next
ready message (highest priority first, FIFO within a priority) and returns a :class:`Claim`; the
message stays stored, invisible to other dequeues, until its claim is settled by exactly one of

* :meth:`Storage.ack` -- done, delete it;
* :meth:`Storage.release` -- give it back, at its original place in the ready order;
* :meth:`Storage.bury` -- move it to the dead letters with a reason.

Settling is *fenced* by the claim's receipt: a receipt only settles the claim it came from. Once
that claim is gone (settled, or -- with leases -- reclaimed by someone else, even if the same
message was claimed again since) the call returns ``False`` and changes nothing.
"""
from __future__ import annotations

import abc
import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from typing import (Any, Callable, ContextManager, Iterable, NamedTuple, Optional, Sequence,
                    TypeVar)

from sqlq.exceptions import TransactionConflict

T = TypeVar('T')
#: Runs of a transaction that keeps conflicting before :func:`retry_conflicts` gives up.
CONFLICT_ATTEMPTS = 10

__all__ = ['EMPTY', 'TOPICS', 'Claim', 'ClaimedItem', 'DeadLetter', 'OwnerInfo', 'Storage']

#: Topics of :meth:`Storage.wait_for_change`.
TOPICS = ('queue', 'schedule', 'data')


class _Empty:
    """Type of :data:`EMPTY`; there is exactly one instance."""

    _instance: Optional['_Empty'] = None

    def __new__(cls) -> '_Empty':
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return '<EMPTY>'

    def __reduce__(self) -> str:  # pickles as the module attribute: stays a singleton
        return 'EMPTY'

    def __copy__(self) -> '_Empty':
        return self

    def __deepcopy__(self, memo: dict) -> '_Empty':
        return self


#: Returned by :meth:`Storage.peek_data` and :meth:`Storage.pop_data` for a missing (or expired)
#: key. Compare with ``is``: ``b''`` is a valid stored value.
EMPTY = _Empty()


class Claim(NamedTuple):
    """A claimed message, returned by :meth:`Storage.dequeue`."""

    #: The message bytes exactly as enqueued.
    data: bytes
    #: Opaque, hashable, picklable token for :meth:`~Storage.ack`, :meth:`~Storage.release` and
    #: :meth:`~Storage.bury`. Its form is backend-specific; never build or inspect one.
    receipt: Any
    #: How many times this message has been claimed, this claim included (1 the first time).
    attempts: int
    #: How many times the message was taken back from a dead owner (:meth:`Storage.release_owner`).
    recoveries: int = 0
    #: The priority it was enqueued with.
    priority: int = 0
    #: Its place in FIFO order among messages of one priority (increasing; backend-specific).
    seq: int = 0
    #: Whether a data key starting with the ``flag_prefix`` given to
    #: :meth:`Storage.dequeue_many` existed when the claim was made (``False`` spares the
    #: caller a read of those keys); ``None``: not checked.
    flagged: Optional[bool] = None


class ClaimedItem(NamedTuple):
    """A claimed (running) message, as listed by :meth:`Storage.claimed_items`."""

    #: The storage's id of the message (stable while it is stored; backend-specific).
    id: int
    data: bytes
    #: :attr:`Storage.owner_id` of the process holding the claim.
    owner: str
    #: When the claim was made (the storage's clock).
    claimed_at: float
    #: Claims of this message, this one included.
    attempts: int
    #: Times the message was taken back from a dead owner.
    recoveries: int


class OwnerInfo(NamedTuple):
    """A claiming process, as listed by :meth:`Storage.owners`."""

    #: Its :attr:`Storage.owner_id` (``'host:pid:random'``).
    id: str
    host: Optional[str]
    pid: Optional[int]
    #: Its first :meth:`Storage.heartbeat` (``None`` if it never sent one).
    started_at: Optional[float]
    #: Its last :meth:`Storage.heartbeat` (``None`` if it never sent one).
    heartbeat_at: Optional[float]


class DeadLetter(NamedTuple):
    """A message that could not be processed, kept so that nothing is ever lost silently."""

    id: int
    data: bytes
    reason: str
    #: Unix epoch seconds (from the storage's clock) when it was buried / added.
    failed_at: float
    #: Times the message had been claimed when it was buried (0 if it never was).
    attempts: int
    #: When the message was enqueued (``None`` if it never was, e.g. rejected at enqueue time).
    enqueued_at: Optional[float] = None


def as_bytes(data: Any) -> bytes:
    """``data`` as bytes; TypeError naming the type if it is not bytes-like."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError('storage stores bytes, not %s' % type(data).__name__)


def parse_counter(key: str, value: Any) -> int:
    """The integer a counter key holds; ValueError naming the key if it holds something else."""
    try:
        return int(bytes(value).decode('ascii'))
    except (TypeError, UnicodeDecodeError, ValueError):
        raise ValueError('key %r does not hold an integer: %r' % (key, value[:40])) from None


def unpack_receipt(receipt: Any) -> tuple[int, str, int]:
    """``(message id, owner, attempts)`` of a receipt of the backends that use that form."""
    try:
        msg_id, owner, attempts = receipt
        return int(msg_id), str(owner), int(attempts)
    except (TypeError, ValueError):
        raise TypeError('not a receipt of this storage: %r' % (receipt,)) from None


def retry_conflicts(commit: Callable[[], T], attempts: int = CONFLICT_ATTEMPTS) -> T:
    """``commit()`` -- which runs one outermost transaction -- again if the backend reports a
    :class:`~sqlq.exceptions.TransactionConflict` (nothing of it was applied), up to
    ``attempts`` runs in all. Inside an enclosing transaction the conflict surfaces at the
    enclosing commit instead, so only the outermost block is ever re-run."""
    for attempt in range(attempts):
        try:
            return commit()
        except TransactionConflict:
            if attempt + 1 == attempts:
                raise
    raise AssertionError('unreachable')


#: Serialises the creation of owner ids; a new one in a forked child (a fork may happen while
#: another thread holds it).
_OWNER_LOCK = threading.Lock()


def _new_owner_lock() -> None:
    global _OWNER_LOCK
    _OWNER_LOCK = threading.Lock()


if hasattr(os, 'register_at_fork'):
    os.register_at_fork(after_in_child=_new_owner_lock)


def warn_hand_offs_kept(exc: BaseException) -> None:
    """Log that a worker session could not release the messages handed to it."""
    logging.getLogger('sqlq.storage').warning(
        'could not release the messages handed to this worker (%s): dead-owner recovery will '
        'return them when this process ends', exc)


def _new_owner_id() -> str:
    return '%s:%d:%s' % (socket.gethostname(), os.getpid(), secrets.token_hex(4))


def parse_owner_id(owner_id: str) -> tuple[Optional[str], Optional[int]]:
    """``(host, pid)`` of an owner id made by :attr:`Storage.owner_id`, ``(None, None)`` if it
    is not of that form."""
    host, sep, rest = str(owner_id).rpartition(':')
    host, sep2, pid = host.rpartition(':')
    if not sep or not sep2 or not host or not pid.isdigit():
        return None, None
    return host, int(pid)


class Storage(abc.ABC):
    """Byte-level storage of one named queue. Several named queues may share one backend/file.

    ``clock`` returns the current time as unix epoch seconds; every timestamp the storage
    records (claims, dead letters) and every ttl is measured with it, so tests can inject a
    fake clock. Scheduled-message timestamps are given by the caller and are not compared with
    the clock by the storage.

    Every method is thread-safe. After :meth:`close` the storage must not be used.
    """

    #: Whether several storage calls cost less inside one :meth:`transaction` than made one
    #: by one (SQLite: one commit instead of many). False for backends whose every call is
    #: atomic on its own and whose transactions cost extra reads (Redis): workers then commit
    #: a group of outcomes and claim their next tasks as separate calls.
    batch_in_transaction: bool = True

    def __init__(self, name: str = 'sqlq', *, clock: Callable[[], float] = time.time,
                 **options: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError('queue name must be a non-empty string, not %r' % (name,))
        self.name = name
        self._clock = clock
        self._owner_pid = -1
        self._owner_id = ''

    def __repr__(self) -> str:
        return '<%s %r>' % (type(self).__name__, self.name)

    @property
    def owner_id(self) -> str:
        """Identifies this process's claims: ``'hostname:pid:random'``; a new one after fork."""
        pid = os.getpid()
        if pid != self._owner_pid:
            # Threads of a new process (a worker and its heartbeat) ask at the same time: all
            # must get the same id.
            with _OWNER_LOCK:
                if pid != self._owner_pid:
                    self._owner_id = _new_owner_id()
                    self._owner_pid = pid
        return self._owner_id

    # ------------------------------------------------------------------ ready queue

    @abc.abstractmethod
    def enqueue(self, data: bytes, priority: int = 0) -> None:
        """Add a ready message. Higher ``priority`` is dequeued first; FIFO within a priority."""

    @abc.abstractmethod
    def enqueue_many(self, items: Iterable[tuple[bytes, int]]) -> int:
        """Enqueue ``(data, priority)`` pairs in order, all or none; return how many."""

    @abc.abstractmethod
    def dequeue(self) -> Optional[Claim]:
        """Claim the next ready message for :attr:`owner_id`, or return ``None`` if none is ready.

        The message is not deleted: it is counted by :meth:`claimed_size` until the claim is
        settled with :meth:`ack`, :meth:`release` or :meth:`bury`.
        """

    def dequeue_many(self, limit: int, flag_prefix: Optional[str] = None) -> list[Claim]:
        """Claim up to ``limit`` ready messages at once (fewer if fewer are ready).

        The claims are those that ``limit`` calls of :meth:`dequeue` would make, made in one
        step; their order in the list is unspecified: run them in ``(-priority, seq)`` order.
        ``flag_prefix``: a backend that can tell cheaply sets each claim's
        :attr:`~Claim.flagged` (whether any key starting with it existed at the claim).
        """
        claims: list[Claim] = []
        with self.transaction():
            while len(claims) < limit:
                claim = self.dequeue()
                if claim is None:
                    break
                claims.append(claim)
        return claims

    def worker_session(self) -> ContextManager[None]:
        """Mark the calling thread as a worker for the duration of the ``with`` block: it claims
        with :meth:`dequeue_many` and, when that finds nothing, waits with
        ``wait_for_change(timeout, 'queue')``.

        A backend may then hand it new messages directly: SQLite lets a producer that finds
        the queue empty claim its message for an idle worker in the enqueue's own transaction
        and send it along with the wake-up, so the worker skips its claim. Such messages come
        out of the worker's next :meth:`dequeue_many` like any claim. When the block exits,
        messages handed to the thread that it still holds are released: settle (or release)
        the claims it returned before leaving the block. The default does nothing.
        """
        return contextlib.nullcontext()

    def release_unstarted(self, receipts: Iterable[Any]) -> int:
        """Give back several claims whose messages never started running, in one step.

        Each is released (:meth:`release`): ready again at its place; its claim still counts in
        ``attempts``, which is also what fences a receipt (so an old receipt never matches a
        later claim). Claims already gone are skipped; returns how many were given back.
        """
        released = 0
        with self.transaction():
            for receipt in receipts:
                released += self.release(receipt)
        return released

    @abc.abstractmethod
    def ack(self, receipt: Any) -> bool:
        """Delete the claimed message. ``False`` (and no change) if that claim no longer exists."""

    def complete_many(self, items: Sequence[tuple[Any, Optional[str], Optional[bytes],
                                                  Optional[float]]]) -> list[bool]:
        """Settle claims of finished tasks in one step: for each ``(receipt, key, value, ttl)``,
        :meth:`ack` the claim and, if it was held, store ``value`` under ``key`` as a result
        (``is_result=True``, ``ttl``), unless ``key`` is None. Returns, per item, whether its
        claim was held; an item whose claim is gone changes nothing. All or none."""
        held = []
        with self.transaction():
            for receipt, key, value, ttl in items:
                ok = self.ack(receipt)
                if ok and key is not None:
                    self.put_data(key, value, is_result=True, ttl=ttl)  # type: ignore[arg-type]
                held.append(ok)
        return held

    @abc.abstractmethod
    def release(self, receipt: Any) -> bool:
        """Make the claimed message ready again, at its original priority and FIFO position.

        Its attempt count is kept (the next claim reports one more). ``False`` if the claim is
        gone.
        """

    @abc.abstractmethod
    def bury(self, receipt: Any, reason: str) -> bool:
        """Atomically move the claimed message to the dead letters with ``reason``.

        The dead letter records the claim's attempt count and the current time. ``False`` (and
        no change) if the claim is gone.
        """

    @abc.abstractmethod
    def queue_size(self) -> int:
        """Number of ready (unclaimed) messages."""

    @abc.abstractmethod
    def claimed_size(self) -> int:
        """Number of claimed (running) messages."""

    @abc.abstractmethod
    def enqueued_items(self, limit: Optional[int] = None) -> list[bytes]:
        """Ready messages in dequeue order (at most ``limit``)."""

    @abc.abstractmethod
    def claimed_items(self) -> list[ClaimedItem]:
        """Every claimed message, oldest claim first."""

    @abc.abstractmethod
    def flush_queue(self) -> None:
        """Remove every ready and claimed message of this queue (outstanding receipts go stale)."""

    # ------------------------------------------------------------------ schedule

    @abc.abstractmethod
    def add_to_schedule(self, data: bytes, timestamp: float) -> None:
        """Store a message to be released at ``timestamp`` (unix epoch seconds)."""

    @abc.abstractmethod
    def read_schedule(self, timestamp: float) -> list[bytes]:
        """Atomically remove and return every message due at or before ``timestamp``.

        Ordered by timestamp, then insertion order. Each message is returned to exactly one
        caller, however many call concurrently.
        """

    @abc.abstractmethod
    def next_scheduled_time(self) -> Optional[float]:
        """The earliest scheduled timestamp, or ``None`` if nothing is scheduled."""

    @abc.abstractmethod
    def scheduled_items(self, limit: Optional[int] = None) -> list[bytes]:
        """Scheduled messages in (timestamp, insertion) order, at most ``limit``."""

    @abc.abstractmethod
    def schedule_size(self) -> int:
        """Number of scheduled messages."""

    @abc.abstractmethod
    def flush_schedule(self) -> None:
        """Remove every scheduled message of this queue."""

    # ------------------------------------------------------------------ key/value
    # ``ttl`` is in seconds from ``clock()``; ``None`` means no expiry. A key whose ttl has run
    # out is invisible to every method (as if deleted) and is deleted lazily.

    @abc.abstractmethod
    def put_data(self, key: str, value: bytes, is_result: bool = False,
                 ttl: Optional[float] = None) -> None:
        """Store ``value`` under ``key``, replacing any value, flag and ttl it had.

        ``is_result`` marks task results (see :meth:`result_items`, :meth:`flush_results`).
        """

    @abc.abstractmethod
    def peek_data(self, key: str) -> Any:
        """The value stored under ``key``, or :data:`EMPTY`."""

    def peek_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The live values of those of ``keys`` that have one (a backend may do it in one
        round trip)."""
        found = {}
        for key in keys:
            value = self.peek_data(key)
            if value is not EMPTY:
                found[key] = value
        return found

    @abc.abstractmethod
    def pop_data(self, key: str) -> Any:
        """Atomically read and delete ``key``: its value, or :data:`EMPTY`.

        Of several concurrent callers only one gets the value.
        """

    @abc.abstractmethod
    def delete_data(self, key: str) -> bool:
        """Delete ``key``; ``True`` if a live value was deleted."""

    @abc.abstractmethod
    def has_data_for_key(self, key: str) -> bool:
        """``True`` if ``key`` holds a live value."""

    @abc.abstractmethod
    def put_if_empty(self, key: str, value: bytes, ttl: Optional[float] = None) -> bool:
        """Atomically store ``value`` if ``key`` holds no live value; ``True`` if written.

        The key is stored as a non-result key (used for locks).
        """

    @abc.abstractmethod
    def incr(self, key: str, amount: int = 1, ttl: Optional[float] = None) -> int:
        """Atomically add ``amount`` to the integer counter at ``key``; return the new value.

        A missing (or expired) key counts from 0 and is created with ``ttl``; incrementing an
        existing key keeps its expiry (a fixed window). The value is stored as ASCII digits
        (``b'-3'``), readable with :meth:`peek_data`. ``ValueError`` if ``key`` holds
        something that is not an integer.
        """

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every key starting with ``prefix`` (literally: no wildcards); return how many
        live keys were deleted."""

    @abc.abstractmethod
    def result_store_size(self) -> int:
        """Number of live keys stored with ``is_result=True``."""

    @abc.abstractmethod
    def result_items(self) -> dict[str, bytes]:
        """Every live ``is_result`` key and its value."""

    @abc.abstractmethod
    def flush_results(self) -> None:
        """Delete every ``is_result`` key of this queue (other keys are kept)."""

    # ------------------------------------------------------------------ dead letters

    @abc.abstractmethod
    def add_dead_letter(self, data: bytes, reason: str, attempts: int = 0,
                        enqueued_at: Optional[float] = None) -> int:
        """Record a message that was never claimed (e.g. rejected at enqueue time); return its id."""

    @abc.abstractmethod
    def dead_letters(self, limit: Optional[int] = None) -> list[DeadLetter]:
        """Dead letters, oldest first, at most ``limit``."""

    @abc.abstractmethod
    def dead_letter(self, id: int) -> Optional[DeadLetter]:
        """The dead letter ``id`` of this queue, or ``None``."""

    @abc.abstractmethod
    def dead_letter_count(self) -> int:
        """Number of dead letters."""

    @abc.abstractmethod
    def requeue_dead_letters(self, ids: Optional[Iterable[int]] = None,
                             priority: int = 0) -> int:
        """Move dead letters (all if ``ids`` is ``None``) back to the ready queue.

        They are enqueued in dead-letter order at the end of ``priority``'s FIFO, with a fresh
        attempt count. Unknown ids are ignored. Returns how many were moved.
        """

    @abc.abstractmethod
    def purge_dead_letters(self, ids: Optional[Iterable[int]] = None) -> int:
        """Delete dead letters (all if ``ids`` is ``None``); return how many."""

    # ------------------------------------------------------------------ owners
    # An owner is a claiming process (:attr:`owner_id`). It proves it is alive with
    # :meth:`heartbeat`; when it is dead, :meth:`release_owner` gives its claims back.

    @abc.abstractmethod
    def heartbeat(self, ttl_hint: float = 10.0) -> None:
        """Record that :attr:`owner_id` is alive now (its owner row: host, pid, first and last
        heartbeat). ``ttl_hint``: how long the caller considers a heartbeat fresh (a backend
        with expiring keys may use it; SQLite and memory keep rows until released/forgotten).
        """

    @abc.abstractmethod
    def owners(self) -> list[OwnerInfo]:
        """Owners that sent a heartbeat (of any queue of the backend) or hold claims in this
        queue, by id. An owner with claims but no heartbeat has ``None`` times (host and pid
        are parsed from its id when possible)."""

    @abc.abstractmethod
    def claim_owners(self) -> dict[str, int]:
        """Owner id -> number of messages of this queue it has claimed."""

    @abc.abstractmethod
    def release_owner(self, owner_id: str) -> int:
        """Atomically give back every message of this queue claimed by ``owner_id`` (a dead
        process): each becomes ready at its original priority and FIFO position, with its
        attempt count kept and ``recoveries`` incremented; its receipts go stale. Then the
        owner's row is deleted (unless it still holds claims in another queue of the same
        backend). Returns how many messages were released."""

    @abc.abstractmethod
    def forget_owner(self, owner_id: str) -> bool:
        """Delete the row of an owner that holds no claims (cleanup after it stopped); ``True``
        if deleted. An owner that still holds claims (in any queue) is kept: use
        :meth:`release_owner`."""

    # ------------------------------------------------------------------ upkeep

    @abc.abstractmethod
    def purge_expired(self) -> int:
        """Delete this queue's expired keys (results never read, stale locks); return how many."""

    @abc.abstractmethod
    def maintenance(self) -> dict[str, Any]:
        """Bounded, non-blocking upkeep: :meth:`purge_expired`, then (SQLite) return a bounded
        number of free pages to the file system and checkpoint/truncate the WAL unless another
        connection is busy with it. Returns what was done (backend-specific keys; always
        ``'purged'``)."""

    def defer_checkpoints(self, deferred: bool = True) -> None:
        """While ``deferred``, this process's writers leave folding their write-ahead log into
        the database to :meth:`checkpoint` calls (the consumer makes them from a background
        thread), so that no commit on a task's path waits for it. No-op without such a log."""

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the database as far as possible without waiting for
        other connections. No-op without such a log."""

    @abc.abstractmethod
    def vacuum(self) -> None:
        """Rebuild the backend compactly (SQLite: full ``VACUUM``). Needs exclusive access for
        its whole duration: other writers wait (or time out) meanwhile. Not inside
        :meth:`transaction`."""

    @abc.abstractmethod
    def stats(self) -> dict[str, Any]:
        """Counts of this queue: ``ready``, ``claimed``, ``scheduled``, ``results`` (live),
        ``kv_keys`` (live), ``expired_keys`` (awaiting :meth:`purge_expired`),
        ``dead_letters``; and sizes of the backend: ``db_size``, ``wal_size`` (bytes),
        ``page_size``, ``page_count``, ``freelist_count`` (0 where meaningless)."""

    # ------------------------------------------------------------------ whole storage

    @abc.abstractmethod
    def flush_all(self) -> None:
        """Delete everything of this queue: messages, schedule, keys and dead letters."""

    @abc.abstractmethod
    def transaction(self) -> ContextManager[Any]:
        """Group storage calls made in this thread into one atomic unit.

        Every storage call made inside the ``with`` block, in this thread, commits when the
        outermost block exits normally, or is rolled back (enqueues included) when an exception
        leaves the block; the exception is re-raised. Blocks nest: an exception leaving an inner
        block undoes only that block. Other threads and processes never see a partial
        transaction. Yields the backend connection (the ``apsw.Connection`` for SQLite, so the
        application can write its own tables in the same transaction; ``None`` in memory).
        """

    @abc.abstractmethod
    def wait_for_change(self, timeout: float, topic: Optional[str] = None) -> bool:
        """Block up to ``timeout`` seconds until another writer may have committed something.

        ``True`` if a change was seen (it may be unrelated to this queue), ``False`` on timeout.
        Must not be called inside :meth:`transaction`.

        ``topic`` (one of :data:`TOPICS`) narrows what wakes the caller: ``'queue'`` -- a
        message became ready (enqueue, enqueue_many, release, release_owner, requeue of dead
        letters); ``'schedule'`` -- add_to_schedule; ``'data'`` -- key/value writes (results,
        put_data, put_if_empty, incr, pop/delete). A backend may still wake a topic waiter for
        other changes (spurious wake-ups are allowed, lost ones are not). ``None``: any commit
        except a claim (:meth:`dequeue`/:meth:`dequeue_many` change nothing a waiter waits
        for, and waking waiters would sit on the path of every task's start).

        Race-free protocol for a topic: loop { check the data; ``wait_for_change(t, topic)`` }.
        A backend guarantees that a change made after the previous call for this (thread,
        topic) returned -- in particular between the caller's check and this call -- makes
        this call return ``True`` at once; the first call of a thread for a topic may return
        ``True`` at once (it starts tracking there), so the caller re-checks after it.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the backend's resources. Idempotent."""

    def __enter__(self) -> 'Storage':
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
