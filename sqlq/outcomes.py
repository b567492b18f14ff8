"""Recording task outcomes: one transaction per task, or one per group of tasks.

An outcome (:class:`~sqlq.decisions.Outcome`) is what running a task changes in storage: the
release of its claim (ack or dead letter) together with its result, followers, retry and chord
bookkeeping. :class:`OutcomeWriter` turns an outcome into a pair of callables: ``apply`` writes
it (inside a transaction) and ``after(enqueued)`` runs once it is committed (signals,
post-execute hooks).

Outside a worker an outcome commits at once. A worker records outcomes through an
:class:`OutcomeGroup`: finished tasks wait (a few milliseconds at most) and are committed
together, each in its own savepoint, usually in the same transaction as the worker's next
batch claim. A claim is released only by the commit that records its outcome, so a crash
before that commit loses nothing: the task is still claimed and runs again after recovery.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, List, Optional, Tuple, cast

from .exceptions import (
    DatabaseLockedError,
    SerializationError,
    StorageCorruptError,
    StorageError,
    StorageUnavailableError,
    TaskException,
)
from .history import finished_run
from .signals import SIGNAL_ENQUEUED, SIGNAL_SCHEDULED
from .storage.base import EMPTY, retry_conflicts

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue
    from .decisions import Outcome
    from .delivery import Delivery
    from .storage.base import Storage
    from .storage.types import Finished
    from .task import Task

__all__ = ['OutcomeWriter', 'OutcomeGroup', 'StaleClaim', 'commit_outcome']

logger = logging.getLogger('sqlq')

#: Writes an outcome inside a transaction; returns the follower tasks it enqueued.
Apply = Callable[[], List['Task']]
#: Runs after the commit: with the enqueued followers, or None if the outcome was rejected.
After = Callable[[Optional[List['Task']]], None]
#: A completion: the outcome that only acks the claim and stores a result, as the
#: ``(receipt, result key or None, value, ttl)`` that ``Storage.complete_many`` takes. The
#: most common outcome, which a group writes for all its tasks in one storage call.
Completion = Tuple[Any, Optional[str], Optional[bytes], Optional[float]]
_Entry = Tuple['Task', Apply, After, Optional[Completion], Any, Optional['Finished']]


class StaleClaim(Exception):
    """The claim an outcome would release was taken over: nothing of it may be applied."""


def commit_outcome(storage: 'Storage', task: 'Task', apply: Apply) -> Optional[List['Task']]:
    """Apply one outcome in its own transaction (a savepoint inside an enclosing one).

    Returns what ``apply`` returned, or None (and nothing applied) if the claim was stale.
    Any other error rolls the outcome back and propagates.
    """
    def run() -> List['Task']:
        with storage.transaction():
            return apply()

    try:
        return retry_conflicts(run)
    except StaleClaim:
        _log_stale(task)
        return None


def _log_stale(task: 'Task') -> None:
    logger.warning('outcome of %s rejected: its claim is no longer held (taken over by '
                   'another worker, this one presumed dead; or settled by an earlier try of '
                   'this commit whose reply was lost)', task)


class OutcomeGroup:
    """Outcomes of one worker's finished tasks, waiting to be committed together.

    ``max_size`` outcomes or ``max_delay`` seconds since the first one make the group
    :meth:`due`; the worker then calls :meth:`flush` (or :meth:`flush_then` to claim its next
    tasks in the same transaction). Used by one thread.
    """

    def __init__(self, storage: 'Storage', max_size: int = 64, max_delay: float = 0.005) -> None:
        self.storage = storage
        self.max_size = max_size
        self.max_delay = max_delay
        self._pending: List[_Entry] = []
        self._deadline = 0.0

    def __len__(self) -> int:
        return len(self._pending)

    def submit(self, task: 'Task', apply: Apply, after: After,
               completion: Optional[Completion] = None, receipt: Any = None,
               finished: Optional['Finished'] = None) -> None:
        """Add an outcome; it is committed by a later flush. ``completion``: the same outcome
        in bulk form, if it is one (``apply`` must then do exactly that, recording
        ``finished`` in the history). ``receipt``: the task's claim, buried as a dead letter if
        the outcome cannot be written at all."""
        if not self._pending:
            self._deadline = time.monotonic() + self.max_delay
        self._pending.append((task, apply, after, completion, receipt, finished))

    def due(self) -> bool:
        """True if the group should be committed now."""
        pending = len(self._pending)
        return pending >= self.max_size or (pending > 0 and time.monotonic() >= self._deadline)

    def flush(self) -> None:
        """Commit every pending outcome in one transaction, then run their after-commit parts."""
        if self._pending:
            self.flush_then(None)

    def flush_then(self, step: Optional[Callable[[], Any]]) -> Any:
        """Commit the pending outcomes and ``step()`` (if given) in one transaction.

        Returns what ``step`` returned. An outcome whose claim is stale, or whose writes fail,
        is undone alone (logged; a failed one becomes a dead letter). If the commit itself
        fails, or the storage cannot be reached (or is locked) meanwhile, the outcomes stay
        pending for the next flush and the error propagates.
        """
        if not self.storage.batch_in_transaction:
            self._flush_separately()
            return step() if step is not None else None
        pending = self._pending
        self._pending = []
        try:
            try:
                outcomes, value = retry_conflicts(
                    lambda: self._commit(pending, step, isolated=False))
            except _Isolate:
                outcomes, value = retry_conflicts(
                    lambda: self._commit(pending, step, isolated=True))
        except BaseException:
            self._pending = pending + self._pending
            raise
        self._after(zip(pending, outcomes))
        return value

    @staticmethod
    def _after(done: Iterable[Tuple[_Entry, Any]]) -> None:
        for (task, _, after, _, _, _), enqueued in done:
            if enqueued is _FAILED:
                continue
            try:
                after(enqueued)
            except Exception:
                logger.exception('after-commit handling of %s failed', task)

    def _flush_separately(self) -> None:
        """The flush for storages whose every call is atomic on its own: each outcome that is
        not a completion in its own transaction, then every completion in one call. On a
        storage error the outcomes not yet written stay pending (and the error propagates)."""
        pending, self._pending = self._pending, []
        done: List[Tuple[_Entry, Any]] = []
        try:
            for entry in pending:
                if entry[3] is None:
                    done.append((entry, self._apply_alone(entry)))
            completions = [entry for entry in pending if entry[3] is not None]
            if completions:
                try:
                    held = retry_conflicts(lambda: self.storage.complete_many(
                        [e[3] for e in completions if e[3]], [e[5] for e in completions]))
                except StorageError:
                    raise
                except Exception:  # one of them cannot be written (nothing was): each alone
                    for entry in completions:
                        done.append((entry, self._apply_alone(entry)))
                else:
                    for entry, was_held in zip(completions, held):
                        if not was_held:
                            _log_stale(entry[0])
                        done.append((entry, [] if was_held else None))
        except BaseException:
            written = {id(entry) for entry, _ in done}
            self._pending = [e for e in pending if id(e) not in written] + self._pending
            self._after(done)
            raise
        self._after(done)

    def _apply_alone(self, entry: _Entry) -> Any:
        task, apply, _, _, receipt, _ = entry
        try:
            return commit_outcome(self.storage, task, apply)
        except StorageError:
            raise  # the storage is unreachable: retried by a later flush
        except Exception:
            return self._apply_isolated(task, apply, receipt)

    def _commit(self, pending: List[_Entry], step: Optional[Callable[[], Any]],
                isolated: bool) -> Tuple[List[Any], Any]:
        # The common case writes every outcome straight into the transaction (completions in
        # one call): a stale claim is detected by the outcome's first write, before it changed
        # anything. Any other error may leave an outcome half-written, so the whole group is
        # redone with a savepoint per outcome (``isolated``), where a failing one is undone
        # alone.
        outcomes: List[Any] = [None] * len(pending)
        with self.storage.transaction():
            if isolated:
                for index, (task, apply, _, _, receipt, _) in enumerate(pending):
                    outcomes[index] = self._apply_isolated(task, apply, receipt)
            else:
                self._complete(pending, outcomes)
                for index, (task, apply, _, completion, _, _) in enumerate(pending):
                    if completion is not None:
                        continue
                    try:
                        outcomes[index] = apply()
                    except StaleClaim:
                        _log_stale(task)
                    except _RETRY_LATER:
                        raise
                    except Exception as exc:
                        raise _Isolate() from exc
            value = step() if step is not None else None
        return outcomes, value

    def _complete(self, pending: List[_Entry], outcomes: List[Any]) -> None:
        """Write the group's completions with one storage call."""
        indexes = [i for i, entry in enumerate(pending) if entry[3] is not None]
        if not indexes:
            return
        try:
            history = [pending[i][5] for i in indexes]
            held = self.storage.complete_many([pending[i][3] for i in indexes],  # type: ignore
                                              history if any(history) else None)
        except _RETRY_LATER:
            raise
        except Exception as exc:
            raise _Isolate() from exc
        for index, was_held in zip(indexes, held):
            if was_held:
                outcomes[index] = []
            else:
                _log_stale(pending[index][0])

    def _apply_isolated(self, task: 'Task', apply: Apply, receipt: Any) -> Any:
        try:
            return commit_outcome(self.storage, task, apply)
        except StorageCorruptError:
            raise  # a damaged file: no outcome can be written, nor a dead letter
        except _RETRY_LATER:
            raise  # not this outcome's fault: the whole group waits for the next flush
        except Exception as exc:
            reason = 'its outcome could not be recorded: %s: %s' % (type(exc).__name__, exc)
            try:  # visible, not stuck: a claim nobody settles would wait for a restart
                with self.storage.transaction():
                    buried = receipt is not None and self.storage.bury(receipt, reason)
            except Exception:
                buried = False
            if buried:
                logger.exception('%s moved to the dead letters: %s', task, reason)
            else:
                logger.exception('outcome of %s could not be recorded; it stays claimed for '
                                 'recovery', task)
            return _FAILED


