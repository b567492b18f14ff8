"""What a task's run means: the retry and error policy, as a pure decision.

:func:`decide` turns a finished run (its value, or the exception it raised) into an
:class:`Outcome`: what to store as the result, which tasks follow (the next pipeline step, the
error handler, the retry), the chord member's value, whether the task is dead, and which
signals announce it. It reads the task and the queue's policy and writes nothing: the outcome
is recorded by :mod:`sqlq.outcomes` and announced by :mod:`sqlq.execution`.
"""
from __future__ import annotations

import copy
import datetime as _dt
import traceback
from typing import TYPE_CHECKING, Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from ._time import QueueTime, seconds
from .exceptions import (
    CancelExecution,
    RateLimitExceeded,
    RetryTask,
    TaskException,
    TaskLockedException,
    TaskTimeout,
)
from .options import TaskOptions
from .result import SKIPPED, Error
from .signals import (
    SIGNAL_CANCELED,
    SIGNAL_COMPLETE,
    SIGNAL_ERROR,
    SIGNAL_LOCKED,
    SIGNAL_RATE_LIMITED,
    SIGNAL_RETRYING,
    SIGNAL_SCHEDULED,
    SIGNAL_TIMEOUT,
)
from .storage.base import EMPTY

if TYPE_CHECKING:  # pragma: no cover
    from .task import Task

__all__ = ['Outcome', 'Policy', 'Retry', 'Signal', 'decide', 'error_metadata', 'error_result',
           'succeeded', 'failed', 'skipped', 'not_due']

#: A signal to send: (name, task, extra arguments).
Signal = Tuple[str, 'Task', Tuple[Any, ...]]
#: Builds the Error stored for a failed run: ``(task, exception, traceback text)``.
ErrorBuilder = Callable[['Task', BaseException, Optional[str]], Error]


class Policy(NamedTuple):
    """The queue options that shape outcomes."""
    #: Store return values (huey's ``results``).
    results: bool = True
    #: Store a None return value too.
    store_none: bool = False
    #: Store the error of an attempt that will be retried.
    store_intermediate_errors: bool = True


class Retry(NamedTuple):
    """How the task is set up for its next attempt (same id, so its Result still works)."""
    options: TaskOptions
    eta: Optional[_dt.datetime]


class Outcome:
    """What a run changes: written in one transaction that also releases the task's claim."""

    __slots__ = ('kind', 'result', 'enqueue', 'schedule', 'chord_value', 'final',
                 'dead_reason', 'retry', 'announce', 'on_settled', 'on_applied', 'failure',
                 'unreached')

    def __init__(self, kind: str, result: Any = EMPTY, enqueue: Sequence['Task'] = (),
                 schedule: Sequence['Task'] = (), chord_value: Any = EMPTY, final: bool = True,
                 dead_reason: Optional[str] = None, retry: Optional[Retry] = None,
                 announce: Sequence[Signal] = (), on_settled: Sequence[Signal] = (),
                 on_applied: Sequence[Signal] = (),
                 failure: Optional[Tuple[BaseException, str]] = None,
                 unreached: Sequence[str] = ()) -> None:
        #: 'complete', 'retry', 'failed', 'skipped' or 'not-due'.
        self.kind = kind
        #: Stored under the task's id (EMPTY: nothing).
        self.result = result
        #: Tasks made ready now: the next pipeline step, an error handler, a retry.
        self.enqueue = enqueue
        #: Tasks put in the schedule: a retry with a delay, a task not yet due.
        self.schedule = schedule
        #: The task's value as a chord member (EMPTY: not a member).
        self.chord_value = chord_value
        #: The task will not run again (its unique key is freed).
        self.final = final
        #: Failed for good: kept in the dead letters with this reason.
        self.dead_reason = dead_reason
        #: The retry's changes to the task, applied before the outcome is announced.
        self.retry = retry
        #: Signals sent before the outcome is written.
        self.announce = announce
        #: Signals sent once the outcome's transaction ended (written or rejected).
        self.on_settled = on_settled
        #: Signals sent once the outcome was written (not if its claim had been taken over).
        self.on_applied = on_applied
        #: The exception and traceback of a failed run that is logged as an error.
        self.failure = failure
        #: Result ids of the pipeline steps after a failed one, which will never run: they
        #: get its result (the error) too, so reading them raises instead of waiting.
        self.unreached = unreached

    @property
    def is_completion(self) -> bool:
        """True for the most common outcome: it only releases the claim and stores a result."""
        return (not self.enqueue and not self.schedule and self.chord_value is EMPTY
                and self.dead_reason is None and not self.unreached)

    def __repr__(self) -> str:
        return '<Outcome %s>' % self.kind


