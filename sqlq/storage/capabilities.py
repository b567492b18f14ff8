"""Optional capabilities of a storage backend, each with a default built on the core contract.

A backend implements the core contract (:class:`~sqlq.storage.base.Storage`); it inherits these
capabilities with their defaults, which are correct on any backend, and overrides them where it
can do better:

- :class:`BatchClaims` -- claim, give back and settle several messages in one step (a worker's
  batches and group commits);
- :class:`HandOff` -- a worker session in which producers may hand new messages straight to an
  idle worker (SQLite, Redis);
- :class:`Upkeep` -- bounded maintenance, write-ahead-log checkpoints and vacuum (SQLite);
- :class:`FlagWatch` -- claims that tell whether any key under a watched prefix exists;
- :class:`Tracking` -- where a message is, by its key (the task id), and a history of finished
  runs with per-minute sums (SQLite, Redis, memory).
"""
from __future__ import annotations

import contextlib
from typing import Any, ContextManager, Dict, Iterable, List, Optional, Protocol, Sequence

from .types import Claim, Completion, Finished, HistoryEntry, Location, RunStats

__all__ = ['BatchClaims', 'HandOff', 'Upkeep', 'FlagWatch', 'Tracking']


class _Core(Protocol):
    """The core methods the defaults below are built on."""

    def transaction(self) -> ContextManager[Any]: ...

    def dequeue(self) -> Optional[Claim]: ...

    def ack(self, receipt: Any) -> bool: ...

    def release(self, receipt: Any) -> bool: ...

    def put_data(self, key: str, value: bytes, is_result: bool = False,
                 ttl: Optional[float] = None) -> None: ...

    def purge_expired(self) -> int: ...

    def bury(self, receipt: Any, reason: str) -> bool: ...

    def record_finished(self, entries: Sequence[Finished]) -> None: ...


class BatchClaims:
    """Claiming and settling several messages at once."""

    #: Whether several storage calls cost less inside one ``transaction()`` than made one by
    #: one (SQLite: one commit instead of many). False for backends whose every call is atomic
    #: on its own and whose transactions cost extra reads (Redis): workers then commit a group
    #: of outcomes and claim their next tasks as separate calls.
    batch_in_transaction: bool = True

    def dequeue_many(self: _Core, limit: int) -> List[Claim]:
        """Claim up to ``limit`` ready messages at once (fewer if fewer are ready).

        The claims are those that ``limit`` calls of ``dequeue`` would make, made in one step;
        their order in the list is unspecified: run them in ``(-priority, seq)`` order. With
        ``limit`` 1 the claim is recorded as started, as ``dequeue``'s; a backend records the
        claims of a larger batch as started or not (``Claim.started`` tells; this default
        does, which charges a dead owner's whole batch).
        """
        claims: List[Claim] = []
        with self.transaction():
            while len(claims) < limit:
                claim = self.dequeue()
                if claim is None:
                    break
                claims.append(claim)
        return claims

    def release_unstarted(self: _Core, receipts: Iterable[Any]) -> int:
        """Give back several claims whose messages never started running, in one step.

        Each is released (``release``): ready again at its place; its claim still counts in
        ``attempts``, which is also what fences a receipt (so an old receipt never matches a
        later claim). Claims already gone are skipped; returns how many were given back.
        """
        released = 0
        with self.transaction():
            for receipt in receipts:
                released += self.release(receipt)
        return released

    def complete_many(self: _Core, items: Sequence[Completion],
                      history: Optional[Sequence[Optional[Finished]]] = None) -> List[bool]:
        """Settle claims of finished tasks in one step: for each ``(receipt, key, value, ttl)``,
        ``ack`` the claim and, if it was held, store ``value`` under ``key`` as a result
        (``is_result=True``, ``ttl``), unless ``key`` is None. ``history``, if given, holds
        per item the run to record in the history (:class:`Tracking`), or None; it is recorded
        only if the item's claim was held. Returns, per item, whether its claim was held; an
        item whose claim is gone changes nothing. All or none."""
        held = []
        with self.transaction():
            for receipt, key, value, ttl in items:
                ok = self.ack(receipt)
                if ok and key is not None and value is not None:
                    self.put_data(key, value, is_result=True, ttl=ttl)
                held.append(ok)
            if history is not None:
                finished = [entry for entry, ok in zip(history, held) if ok and entry]
                if finished:
                    self.record_finished(finished)
        return held


class HandOff:
    """Worker sessions, in which a backend may hand new messages straight to idle workers."""

    def worker_session(self) -> ContextManager[None]:
        """Mark the calling thread as a worker for the duration of the ``with`` block: it claims
        with ``dequeue_many`` and, when that finds nothing, waits with
        ``wait_for_change(timeout, 'queue')``.

        A backend may then hand it new messages directly: a producer that finds the queue empty
        claims its message for an idle worker in the enqueue's own transaction (or script run)
        and sends it along with the wake-up, so the worker skips its claim. Such messages come
        out of the worker's next ``dequeue_many`` like any claim. When the block exits,
        messages handed to the thread that it still holds are released: settle (or release)
        the claims it returned before leaving the block. The default does nothing.
        """
        return contextlib.nullcontext()

    def claim_outranking(self, priority: int, limit: int) -> List[Claim]:
        """In a worker session, before a worker starts a buffered claim of ``priority``:
        claim up to ``limit`` ready messages of a higher priority if a producer said it made
        one ready since the last call (else ``[]``), so that they overtake the worker's
        buffered claims. Cheap when there is none: called before every buffered task. The
        claims are not recorded as started. The default claims nothing."""
        return []


