"""The values the storage contract passes around: claims, receipts, listings, EMPTY."""
from __future__ import annotations

import functools
from typing import Any, Dict, NamedTuple, Optional, Tuple

__all__ = ['EMPTY', 'TOPICS', 'Receipt', 'new_receipt', 'Claim', 'ClaimedItem', 'OwnerInfo',
           'DeadLetter', 'Completion', 'Finished', 'HistoryEntry', 'Location', 'RunStats',
           'OUTCOMES', 'DURATION_BUCKETS']

#: Topics of :meth:`~sqlq.storage.base.Storage.wait_for_change`.
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

    def __deepcopy__(self, memo: Dict[int, Any]) -> '_Empty':
        return self


#: Returned by ``Storage.peek_data`` and ``Storage.pop_data`` for a missing (or expired) key.
#: Compare with ``is``: ``b''`` is a valid stored value.
EMPTY = _Empty()


class Receipt(NamedTuple):
    """Settles one claim (:meth:`~sqlq.storage.base.Storage.ack`, ``release``, ``bury``).

    Hashable and picklable. A receipt matches its claim only while the message is still
    claimed by ``owner`` with that attempt count: once the claim is settled or taken over (even
    if the same message was claimed again since), the receipt settles nothing.
    """

    #: The storage's id of the message.
    message_id: int
    #: :attr:`~sqlq.storage.base.Storage.owner_id` of the claiming process.
    owner: str
    #: The message's claim count when it was claimed (what fences older receipts).
    attempts: int

    @classmethod
    def of(cls, value: Any) -> 'Receipt':
        """``value`` (a Receipt, or a tuple of its three fields) as a Receipt; TypeError if it
        is not one."""
        if type(value) is cls:
            return value
        try:
            message_id, owner, attempts = value
            return cls(int(message_id), str(owner), int(attempts))
        except (TypeError, ValueError):
            raise TypeError('not a receipt of this storage: %r' % (value,)) from None


#: ``new_receipt((message_id, owner, attempts))``: a Receipt without the Python frame of the
#: NamedTuple's ``__new__`` (one per claim, on the drain's path).
new_receipt = functools.partial(tuple.__new__, Receipt)


class Claim(NamedTuple):
    """A claimed message, returned by :meth:`~sqlq.storage.base.Storage.dequeue`."""

    #: The message bytes exactly as enqueued.
    data: bytes
    #: Settles this claim.
    receipt: Receipt
    #: How many times this message has been claimed, this claim included (1 the first time).
    attempts: int
    #: How many times the message was taken back from a dead owner (``release_owner``),
    #: whether it had started or not.
    recoveries: int = 0
    #: The priority it was enqueued with.
    priority: int = 0
    #: Its place in FIFO order among messages of one priority (increasing; backend-specific).
    seq: int = 0
    #: Whether a key under the storage's ``flag_prefix`` existed when the claim was made
    #: (``False`` spares the caller a read of those keys); ``None``: not checked (see
    #: :class:`~sqlq.storage.capabilities.FlagWatch`).
    flagged: Optional[bool] = None
    #: Whether the claim was recorded as started when it was made (``dequeue``,
    #: ``dequeue_many(1)``, a hand-off): its owner runs it at once. Otherwise
    #: :meth:`~sqlq.storage.base.Storage.mark_started` records the start.
    started: bool = False
    #: How many times the message's owner died while its claim was recorded as started: the
    #: deaths it may have caused (``recoveries`` also counts the claims taken back unstarted).
    deaths: int = 0


class ClaimedItem(NamedTuple):
    """A claimed (running) message, as listed by ``Storage.claimed_items``."""

    #: The storage's id of the message (stable while it is stored; backend-specific).
    id: int
    data: bytes
    #: :attr:`~sqlq.storage.base.Storage.owner_id` of the process holding the claim.
    owner: str
    #: When the claim was made (the storage's clock).
    claimed_at: float
    #: Claims of this message, this one included.
    attempts: int
    #: Times the message was taken back from a dead owner.
    recoveries: int


