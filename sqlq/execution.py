"""Running a task: the execute state machine, from a storage claim to a recorded outcome.

Order: not yet due -> back to the schedule; expired -> dropped; revoked -> dropped;
pre-execute hooks (CancelExecution cancels); run; then the outcome (:mod:`sqlq.decisions`) is
announced and recorded (:mod:`sqlq.outcomes`) and the post-execute hooks run once it is
committed. Cross-cutting behaviour of a run -- retries, timeouts' guard, signals, hooks --
lives here and in those two modules, not in the worker.
"""
from __future__ import annotations

import logging
import time
import traceback
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Dict, Optional, Tuple, Union

from ._aio import run_with_timeout
from ._time import Timestamp
from .decisions import Outcome, decide, not_due, skipped, succeeded
from .delivery import Delivery, mark_running, unmark_running
from .exceptions import CancelExecution, DeserializationError, SerializationError, UnknownTaskError
from .result import Error
from .signals import (
    SIGNAL_CANCELED,
    SIGNAL_EXECUTING,
    SIGNAL_EXPIRED,
    SIGNAL_INTERRUPTED,
    SIGNAL_RETRYING,
    SIGNAL_REVOKED,
)
from .task import Task

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue
    from .storage.base import Claim

__all__ = ['Executor', 'Guard']

logger = logging.getLogger('sqlq')

#: Seconds before its eta a task may be claimed and still run (its worker waits for the eta)
#: instead of going back to the schedule: the consumer's scheduler moves due tasks to the
#: queue a moment early (``Scheduler.lead``), so that they start on time, not a wake-up late.
EARLY_WAIT = 0.005

#: A context manager entered around the task function alone (the consumer enforces
#: timeouts so).
Guard = Callable[[Task], ContextManager[Any]]
#: What a run of a task function gave: (value, exception or None, traceback text).
Ran = Tuple[Any, Optional[BaseException], str]