class Upkeep:
    """Bounded upkeep of the backend's files."""

    def maintenance(self: _Core) -> Dict[str, Any]:
        """Bounded, non-blocking upkeep: ``purge_expired``, then (SQLite) return a bounded
        number of free pages to the file system and checkpoint/truncate the WAL unless another
        connection is busy with it. Returns what was done (backend-specific keys; always
        ``'purged'``)."""
        return {'purged': self.purge_expired()}

    def defer_checkpoints(self, deferred: bool = True) -> None:
        """While ``deferred``, this process's writers leave folding their write-ahead log into
        the database to ``checkpoint`` calls (the consumer makes them from a background
        thread), so that no commit on a task's path waits for it. No-op without such a log."""

    def checkpoint(self, *, fine_waits: bool = False) -> Optional[Dict[str, Any]]:
        """Fold the write-ahead log into the database as far as possible without making other
        connections wait more than a few milliseconds, and keep the log's size bounded
        (SQLite: rewind it once it is large). ``fine_waits``: the caller's process has no other
        thread busy in Python, so lock waits may poll finely from Python. Returns what was
        done (backend-specific keys), or None: no-op without such a log."""
        return None

    def vacuum(self) -> None:
        """Rebuild the backend compactly (SQLite: full ``VACUUM``). Needs exclusive access for
        its whole duration: other writers wait (or time out) meanwhile. Not inside
        ``transaction()``. No-op where there is nothing to compact."""


class FlagWatch:
    """Claims that tell whether any key under a prefix exists, at no extra cost.

    A storage created with ``flag_prefix='p'`` sets each claim's
    :attr:`~sqlq.storage.types.Claim.flagged` to whether a live key starting with ``'p'``
    existed when the claim was made (``None``: not checked). The task layer names the prefix of
    its revoke flags, so that a worker whose claims saw none skips reading them.
    """

    #: The watched key prefix (None: claims are not checked).
    flag_prefix: Optional[str] = None


class Tracking:
    """Where a message is, by its key, and a history of the runs that finished.

    The task layer enqueues each message with a *key* (its task id: ``enqueue(..., key=)``,
    ``enqueue_many(..., keys=)``, ``add_to_schedule(..., key=)``); a backend that
    :attr:`tracks_tasks` indexes it, so that :meth:`locate` costs one index look-up whatever
    the size of the queue, and keeps a history: one :class:`~sqlq.storage.types.Finished`
    entry per run that ended, written in the same transaction (or script run) as the release
    of the run's claim (:meth:`finish`, ``complete_many(..., history=)``), together with
    per-minute sums per task name and outcome (count, seconds, duration buckets) that
    :meth:`history_stats` reads without reading the entries.

    The defaults keep nothing: :meth:`locate` finds nothing (the task layer then searches the
    listings, decoding them: a scan), :meth:`history` and :meth:`history_stats` are empty.
    :meth:`finish` is correct on any backend.
    """

    #: Whether keys are indexed and a history is kept.
    tracks_tasks: bool = False

    def locate(self, key: str) -> List[Location]:
        """The stored messages with ``key``: claimed, then ready, scheduled and dead letters
        (usually one)."""
        return []

    def finish(self: _Core, receipt: Any, finished: Optional[Finished] = None,
               reason: Optional[str] = None) -> bool:
        """Release a claim for good -- ``ack``, or with a ``reason`` ``bury`` -- and if it was
        held, record ``finished`` in the history, atomically. ``False`` (and no change) if the
        claim is gone."""
        with self.transaction():
            held = self.bury(receipt, reason) if reason is not None else self.ack(receipt)
            if held and finished is not None:
                self.record_finished([finished])
        return held

    def record_finished(self, entries: Sequence[Finished]) -> None:
        """Record runs that were never claimed (immediate mode, a local ``execute``) in the
        history. The default keeps nothing."""

    def history(self, limit: Optional[int] = 50, before: Optional[int] = None,
                key: Optional[str] = None, name: Optional[str] = None,
                outcome: Optional[str] = None) -> List[HistoryEntry]:
        """Finished runs, newest first: at most ``limit``, with ids below ``before`` (the
        next page), only of ``key``, ``name`` or ``outcome`` if given."""
        return []

    def history_stats(self, since: Optional[float] = None,
                      per_minute: bool = False) -> List[RunStats]:
        """Sums of the runs per task name and outcome: of the minutes from ``since`` on (all
        that was ever recorded and not flushed if None), one per minute if ``per_minute``."""
        return []

    def prune_history(self, before: Optional[float] = None, keep: Optional[int] = None,
                      stats_before: Optional[float] = None) -> int:
        """Delete history entries that finished before ``before`` and all but the newest
        ``keep``; fold the per-minute sums of minutes before ``stats_before`` into the
        all-time sums. Bounded work per call. Returns how many entries were deleted."""
        return 0