class OwnerInfo(NamedTuple):
    """A claiming process, as listed by :meth:`~sqlq.storage.base.Storage.owners`."""

    #: Its :attr:`~sqlq.storage.base.Storage.owner_id` (``'host:pid:random:scope'``).
    id: str
    host: Optional[str]
    pid: Optional[int]
    #: Its first :meth:`~sqlq.storage.base.Storage.heartbeat` (``None`` if it never sent one).
    started_at: Optional[float]
    #: Its last :meth:`~sqlq.storage.base.Storage.heartbeat` (``None`` if it never sent one).
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
    #: The message's key (its task id), if it was stored with one.
    key: Optional[str] = None


#: A finished task's settlement for ``Storage.complete_many``: ``(receipt, result key or None,
#: result value, result ttl)``.
Completion = Tuple[Any, Optional[str], Optional[bytes], Optional[float]]


# ---------------------------------------------------------------------- tracking (history)

#: What a finished run of a task came to (``Finished.outcome``): returned a value, failed for
#: good, failed and will run again, or did not run (revoked, expired, canceled by a hook).
OUTCOMES = ('succeeded', 'failed', 'retried', 'revoked', 'expired', 'canceled')

#: Upper bounds (seconds) of the run-duration buckets of :class:`RunStats`; a last bucket
#: counts the longer runs.
DURATION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Finished(NamedTuple):
    """A run of a task that ended, as the task layer hands it to the history (see
    :class:`~sqlq.storage.capabilities.Tracking`). The backend adds what it knows of the
    claim: enqueued and claimed times, attempts, owner."""

    #: The message's key (the task id).
    key: str
    #: The task's name.
    name: str
    #: One of :data:`OUTCOMES`.
    outcome: str
    #: When the run ended (epoch seconds, the queue's clock).
    finished_at: float
    #: How long the task function ran (None if it did not run).
    duration: Optional[float] = None
    #: A one-line summary of the error, if it failed.
    error: Optional[str] = None


class HistoryEntry(NamedTuple):
    """A finished run, as listed by ``Tracking.history``."""

    #: The entry's id: increasing in the order entries were written.
    id: int
    key: str
    name: str
    outcome: str
    finished_at: float
    duration: Optional[float]
    error: Optional[str]
    #: When the message that ran was enqueued (None if it was never stored).
    enqueued_at: Optional[float]
    #: When it was claimed (None if it was never claimed: immediate mode).
    claimed_at: Optional[float]
    #: Claims of that message, the last one included (0 if never claimed).
    attempts: int
    #: Owner id of the process that ran it (None if unclaimed).
    owner: Optional[str]


class Location(NamedTuple):
    """Where a message with a given key is stored (``Tracking.locate``)."""

    #: ``'claimed'`` (running), ``'ready'``, ``'scheduled'`` or ``'dead'`` (a dead letter).
    state: str
    #: The message's id; for ``'dead'`` the dead letter's id.
    id: int
    data: bytes
    enqueued_at: Optional[float] = None
    #: When a scheduled message is due.
    eta: Optional[float] = None
    owner: Optional[str] = None
    claimed_at: Optional[float] = None
    attempts: int = 0
    recoveries: int = 0
    priority: int = 0
    #: A dead letter's reason and time.
    reason: Optional[str] = None
    failed_at: Optional[float] = None


class RunStats(NamedTuple):
    """Runs of one task name with one outcome, summed (``Tracking.history_stats``)."""

    name: str
    outcome: str
    #: Runs counted.
    runs: int
    #: Sum of their durations (seconds).
    seconds: float
    #: Runs per duration bucket (:data:`DURATION_BUCKETS`, then one for longer runs); runs
    #: without a duration are in ``count`` only.
    buckets: Tuple[int, ...]
    #: The minute (epoch seconds, a multiple of 60) they ended in; None when summed over a
    #: whole period.
    minute: Optional[float] = None