def error_metadata(task: 'Task', exception: BaseException,
                   tb: Optional[str] = None) -> Dict[str, Any]:
    """What is stored for a failed attempt (huey's ``build_error_result``): the exception's
    repr -- for a TaskException, the error of the task it came from --, the traceback, the
    task's id, name and retries left."""
    inner = exception.metadata.get('error') if isinstance(exception, TaskException) else None
    return {
        'error': inner if inner else repr(exception),
        'traceback': tb if tb is not None else ''.join(traceback.format_exception(
            type(exception), exception, exception.__traceback__)),
        'task_id': task.id,
        'task_name': task.name,
        'retries': task.options.retries,
    }


def error_result(task: 'Task', exception: BaseException, tb: Optional[str] = None) -> Error:
    """The Error stored for a failed attempt (see :func:`error_metadata`)."""
    return Error(error_metadata(task, exception, tb))


def succeeded(task: 'Task', value: Any, policy: Policy) -> Outcome:
    """The outcome of a run that returned ``value``."""
    store = policy.results and not task.periodic and (value is not None or policy.store_none)
    followers: Tuple['Task', ...] = ()
    chord_value = value if task.chord_config else EMPTY
    if task.on_complete is not None:
        follower = task.on_complete
        follower.extend_data(value)
        followers = (follower,)
        if task.chord_config:  # a chord member's value is its pipeline's last step's
            follower.chord_config, chord_value = task.chord_config, EMPTY
    return Outcome('complete', result=value if store else EMPTY, enqueue=followers,
                   chord_value=chord_value, on_applied=((SIGNAL_COMPLETE, task, ()),))


def skipped(task: 'Task', signal: str) -> Outcome:
    """The outcome of a task that did not run (expired, revoked, canceled): no result; a
    chord counts it as SKIPPED. ``signal`` is sent once it is recorded."""
    return Outcome('skipped', chord_value=SKIPPED if task.chord_config else EMPTY,
                   on_settled=((signal, task, ()),))


def not_due(task: 'Task') -> Outcome:
    """The outcome of a task whose eta has not come: back to the schedule."""
    return Outcome('not-due', schedule=(task,), final=False,
                   on_settled=((SIGNAL_SCHEDULED, task, ()),))


