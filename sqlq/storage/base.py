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
import time
from typing import (
    Any,
    Callable,
    ContextManager,
    Iterable,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
)

from sqlq.exceptions import TransactionConflict

from ._owners import OwnerId
from .capabilities import BatchClaims, FlagWatch, HandOff, Tracking, Upkeep
from .types import (
    EMPTY,
    TOPICS,
    Claim,
    ClaimedItem,
    Completion,
    DeadLetter,
    Finished,
    HistoryEntry,
    Location,
    OwnerInfo,
    Receipt,
    RunStats,
)

__all__ = ['Storage', 'retry_conflicts', 'CONFLICT_ATTEMPTS',
           # the contract's values, defined in sqlq.storage.types
           'EMPTY', 'TOPICS', 'Claim', 'ClaimedItem', 'Completion', 'DeadLetter', 'OwnerInfo',
           'Receipt', 'Finished', 'HistoryEntry', 'Location', 'RunStats']

T = TypeVar('T')
#: Runs of a transaction that keeps conflicting before :func:`retry_conflicts` gives up.
CONFLICT_ATTEMPTS = 10


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


class Storage(BatchClaims, HandOff, Upkeep, FlagWatch, Tracking, abc.ABC):
    """Byte-level storage of one named queue. Several named queues may share one backend/file.

    The abstract methods below are the core contract every backend implements; the optional
    capabilities (:mod:`sqlq.storage.capabilities`: batch claims, hand-off, upkeep, flag watch,
    tracking) come with defaults built on it.

    A message may be stored with a *key* (the task layer gives its task id): an opaque label
    that a backend which :attr:`~sqlq.storage.capabilities.Tracking.tracks_tasks` indexes
    (and carries along when a claimed message becomes a dead letter and back); others ignore
    it. Keys need not be unique.

    ``clock`` returns the current time as unix epoch seconds; every timestamp the storage
    records (claims, dead letters) and every ttl is measured with it, so tests can inject a
    fake clock. Scheduled-message timestamps are given by the caller and are not compared with
    the clock by the storage. ``flag_prefix``: see :class:`~sqlq.storage.capabilities.FlagWatch`.

    Every method is thread-safe. After :meth:`close` the storage must not be used.
    """

    def __init__(self, name: str = 'sqlq', *, clock: Callable[[], float] = time.time,
                 flag_prefix: Optional[str] = None, **options: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError('queue name must be a non-empty string, not %r' % (name,))
        if flag_prefix is not None and (not isinstance(flag_prefix, str) or not flag_prefix):
            raise ValueError('flag_prefix must be a non-empty string or None, not %r'
                             % (flag_prefix,))
        self.name = name
        self.flag_prefix = flag_prefix
        self._clock = clock
        self._owner = OwnerId()

    def __repr__(self) -> str:
        return '<%s %r>' % (type(self).__name__, self.name)

    @property
    def owner_id(self) -> str:
        """Identifies this process's claims: ``'hostname:pid:random:scope'`` (see
        :mod:`sqlq.storage._owners`); a new one after fork."""
        return self._owner.get()

    # ------------------------------------------------------------------ ready queue

    @abc.abstractmethod
    def enqueue(self, data: bytes, priority: int = 0, key: Optional[str] = None) -> None:
        """Add a ready message. Higher ``priority`` is dequeued first; FIFO within a priority."""

    @abc.abstractmethod
    def enqueue_many(self, items: Iterable[Tuple[bytes, int]],
                     keys: Optional[Sequence[Optional[str]]] = None) -> int:
        """Enqueue ``(data, priority)`` pairs in order, all or none; return how many.
        ``keys``: one key (or None) per item."""

    @abc.abstractmethod
    def dequeue(self) -> Optional[Claim]:
        """Claim the next ready message for :attr:`owner_id`, or return ``None`` if none is ready.

        The message is not deleted: it is counted by :meth:`claimed_size` until the claim is
        settled with :meth:`ack`, :meth:`release` or :meth:`bury`. The claim is recorded as
        started (``Claim.started``, see :meth:`mark_started`): its caller runs it now.
        """

    @abc.abstractmethod
    def mark_started(self, receipt: Any) -> bool:
        """Record that the claimed message's task starts running now.

        A claim recorded as started that is still held when its owner dies counts a *death*
        against its message (``Claim.deaths``, raised by :meth:`release_owner`): the task may
        have killed its process. A claim that never started -- a batch claim
        (:meth:`dequeue_many` with ``limit`` above 1) still waiting in its worker's buffer --
        goes back uncharged. ``False`` (and no change) if the claim is gone. Every release of
        a claim clears its mark.
        """

    @abc.abstractmethod
    def ack(self, receipt: Any) -> bool:
        """Delete the claimed message. ``False`` (and no change) if that claim no longer exists."""

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
    def add_to_schedule(self, data: bytes, timestamp: float, key: Optional[str] = None) -> None:
        """Store a message to be released at ``timestamp`` (unix epoch seconds)."""

    @abc.abstractmethod
    def read_schedule(self, timestamp: float, limit: Optional[int] = None) -> list[bytes]:
        """Atomically remove and return the messages due at or before ``timestamp``: all of
        them, or the first ``limit`` (callers moving a large burst take it in bounded steps).

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
                        enqueued_at: Optional[float] = None, key: Optional[str] = None) -> int:
        """Record a message that was never claimed (e.g. rejected at enqueue time); return its
        id."""

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
        attempt count kept and ``recoveries`` incremented -- ``deaths`` too for a claim
        recorded as started (:meth:`mark_started`); its receipts go stale. Then the owner's
        row is deleted (unless it still holds claims in another queue of the same backend).
        Returns how many messages were released."""

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
