"""The history of finished tasks: what a queue records of each run that ended, how long it
keeps it, and what is read from it (listings, per-task-name figures over a window,
throughput per minute).

A run's entry is written by the transaction (or script run) that records its outcome and
releases its claim (:mod:`sqlq.outcomes`), so it costs no commit of its own; the storage keeps
per-minute sums beside the entries (``Storage.history_stats``), so figures over a window never
read the entries. ``history=False`` turns the recording off; maintenance prunes entries older
than ``history_ttl`` seconds and beyond the newest ``history_max``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Sequence

from .exceptions import ConfigurationError
from .signals import SIGNAL_CANCELED, SIGNAL_EXPIRED, SIGNAL_REVOKED
from .storage.types import DURATION_BUCKETS, Finished, HistoryEntry, RunStats

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue
    from .decisions import Outcome
    from .status import StatusReader, TaskStatus
    from .task import Task

__all__ = ['HistorySettings', 'History', 'QueueHistory', 'TaskFigures', 'MinuteFigures',
           'finished_run', 'DEFAULT_TTL', 'STATS_KEPT', 'quantile']

#: Default ``history_ttl``: a day.
DEFAULT_TTL = 86400.0
#: Per-minute sums are kept at least this long (seconds): the dashboard's last hour.
STATS_KEPT = 3600.0

_new = tuple.__new__
#: The history outcome of a skipped run, by the signal that announces it.
_SKIPPED = {SIGNAL_REVOKED: 'revoked', SIGNAL_EXPIRED: 'expired', SIGNAL_CANCELED: 'canceled'}
_KINDS = {'complete': 'succeeded', 'retry': 'retried', 'failed': 'failed'}


class HistorySettings(NamedTuple):
    """A queue's ``history``, ``history_ttl`` and ``history_max`` options."""
    enabled: bool = True
    ttl: Optional[float] = DEFAULT_TTL
    max: Optional[int] = None

    @classmethod
    def checked(cls, enabled: Any, ttl: Any, max: Any) -> 'HistorySettings':
        if not isinstance(enabled, bool):
            raise ConfigurationError('history must be True or False, not %r' % (enabled,))
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float))
                                or ttl <= 0):
            raise ConfigurationError('history_ttl must be a positive number of seconds or '
                                     'None, not %r' % (ttl,))
        if max is not None and (isinstance(max, bool) or not isinstance(max, int) or max < 0):
            raise ConfigurationError('history_max must be a non-negative int or None, not %r'
                                     % (max,))
        return cls(enabled, None if ttl is None else float(ttl), max)


def finished_run(task: 'Task', outcome: 'Outcome', finished_at: float,
                 duration: Optional[float]) -> Optional[Finished]:
    """The history entry of a run that came to ``outcome``; None for one that did not end (a
    task not yet due goes back to the schedule)."""
    if outcome.kind == 'complete':  # the common case, first (and built as a tuple: faster)
        return _new(Finished, (task.id, task.name, 'succeeded', finished_at, duration, None))
    kind = _KINDS.get(outcome.kind)
    if kind is None:
        if outcome.kind != 'skipped' or not outcome.on_settled:
            return None
        kind = _SKIPPED.get(outcome.on_settled[0][0], 'canceled')
        duration = None
    if kind == 'failed' and outcome.dead_reason is None and outcome.failure is None and \
            any(signal[0] == SIGNAL_CANCELED for signal in outcome.announce):
        return Finished(task.id, task.name, 'canceled', finished_at, duration, None)
    error = None
    if outcome.failure is not None:
        error = _summary(outcome.failure[0])
    elif outcome.dead_reason is not None:
        error = outcome.dead_reason.split('\n', 1)[0]
    return Finished(task.id, task.name, kind, finished_at, duration, error)


def _summary(exception: BaseException) -> str:
    try:
        text = repr(exception)
    except Exception:  # a broken __repr__ must not lose the outcome
        text = '<%s>' % type(exception).__name__
    return text.split('\n', 1)[0]


class TaskFigures(NamedTuple):
    """What one task name did over a window (``Queue.task_stats``)."""
    name: str
    #: Runs that ended, by outcome (``succeeded``, ``failed``, ``retried``, ``revoked``...).
    outcomes: Dict[str, int]
    #: All runs that ended.
    runs: int
    #: Runs that raised (failed for good, or retried).
    failures: int
    #: Duration quantiles (seconds), estimated from the duration buckets; None if no run
    #: had a duration.
    p50: Optional[float]
    p95: Optional[float]
    #: Mean duration (seconds).
    mean: Optional[float]


class MinuteFigures(NamedTuple):
    """Runs that ended in one minute (``Queue.throughput``)."""
    minute: float
    runs: int
    failures: int