class Executor:
    """Takes a queue's claims and runs their tasks."""

    def __init__(self, queue: 'Queue') -> None:
        self.queue = queue
        # Deliveries of the tasks ``dequeue`` returned, until ``execute`` runs them.
        self._dequeued: Dict[int, Delivery] = {}

    # -- claims --------------------------------------------------------------------------------
    def deliver(self, claim: 'Claim') -> Optional[Delivery]:
        """The delivery of a storage claim, ready to run; None if the claim was moved to the
        dead letters instead (quarantined or unusable)."""
        queue = self.queue
        storage = queue.storage
        if claim.deaths >= queue.quarantine_after:
            reason = ('quarantined: its worker died %d times while running it (the task '
                      'may crash or kill the process that runs it)' % claim.deaths)
            logger.error('task moved to dead letters: %s', reason)
            storage.bury(claim.receipt, reason)
            return None
        try:
            task = queue.deserialize_task(claim.data)
        except Exception as exc:
            # Whatever a message that cannot become a task raises -- DeserializationError,
            # UnknownTaskError, or a TypeError from data that is not even bytes -- it is
            # buried with the reason: one bad row must never stop the queue behind it.
            if not isinstance(exc, (DeserializationError, UnknownTaskError)):
                exc = DeserializationError('cannot decode a message of type %s: %s: %s' % (
                    type(claim.data).__name__, type(exc).__name__, exc))
            reason = '%s: %s' % (type(exc).__name__, exc)
            logger.error('unusable message moved to dead letters: %s', reason)
            storage.bury(claim.receipt, reason)
            return None
        delivery = Delivery(task, claim.receipt, claim.attempts, claim.recoveries,
                            claim.priority, claim.seq)
        if task.at_most_once:
            storage.ack(claim.receipt)  # gone before it runs: never run twice
            delivery.receipt = None
        return delivery

    def dequeue(self) -> Optional[Task]:
        """Claim the next ready task (see ``Queue.dequeue``); ``execute`` settles its claim."""
        while True:
            claim = self.queue.storage.dequeue()
            if claim is None:
                return None
            delivery = self.deliver(claim)
            if delivery is not None:
                self._dequeued[id(delivery.task)] = delivery
                return delivery.task

    def delivery_of(self, task: Task) -> Delivery:
        """The delivery of a task ``dequeue`` returned (taken: only once), or an unclaimed one."""
        delivery = self._dequeued.pop(id(task), None)
        if delivery is None or delivery.task is not task:
            return Delivery(task)
        return delivery

    def pending_delivery(self, task: Task) -> Optional[Delivery]:
        """The delivery of a task ``dequeue`` returned and ``execute`` has not run yet."""
        delivery = self._dequeued.get(id(task))
        return delivery if delivery is not None and delivery.task is task else None

    def interrupt(self, delivery: Delivery) -> None:
        """Give a claimed task that was stopped mid-run back to the queue (SIGNAL_INTERRUPTED)."""
        if delivery.span is not None:
            delivery.span.end()
        if delivery.receipt is not None:
            self.queue.storage.release(delivery.receipt)
            delivery.receipt = None
        self.queue.signals.send(SIGNAL_INTERRUPTED, delivery.task)

    # -- running -------------------------------------------------------------------------------
    def execute(self, task: Union[Task, Delivery], timestamp: Optional[Timestamp] = None,
                guard: Optional[Guard] = None) -> Any:
        """Run ``task`` (claimed by ``dequeue``, or local; or a claim's delivery) and record
        its outcome."""
        if isinstance(task, Delivery):
            return self.run(task, timestamp, guard)
        if not isinstance(task, Task):
            raise TypeError('execute expects a Task, not %s' % type(task).__name__)
        return self.run(self.delivery_of(task), timestamp, guard)

    def run(self, delivery: Delivery, timestamp: Optional[Timestamp] = None,
            guard: Optional[Guard] = None) -> Any:
        """The state machine for one delivery; returns the task's value (None if it did not
        run or failed)."""
        if not self.admit(delivery, timestamp):
            return None
        value, exception, tb = self.invoke(delivery, guard)
        self.conclude(delivery, value, exception, tb)
        return value

    # The three steps of ``run``, apart for a worker that runs the task function elsewhere
    # (the asyncio worker: admit and conclude in its storage threads, the run on its loop).
    def admit(self, delivery: Delivery, timestamp: Optional[Timestamp] = None) -> bool:
        """The checks before a run: True if the task runs now (SIGNAL_EXECUTING sent, the
        pre-execute hooks passed); otherwise its outcome (not due, expired, revoked,
        canceled) is recorded and False returned. With tracing, the attempt's span starts
        here and ends with its outcome."""
        queue = self.queue
        tracing = queue.tracing
        if tracing is not None and delivery.span is None and tracing.start(delivery):
            return tracing.admit(delivery, lambda: self.admit(delivery, timestamp))
        task = delivery.task
        now = queue.time.timestamp(timestamp)
        if task.eta is not None and queue.time.to_timestamp(task.eta) > now:
            early = queue.time.to_timestamp(task.eta) - now
            if timestamp is not None or early > EARLY_WAIT:
                self.record(delivery, not_due(task))
                return False
            time.sleep(early)  # moved a moment early by the scheduler (Scheduler.lead)
            now += early
        if task.expires_resolved is not None and \
                queue.time.to_timestamp(task.expires_resolved) < now:
            self.record(delivery, skipped(task, SIGNAL_EXPIRED))
            return False
        if queue.revocations.is_revoked(task, now, peek=False, delivery=delivery):
            self.record(delivery, skipped(task, SIGNAL_REVOKED))
            return False
        queue.signals.send(SIGNAL_EXECUTING, task)  # before the hooks, as with huey
        try:
            queue.hooks.pre_execute.run(task, propagate=(CancelExecution,))
        except CancelExecution:
            self.record(delivery, skipped(task, SIGNAL_CANCELED))
            return False
        return True

    @staticmethod
    def invoke(delivery: Delivery, guard: Optional[Guard] = None) -> Ran:
        """Run the task function (inside ``guard``): ``(value, exception, traceback text)``.
        An Exception is the run's outcome; a BaseException (WorkerInterrupted) propagates."""
        span = delivery.span
        if span is not None and not span.inside:  # with the attempt's span current
            return span.within(lambda: Executor.invoke(delivery, guard))
        task = delivery.task
        token = mark_running(delivery)
        try:
            if guard is None:
                return task.execute(), None, ''
            with guard(task):
                return task.execute(), None, ''
        except Exception as exc:
            return None, exc, traceback.format_exc()
        finally:
            unmark_running(delivery, token)

    @staticmethod
    async def ainvoke(delivery: Delivery) -> Ran:
        """:meth:`invoke` for an async task on a running event loop: its coroutine awaited,
        cancelled at its timeout (TaskTimeout). Cancellation of the caller propagates."""
        span = delivery.span
        if span is not None and not span.inside:
            return await span.awithin(lambda: Executor.ainvoke(delivery))
        task = delivery.task
        token = mark_running(delivery)
        try:
            return await run_with_timeout(task.call(), task.options.timeout, task), None, ''
        except Exception as exc:
            return None, exc, traceback.format_exc()
        finally:
            unmark_running(delivery, token)

    def conclude(self, delivery: Delivery, value: Any, exception: Optional[BaseException],
                 tb: str) -> None:
        """Decide and record the outcome of a run (the post-execute hooks run once it is
        committed)."""
        span = delivery.span
        if span is not None and not span.inside:
            span.within(lambda: self.conclude(delivery, value, exception, tb))
            span.end()
            return
        queue = self.queue
        task = delivery.task

        def post_execute() -> None:
            queue.hooks.post_execute.run(task, value, exception)

        outcome = succeeded(task, value, queue.policy) if exception is None else \
            self.decide(delivery, value, exception, tb)
        self.record(delivery, outcome, then=post_execute)

    def decide(self, delivery: Delivery, value: Any, exception: Optional[BaseException],
               tb: str, retry: bool = True) -> Outcome:
        """The outcome of a run of the delivered task, by the queue's policy."""
        queue = self.queue
        return decide(delivery.task, value, exception, tb, policy=queue.policy,
                      build_error=self.build_error, time=queue.time,
                      attempts=delivery.attempts, retry=retry)

    def build_error(self, task: Task, exception: BaseException, tb: Optional[str]) -> Error:
        """The Error stored for a failed attempt: the metadata of the queue's
        ``build_error_result(task, exception)`` (huey's hook, which a subclass may extend)."""
        built = self.queue.build_error_result(task, exception)
        return built if isinstance(built, Error) else Error(dict(built))

    def record(self, delivery: Delivery, outcome: Outcome,
               then: Optional[Callable[[], None]] = None) -> None:
        """Announce ``outcome`` (log, signals, the retry's changes to the task) and record it.

        A result that cannot be serialized fails the task instead (without a retry).
        """
        queue = self.queue
        task = delivery.task
        if delivery.span is not None:
            delivery.span.outcome(outcome)
        if outcome.failure is not None:
            exception, tb = outcome.failure
            logger.error('task %s failed: %r\n%s', task, exception, tb.rstrip())
        retry = outcome.retry
        for signal, subject, extra in outcome.announce:
            if signal == SIGNAL_RETRYING and retry is not None:
                task.options, task.eta = retry  # its receivers see the next attempt
            queue.signals.send(signal, subject, *extra)
        if retry is not None:
            task.options, task.eta = retry
        try:
            queue.outcome_writer.settle(delivery, outcome, then)
        except SerializationError as exc:  # raised before anything was written
            if outcome.kind != 'complete':
                raise
            logger.error('result of %s cannot be stored: %s', task, exc)
            self.record(delivery, self.decide(delivery, None, exc, traceback.format_exc(),
                                              retry=False), then)

    def run_next_immediately(self) -> None:
        """Immediate mode: run the next ready task (a follower an outcome just enqueued)."""
        queue = self.queue
        claim = queue.storage.dequeue()
        if claim is None:
            return
        delivery = self.deliver(claim)
        if delivery is not None:
            self.run(delivery)

