"""One delivery of a task to a worker: the claim's state, apart from the task itself.

A :class:`~sqlq.task.Task` is what was enqueued (function, arguments, options). A
:class:`Delivery` is one claim of it by a worker: the receipt that settles the claim, how many
times the message was claimed and recovered, the revoke flags read with the claim, and when the
run started. A retried task is delivered again, with a new Delivery.
"""
from __future__ import annotations

import contextvars
import time
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

if TYPE_CHECKING:  # pragma: no cover
    from .storage.base import Claim
    from .task import Task
    from .tracing import ExecutionSpan

__all__ = ['Delivery', 'running_delivery', 'mark_running', 'unmark_running']

#: Revoke flags read together with a batch of claims: (monotonic time of the read,
#: {key: raw flag}).
RevokeFlags = Tuple[float, Dict[str, bytes]]


class Delivery:
    """A task as a worker received it (or as it runs locally, unclaimed: ``receipt`` None)."""

    __slots__ = ('task', 'receipt', 'attempts', 'recoveries', 'priority', 'seq',
                 'revoke_flags', 'started', 'start_recorded', 'ran', 'span')

    def __init__(self, task: 'Task', receipt: Any = None, attempts: int = 0,
                 recoveries: int = 0, priority: int = 0, seq: int = 0,
                 start_recorded: bool = False) -> None:
        self.task = task
        #: Settles the claim (storage receipt); None once settled, or if never claimed.
        self.receipt = receipt
        #: Claims of the message, this one included (0 if never claimed).
        self.attempts = attempts
        #: Times the message was taken back from a dead worker.
        self.recoveries = recoveries
        #: The claim's place in the run order (highest priority, then lowest seq).
        self.priority = priority
        self.seq = seq
        #: Revoke flags prefetched with the claim (see ``Revocations.prefetch``), or None.
        self.revoke_flags: Optional[RevokeFlags] = None
        #: ``time.monotonic()`` when the task function started, while it runs.
        self.started: Optional[float] = None
        #: Whether the storage records the claim as started (``Storage.mark_started``): if
        #: its process dies while it runs, the death counts against it.
        self.start_recorded = start_recorded
        #: How long the task function ran (seconds), once it returned or raised.
        self.ran: Optional[float] = None
        #: The attempt's tracing span (``sqlq.tracing``), while it is traced.
        self.span: Optional['ExecutionSpan'] = None

    @classmethod
    def of_claim(cls, task: 'Task', claim: 'Claim') -> 'Delivery':
        """The delivery of ``task`` by a storage claim."""
        return cls(task, claim.receipt, claim.attempts, claim.recoveries, claim.priority,
                   claim.seq, claim.started)

    def time_remaining(self) -> Optional[float]:
        """Seconds left before the task's timeout (None without a timeout or before its run)."""
        timeout = self.task.options.timeout
        if timeout is None or self.started is None:
            return None
        return timeout - (time.monotonic() - self.started)

    def __repr__(self) -> str:
        return '<Delivery %r attempt %d>' % (self.task, self.attempts)


#: The delivery whose task function runs in this thread (or greenlet), if any.
_RUNNING: contextvars.ContextVar[Optional[Delivery]] = contextvars.ContextVar(
    'sqlq_running_delivery', default=None)


def running_delivery() -> Optional[Delivery]:
    """The delivery whose task function is running in the calling context, or None."""
    return _RUNNING.get()


def mark_running(delivery: Delivery) -> 'contextvars.Token[Optional[Delivery]]':
    """Mark ``delivery`` as running in this context from now (its start time); returns what
    :func:`unmark_running` needs."""
    delivery.started = time.monotonic()
    return _RUNNING.set(delivery)


def unmark_running(delivery: Delivery, token: 'contextvars.Token[Optional[Delivery]]') -> None:
    """The end of ``delivery``'s run in this context (its duration: ``delivery.ran``)."""
    _RUNNING.reset(token)
    started = delivery.started
    if started is not None:
        delivery.ran = time.monotonic() - started
    delivery.started = None