def quantile(q: float, buckets: Sequence[int]) -> Optional[float]:
    """The ``q`` quantile of durations counted in ``buckets`` (per DURATION_BUCKETS, then one
    for longer runs), interpolated linearly inside its bucket, as Prometheus'
    ``histogram_quantile`` does (the last bucket answers its lower bound)."""
    total = sum(buckets)
    if not total:
        return None
    rank = q * total
    seen = 0.0
    lower = 0.0
    for index, count in enumerate(buckets):
        if index == len(DURATION_BUCKETS):
            return DURATION_BUCKETS[-1]
        upper = DURATION_BUCKETS[index]
        if count and seen + count >= rank:
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
        lower = upper
    return DURATION_BUCKETS[-1]  # pragma: no cover - the loop returns


def figures(stats: Sequence[RunStats]) -> List[TaskFigures]:
    """Per task name, from the storage's sums per (name, outcome)."""
    by_name: Dict[str, List[RunStats]] = {}
    for row in stats:
        by_name.setdefault(row.name, []).append(row)
    result = []
    for name in sorted(by_name):
        rows = by_name[name]
        buckets = [sum(column) for column in zip(*(r.buckets for r in rows))]
        timed = sum(buckets)
        result.append(TaskFigures(
            name, {r.outcome: r.runs for r in rows}, sum(r.runs for r in rows),
            sum(r.runs for r in rows if r.outcome in ('failed', 'retried')),
            quantile(0.5, buckets), quantile(0.95, buckets),
            sum(r.seconds for r in rows) / timed if timed else None))
    return result


class History:
    """A queue's history: reading it, and pruning it by the queue's settings."""

    def __init__(self, queue: 'Queue', settings: HistorySettings) -> None:
        self.queue = queue
        self.settings = settings

    def entries(self, limit: Optional[int] = 50, before: Optional[int] = None,
                name: Optional[str] = None, task_id: Optional[str] = None,
                outcome: Optional[str] = None) -> List[HistoryEntry]:
        """Finished runs, newest first (``before``: the id of the last entry of the previous
        page)."""
        return self.queue.storage.history(limit, before, task_id, name, outcome)

    def task_stats(self, window: Optional[float] = 3600.0) -> List[TaskFigures]:
        """Per task name, over the last ``window`` seconds (None: all time)."""
        since = None if window is None else self.queue.now() - float(window)
        return figures(self.queue.storage.history_stats(since))

    def throughput(self, window: float = 3600.0) -> List[MinuteFigures]:
        """Runs that ended per minute over the last ``window`` seconds, oldest first (minutes
        without runs included, as zeros)."""
        now = self.queue.now()
        first = (int((now - float(window)) // 60) + 1) * 60.0
        per: Dict[float, List[int]] = {}
        for row in self.queue.storage.history_stats(first, per_minute=True):
            counts = per.setdefault(row.minute or 0.0, [0, 0])
            counts[0] += row.runs
            if row.outcome in ('failed', 'retried'):
                counts[1] += row.runs
        last = int(now // 60) * 60.0
        minutes = []
        minute = first
        while minute <= last:
            runs, failures = per.get(minute, (0, 0))
            minutes.append(MinuteFigures(minute, runs, failures))
            minute += 60.0
        return minutes

    def prune(self) -> int:
        """Drop the entries past ``history_ttl``/``history_max`` (bounded work per call)."""
        settings = self.settings
        now = self.queue.now()
        before = None if settings.ttl is None else now - settings.ttl
        kept = max(settings.ttl or 0.0, STATS_KEPT)
        return self.queue.storage.prune_history(before, settings.max, now - kept)


class QueueHistory:
    """The Queue's methods that read task status and history (mixed into ``Queue``)."""

    task_history: History
    statuses: 'StatusReader'

    def status(self, task_id: Any) -> 'TaskStatus':
        """Where a task is or how it ended, by id (a Task or Result works too): see
        :class:`~sqlq.status.TaskStatus`."""
        return self.statuses.status(getattr(task_id, 'id', task_id))

    def history(self, limit: Optional[int] = 50, before: Optional[int] = None,
                name: Optional[str] = None, task_id: Optional[str] = None,
                outcome: Optional[str] = None) -> List[HistoryEntry]:
        """Finished runs, newest first; ``before``: the last id of the previous page."""
        return self.task_history.entries(limit, before, name, task_id, outcome)

    def task_stats(self, window: Optional[float] = 3600.0) -> List[TaskFigures]:
        """Per task name over the last ``window`` seconds (None: all time): runs by outcome,
        failures, p50/p95 duration."""
        return self.task_history.task_stats(window)

    def throughput(self, window: float = 3600.0) -> List[MinuteFigures]:
        """Runs and failures per minute over the last ``window`` seconds."""
        return self.task_history.throughput(window)