def failed(task: 'Task', exception: BaseException, tb: str, error: Error, policy: Policy,
           time: QueueTime, retry: bool = True) -> Outcome:
    """The outcome of a run that raised ``exception`` (``error``: what it stores).

    As huey: a retry keeps the task's id. RetryTask and RateLimitExceeded(retry=True) retry
    without using up one of the task's retries; CancelExecution(retry=True) retries even
    without retries left; other exceptions use one, if any are left (never with
    ``retry=False``). A failure is *reported* -- its error stored as the result, the
    ``on_error`` handler run with it -- when it is final, and on each attempt that will be
    retried if ``store_intermediate_errors`` (except the waits RetryTask, a rate limit and a
    held lock ask for). Each kind sends its own signal: ERROR (with the exception) for an
    ordinary error, TIMEOUT, LOCKED, RATE_LIMITED or CANCELED for those.
    """
    announce: List[Signal] = []
    eta: Any = None
    delay: Optional[float] = None
    retries_left = task.options.retries > 0
    consume = retries_left
    waiting = False  # a retry that only waits (for a time, a rate limit window, a lock)
    logged: Optional[Tuple[BaseException, str]] = None
    if isinstance(exception, RetryTask):
        retryable, consume, waiting = True, False, True
        eta, delay = exception.eta, exception.delay
    elif isinstance(exception, RateLimitExceeded):
        announce.append((SIGNAL_RATE_LIMITED, task, ()))
        retryable = exception.retry or retries_left
        consume = not exception.retry
        waiting = True
        if not task.options.retry_delay:  # the task's own retry_delay wins, as with huey
            delay = exception.delay
    elif isinstance(exception, CancelExecution):
        announce.append((SIGNAL_CANCELED, task, ()))
        retryable = retries_left if exception.retry is None else bool(exception.retry)
    else:
        if isinstance(exception, TaskLockedException):
            announce.append((SIGNAL_LOCKED, task, ()))
            waiting = True
        elif isinstance(exception, TaskTimeout):
            announce.append((SIGNAL_TIMEOUT, task, ()))
        else:
            announce.append((SIGNAL_ERROR, task, (exception,)))
        logged = (exception, tb)
        retryable = retries_left
    retryable = retryable and retry

    reported = not retryable or (policy.store_intermediate_errors and not waiting)
    result = error if reported and policy.results else EMPTY
    handlers: Tuple['Task', ...] = ()
    if reported and task.on_error is not None:
        handler = copy.copy(task.on_error)  # the task keeps its handler for a later attempt
        handler.extend_data((exception,))
        handlers = (handler,)

    if retryable:
        plan = next_attempt(task, consume, eta, delay, time)
        announce.append((SIGNAL_RETRYING, task, ()))
        if plan.eta is not None:
            return Outcome('retry', result=result, enqueue=handlers, schedule=(task,),
                           final=False, retry=plan, announce=announce,
                           on_settled=((SIGNAL_SCHEDULED, task, ()),), failure=logged)
        return Outcome('retry', result=result, enqueue=handlers + (task,), final=False,
                       retry=plan, announce=announce, failure=logged)

    # Not a failure of the task's own: a cancel counts as skipped in a chord, and is not
    # kept as a dead letter.
    canceled = isinstance(exception, (CancelExecution, RetryTask))
    chord_value = (SKIPPED if canceled else error) if task.chord_config else EMPTY
    dead_reason = None if canceled else '%s\n%s' % (error.metadata.get('error'), tb)
    return Outcome('failed', result=result, enqueue=handlers, chord_value=chord_value,
                   dead_reason=dead_reason, announce=announce, failure=logged,
                   unreached=unreached_steps(task) if result is not EMPTY else ())


def unreached_steps(task: 'Task') -> Tuple[str, ...]:
    """Ids of the pipeline steps after ``task`` (which failed for good): they never run."""
    return () if task.on_complete is None else tuple(t.id for t in task.on_complete.chain())


def next_attempt(task: 'Task', consume: bool, eta: Any, delay: Optional[float],
                 time: QueueTime) -> Retry:
    """The options and eta of the task's next attempt: one retry fewer if ``consume``; at
    ``eta``, after ``delay``, or after its ``retry_delay`` (which then grows by
    ``retry_backoff``)."""
    options = task.options
    if consume:
        options = options._replace(retries=options.retries - 1)
    if eta is not None:
        return Retry(options, time.resolve_eta(eta, None))
    wait = seconds(delay, 'delay') if delay is not None else options.retry_delay
    if delay is None and options.retry_delay and options.retry_backoff and \
            options.retry_backoff != 1:
        options = options._replace(retry_delay=options.retry_delay * options.retry_backoff)
    return Retry(options, time.datetime(time.now() + wait) if wait else None)


def decide(task: 'Task', value: Any = None, exception: Optional[BaseException] = None,
           tb: str = '', *, policy: Policy, build_error: ErrorBuilder, time: QueueTime,
           attempts: int = 0, retry: bool = True) -> Outcome:
    """The outcome of a run of ``task``: it returned ``value``, or raised ``exception`` (with
    traceback text ``tb``) on its ``attempts``-th claim."""
    if exception is None:
        return succeeded(task, value, policy)
    error = build_error(task, exception, tb)
    error.metadata.setdefault('attempts', attempts)
    return failed(task, exception, tb, error, policy, time, retry)