#: Errors that say the storage cannot be used now (unreachable, still loading its data,
#: locked), not that an outcome cannot be written: the group stays pending for the next
#: flush instead of being isolated (where a failing outcome would be given up).
_RETRY_LATER = (StorageUnavailableError, DatabaseLockedError)


class _Isolate(Exception):
    """An outcome failed in the shared transaction: undo it all and redo with savepoints."""


_FAILED = object()


class OutcomeWriter:
    """Writes the outcomes of a queue's tasks: at once, or through the calling thread's
    :class:`OutcomeGroup` (see :meth:`grouping`)."""

    def __init__(self, queue: 'Queue') -> None:
        self.queue = queue
        self._local = threading.local()  # per thread: the worker's OutcomeGroup, if any

    @contextlib.contextmanager
    def grouping(self, group: OutcomeGroup) -> Iterator[OutcomeGroup]:
        """Within the block, outcomes of claimed tasks settled by this thread are submitted to
        ``group`` (committed by its flushes) instead of committing one by one."""
        previous = getattr(self._local, 'group', None)
        self._local.group = group
        try:
            yield group
        finally:
            self._local.group = previous

    def settle(self, delivery: 'Delivery', outcome: 'Outcome',
               then: Optional[Callable[[], None]] = None) -> None:
        """Record ``outcome`` and release the delivery's claim, together.

        ``then()`` runs once the outcome's transaction ended (after its signals). Inside a
        worker's outcome group the commit is deferred; otherwise it happens before this
        returns. Serialization errors are raised before anything is written.
        """
        queue = self.queue
        task = delivery.task
        now = queue.time.now()
        ready = []
        for follower in outcome.enqueue:
            queue.enqueuer.resolve_expires(follower, now)
            ready.append((self._serialize_follower(follower), follower.options.priority or 0,
                          follower.id))
        scheduled = [(queue.serialize_task(follower),
                      queue.time.to_timestamp(cast('_dt.datetime', follower.eta)), follower.id)
                     for follower in outcome.schedule]
        result = outcome.result
        result_data = None if result is EMPTY else queue.serializer.serialize(result)
        receipt, delivery.receipt = delivery.receipt, None
        storage = queue.storage
        finished = finished_run(task, outcome, now, delivery.ran) \
            if queue.task_history.settings.enabled else None

        def apply() -> List['Task']:
            # Release the claim first: if it was taken over (this worker was presumed dead),
            # nothing of this outcome may be applied: the other run records its own.
            self._release_claim(delivery, receipt, outcome.dead_reason, finished)
            if result_data is not None:
                storage.put_data(task.id, result_data, is_result=True, ttl=queue.result_ttl)
                for step_id in outcome.unreached:
                    storage.put_data(step_id, result_data, is_result=True, ttl=queue.result_ttl)
            for data, priority, key in ready:
                storage.enqueue(data, priority, key)
            for data, ts, key in scheduled:
                storage.add_to_schedule(data, ts, key)
            enqueued = list(outcome.enqueue)
            if outcome.chord_value is not EMPTY:
                callback = queue.chords.member_done(task, outcome.chord_value)
                if callback is not None:
                    storage.enqueue(queue.serialize_task(callback),
                                    callback.options.priority or 0, callback.id)
                    enqueued.append(callback)
            if outcome.final and task.unique_key is not None:
                queue.enqueuer.release_unique_key(task)
            return enqueued

        def after(enqueued: Optional[List['Task']]) -> None:
            self._announce(task, outcome, enqueued, then)

        group = getattr(self._local, 'group', None)
        if group is not None and receipt is not None:
            simple = outcome.is_completion and not (outcome.final and
                                                    task.unique_key is not None)
            group.submit(task, apply, after,
                         (receipt, None if result_data is None else task.id, result_data,
                          queue.result_ttl) if simple else None, receipt, finished)
            return
        try:
            enqueued = commit_outcome(storage, task, apply)
        except BaseException:
            delivery.receipt = receipt  # the failed transaction released nothing
            raise
        after(enqueued)

    def _announce(self, task: 'Task', outcome: 'Outcome', enqueued: Optional[List['Task']],
                  then: Optional[Callable[[], None]]) -> None:
        """After the commit: the outcome's signals, then its followers' and immediate-mode runs."""
        queue = self.queue
        send = queue.signals.send
        # The task's own signals first: its followers (the next step, a chord's callback)
        # are enqueued after it completed, as with huey.
        for signal, subject, extra in outcome.on_applied if enqueued is not None else ():
            send(signal, subject, *extra)
        for signal, subject, extra in outcome.on_settled:
            send(signal, subject, *extra)
        if enqueued is not None:
            if queue.signals.has_receivers():
                for follower in enqueued:
                    send(SIGNAL_ENQUEUED, follower)
                for follower in outcome.schedule:
                    if follower is not task:
                        send(SIGNAL_SCHEDULED, follower)
            if queue.immediate:
                for _ in enqueued:
                    queue.executor.run_next_immediately()
        if then is not None:
            then()

    def _release_claim(self, delivery: 'Delivery', receipt: Any, dead_reason: Optional[str],
                       finished: Optional['Finished']) -> None:
        """Ack the claim (or move it to the dead letters) and record the run in the history;
        StaleClaim if the claim is not held."""
        storage = self.queue.storage
        if receipt is None:  # never claimed (immediate mode, at-most-once, local)
            if dead_reason is not None:
                storage.add_dead_letter(self.queue.serialize_task(delivery.task), dead_reason,
                                        delivery.attempts, key=delivery.task.id)
            if finished is not None:
                storage.record_finished([finished])
            return
        if not storage.finish(receipt, finished, dead_reason):
            raise StaleClaim()

    def _serialize_follower(self, follower: 'Task') -> bytes:
        queue = self.queue
        try:
            return queue.serialize_task(follower)
        except SerializationError:
            if follower.args and isinstance(follower.args[-1], BaseException):
                # An unpicklable exception handed to an error handler: pass its description.
                original = follower.args[-1]
                follower.args = follower.args[:-1] + (TaskException(
                    {'error': repr(original), 'task_id': follower.id}),)
                return queue.serialize_task(follower)
            raise
