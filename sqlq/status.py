"""A task's status by id: where it is (scheduled, pending, running, a dead letter), or how its
last run ended (from the history), with its timestamps, attempts, owner and error.

On a storage that tracks tasks (``Storage.tracks_tasks``: SQLite, Redis, memory) a status
costs a few index look-ups whatever the size of the queue. On another backend it falls back to
searching the listings, decoding each stored message: correct, but a scan.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, List, NamedTuple, Optional

from .exceptions import DeserializationError, UnknownTaskError
from .result import Error
from .storage.types import EMPTY, HistoryEntry, Location
from .task import Task

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue

__all__ = ['TaskStatus', 'StatusReader', 'STATES', 'RUNS_SHOWN']

#: Every state a status may report.
STATES = ('scheduled', 'pending', 'running', 'succeeded', 'failed', 'dead', 'revoked',
          'expired', 'canceled', 'unknown')
#: Most runs of one task a status lists (newest first).
RUNS_SHOWN = 20


class TaskStatus(NamedTuple):
    """What is known of a task id (``Queue.status``)."""
    id: str
    #: One of :data:`STATES`: ``dead`` is a dead letter that did not fail a run (quarantined,
    #: undecodable, unknown task); a task that failed for good is ``failed`` (and a dead
    #: letter, see ``dead_letter_id``); ``revoked`` is also a pending or scheduled task whose
    #: revoke flag is set (see ``location``).
    state: str
    #: Its task name (None if unknown).
    name: Optional[str] = None
    #: The stored task (arguments, options), if it is stored and can be decoded.
    task: Optional[Task] = None
    #: Where its message is: 'ready', 'claimed', 'scheduled', 'dead', or None.
    location: Optional[str] = None
    enqueued_at: Optional[float] = None
    #: When its current (running) or last run started.
    started_at: Optional[float] = None
    #: When its last run ended (finished states).
    finished_at: Optional[float] = None
    #: When a scheduled task is due.
    eta: Optional[float] = None
    #: Claims of its current message (running: this one included), or of the last run's.
    attempts: int = 0
    #: Owner id (``host:pid:token``) of the process running it, or that ran it last.
    owner: Optional[str] = None
    #: The error of a failed task (a dead letter's whole reason, with the traceback), or of
    #: its last failed run.
    error: Optional[str] = None
    #: Its dead letter's id (to requeue or purge it).
    dead_letter_id: Optional[int] = None
    #: Whether a revoke flag for it is set (it will be skipped when it comes up).
    revoked: bool = False
    #: Its finished runs, newest first (at most RUNS_SHOWN; empty without a history).
    runs: List[HistoryEntry] = []
    #: Its stored result (an :class:`~sqlq.result.Error` for a failure), peeked; EMPTY if none.
    result: Any = EMPTY


def _started(run: HistoryEntry) -> Optional[float]:
    """When a recorded run started: its end less its duration, or its claim."""
    if run.duration is not None:
        return run.finished_at - run.duration
    return run.claimed_at


class StatusReader:
    """Reads the status of a queue's tasks."""

    def __init__(self, queue: 'Queue') -> None:
        self.queue = queue

    def status(self, task_id: str) -> TaskStatus:
        queue = self.queue
        storage = queue.storage
        task_id = str(task_id)
        if storage.tracks_tasks:
            locations = storage.locate(task_id)
            runs = storage.history(RUNS_SHOWN, key=task_id)
        else:
            locations, runs = list(self._search(task_id)), []
        loc = locations[0] if locations else None
        task = self._decode(loc.data) if loc is not None else None
        revoked = queue.revocations.is_revoked(task if task is not None else task_id,
                                               queue.now(), peek=True)
        raw = storage.peek_data(task_id)
        result = EMPTY if raw is EMPTY else self._result(raw)
        last = runs[0] if runs else None
        name = task.name if task is not None else last.name if last is not None else None
        base = TaskStatus(task_id, 'unknown', name, task, revoked=revoked, runs=runs,
                          result=result)
        if loc is not None:
            return self._stored(base, loc, last)
        if last is not None:
            state = last.outcome if last.outcome != 'retried' else 'unknown'
            return base._replace(state=state, enqueued_at=last.enqueued_at,
                                 started_at=_started(last), finished_at=last.finished_at,
                                 attempts=last.attempts, owner=last.owner,
                                 error=self._error(result, last.error))
        if result is not EMPTY:  # no history (turned off): the stored result tells
            failed = isinstance(result, Error)
            return base._replace(state='failed' if failed else 'succeeded',
                                 error=self._error(result, None))
        return base

    def _stored(self, base: TaskStatus, loc: Location,
                last: Optional[HistoryEntry]) -> TaskStatus:
        found = base._replace(location=loc.state, enqueued_at=loc.enqueued_at,
                              attempts=loc.attempts)
        if loc.state == 'claimed':
            return found._replace(state='running', started_at=loc.claimed_at, owner=loc.owner)
        if loc.state == 'dead':
            if last is not None and last.outcome == 'failed':
                found = found._replace(state='failed', started_at=_started(last),
                                       owner=last.owner)
            else:
                found = found._replace(state='dead')
            return found._replace(error=loc.reason, finished_at=loc.failed_at,
                                  dead_letter_id=loc.id)
        state = 'pending' if loc.state == 'ready' else 'scheduled'
        return found._replace(state='revoked' if base.revoked else state, eta=loc.eta)

    def _decode(self, data: bytes) -> Optional[Task]:
        try:
            return self.queue.deserialize_task(data)
        except (DeserializationError, UnknownTaskError):
            return None

    def _result(self, raw: bytes) -> Any:
        try:
            return self.queue.serializer.deserialize(raw)
        except Exception:  # not a result of ours (a key that happens to be a task id)
            return EMPTY

    @staticmethod
    def _error(result: Any, summary: Optional[str]) -> Optional[str]:
        if isinstance(result, Error):
            meta = result.metadata
            text = meta.get('traceback') or meta.get('error')
            if text:
                return str(text)
        return summary

    def _search(self, task_id: str) -> Iterator[Location]:
        """Where ``task_id`` is, by decoding every stored message (for a storage that does
        not track tasks): claimed, ready, scheduled, then dead letters."""
        storage = self.queue.storage
        for item in storage.claimed_items():
            if self._is(item.data, task_id):
                yield Location('claimed', item.id, item.data, owner=item.owner,
                               claimed_at=item.claimed_at, attempts=item.attempts,
                               recoveries=item.recoveries)
        for data in storage.enqueued_items():
            if self._is(data, task_id):
                yield Location('ready', 0, data)
        for data in storage.scheduled_items():
            if self._is(data, task_id):
                task = self._decode(data)
                eta = None if task is None or task.eta is None else \
                    self.queue.time.to_timestamp(task.eta)
                yield Location('scheduled', 0, data, eta=eta)
        for letter in storage.dead_letters():
            if letter.key == task_id or self._is(letter.data, task_id):
                yield Location('dead', letter.id, letter.data, letter.enqueued_at,
                               attempts=letter.attempts, reason=letter.reason,
                               failed_at=letter.failed_at)

    def _is(self, data: bytes, task_id: str) -> bool:
        task = self._decode(data)
        return task is not None and task.id == task_id
