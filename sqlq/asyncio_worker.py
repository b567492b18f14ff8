"""The asyncio worker (``sqlq consume app.queue -k asyncio -w 100``): tasks run on one event
loop, up to ``concurrency`` of them at once.

Storage calls block (apsw, redis-py), so none is made on the loop. The worker is three
threads, each waiting on exactly what concerns it:

- the **loop thread** (the consumer's worker handle) runs the event loop: each task handed to
  it becomes an asyncio Task that awaits the task's coroutine (cancelled at its timeout:
  :meth:`~sqlq.execution.Executor.ainvoke`), or runs a plain function in a pool of
  ``concurrency`` threads;
- the **claimer** is a :class:`~sqlq.worker.Worker` (the thread workers' loop: worker session
  and hand-off, batch claims into its buffer, start records of recovered tasks, the give-back
  of unstarted claims at stop, back-off across storage outages) whose step, instead of running
  a task, takes free slots, admits that many tasks (the state machine's checks before a run:
  due, expired, revoked, pre-execute hooks, SIGNAL_EXECUTING) and hands them to the loop in one
  call. It waits for new work in the storage's ``wait_for_change`` only while slots are free,
  and for a free slot otherwise. At stop it keeps its worker session open until every run's
  outcome is committed (the session's end releases the messages handed to it);
- the **committer** decides and records the outcome of each finished run
  (:meth:`~sqlq.execution.Executor.conclude`) into its :class:`~sqlq.outcomes.OutcomeGroup`,
  committed once it is due (128 outcomes or 5 ms) or at once when nothing else runs, and only
  then frees the run's slot: a process holds at most ``concurrency`` runs whose outcomes are
  not yet in a group, plus one group.

A claim is released only by the commit of its outcome, as with every worker: a process killed
at any point leaves its tasks claimed, and dead-owner recovery gives them back.

Why threads rather than ``run_in_executor`` per storage call: a worker session (the hand-off
of a single enqueue to an idle worker) and SQLite's per-thread connections tie claims and
waits to one thread, and a blocking wait for new work must not delay the commit of a finished
task's outcome, so claims and commits each get a thread of their own; handing a batch of
tasks to the loop costs one ``call_soon_threadsafe``, a finished task one queue put.
"""
from __future__ import annotations

import asyncio
import logging
import queue as _queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ._logging import line_logger
from .exceptions import StorageError
from .outcomes import OutcomeGroup
from .worker import (
    BATCH_WINDOW,
    GROUP_MAX_DELAY,
    GROUP_MAX_SIZE,
    IDLE_WAIT,
    RETRY_FIRST_DELAY,
    RETRY_MAX_DELAY,
    RunState,
    Worker,
    WorkerInterrupted,
    interrupt_thread,
)

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue
    from .delivery import Delivery
    from .execution import Ran

__all__ = ['AsyncioWorker']

logger = logging.getLogger('sqlq.worker')

#: What the committer receives: a finished run ``(delivery, ran, seconds)``, an interrupted
#: run ``(delivery, None, 0.0)``, or None (stop).
_Finished = Optional[Tuple['Delivery', Optional['Ran'], float]]


class _Slots:
    """How many more tasks the loop may run now (taken by the claimer, given back by the
    committer once a run's outcome is in its group)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.free = size
        self._cond = threading.Condition()

    def take(self, most: int, timeout: float) -> int:
        """Up to ``most`` free slots (0 if none became free within ``timeout`` seconds)."""
        with self._cond:
            if not self.free and timeout > 0:
                self._cond.wait(timeout)
            taken = min(self.free, most)
            self.free -= taken
            return taken

    def give(self, count: int = 1) -> None:
        if count:
            with self._cond:
                self.free += count
                self._cond.notify()

    def all_free(self) -> bool:
        return self.free == self.size


class _Claimer(Worker):
    """The thread workers' loop, whose step admits tasks and hands them to the event loop."""

    def __init__(self, owner: 'AsyncioWorker', *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner
        self._free = 1  # the slots of the current step: the least a claim takes

    @property
    def batch_size(self) -> int:
        """A claim fills the free slots, or takes about BATCH_WINDOW seconds of work."""
        by_time = int(BATCH_WINDOW / max(self._mean_run, 1e-6))
        return max(1, min(self.max_batch, max(self._free, by_time)))

    def run_once(self) -> bool:
        slots = self.owner.slots
        most = self.max_batch
        if self.max_tasks:
            most = max(0, min(most, self.max_tasks - self.done))
        free = slots.take(most, 0.0)
        if not free:
            self.outcomes.flush()  # the skipped tasks' outcomes: nothing else to do meanwhile
            free = slots.take(most, self.idle_wait)
            if not free:
                return True  # all busy: the loop checks the stop event, then comes back
        if self.stop_event.is_set():  # (a slot freed by a stop's interruption)
            slots.give(free)
            return True
        self._free = free
        admitted: List['Delivery'] = []
        delivery: Optional['Delivery'] = None
        try:
            while len(admitted) < free:
                delivery = self._next_delivery()
                if delivery is None:
                    break
                if self._admit(delivery):
                    admitted.append(delivery)
        finally:
            slots.give(free - len(admitted))
            if admitted:
                self.done += len(admitted)
                self.owner.dispatch(admitted)
        if delivery is None and not admitted:
            self.outcomes.flush()
            return False  # idle: wait for new work
        if self.outcomes.due():
            self.outcomes.flush()
        return True

    def _give_back(self) -> None:
        """At stop: give back the unstarted claims, then stay in the worker session until the
        loop's runs are over and their outcomes committed: ending it releases the messages
        handed to this thread, running ones included."""
        try:
            super()._give_back()
        finally:
            self.owner.claims_done()
            self.owner.settled.wait()

    def _admit(self, delivery: 'Delivery') -> bool:
        """The checks before the run (see ``Executor.admit``): True to run it now."""
        task = delivery.task
        try:
            admitted = self.queue.executor.admit(delivery)
        except StorageError:
            if delivery.receipt is None:
                logger.exception('%s could not be executed', task)
                return False
            self.buffer.push(delivery.priority, delivery.seq, delivery)  # runs when back
            raise
        except Exception:
            logger.exception('%s could not be executed; it stays claimed for recovery', task)
            return False
        if admitted and self._log_info is not None:
            self._log_info('Executing %s' % (task,))
        return admitted


class _Committer:
    """Decides and records finished runs' outcomes in groups; frees their slots."""

    def __init__(self, owner: 'AsyncioWorker') -> None:
        self.owner = owner
        self.items: '_queue.SimpleQueue[_Finished]' = _queue.SimpleQueue()
        self.outcomes = OutcomeGroup(owner.queue.storage, max_size=GROUP_MAX_SIZE,
                                     max_delay=GROUP_MAX_DELAY)
        self._log_info = line_logger(logger, logging.INFO)
        self._retry_at = 0.0
        self._retry_delay = 0.0

    def put(self, item: _Finished) -> None:
        self.items.put(item)

    def run(self) -> None:
        queue = self.owner.queue
        with queue.outcome_writer.grouping(self.outcomes):
            try:
                self._loop()
            finally:
                try:
                    self.outcomes.flush()
                except Exception:
                    logger.exception('%s: finished tasks\' outcomes could not be committed at '
                                     'stop; they stay claimed for recovery', self.owner.name)

    def _loop(self) -> None:
        items, outcomes = self.items, self.outcomes
        while True:
            timeout: Optional[float] = None
            if len(outcomes):
                timeout = max(0.0, max(outcomes._deadline, self._retry_at) - time.monotonic())
            try:
                item = items.get(timeout=timeout)
            except _queue.Empty:
                pass  # the group is due: flush it
            else:
                if item is None:
                    return
                self._handle(item)
            if len(outcomes) and time.monotonic() >= self._retry_at and (
                    outcomes.due() or (items.empty() and self.owner.slots.all_free())):
                self._flush()

    def _handle(self, item: Tuple['Delivery', Optional['Ran'], float]) -> None:
        delivery, ran, elapsed = item
        owner, executor = self.owner, self.owner.queue.executor
        task = delivery.task
        try:
            if ran is None:
                executor.interrupt(delivery)
                logger.warning('%s interrupted; returned to the queue', task)
            else:
                executor.conclude(delivery, *ran)
                if self._log_info is not None:
                    self._log_info('%s executed in %0.3fs' % (task, elapsed))
        except Exception:
            logger.exception('%s could not be executed; it stays claimed for recovery', task)
        finally:
            owner.state.finished()
            claimer = owner.claimer
            claimer._mean_run += (elapsed - claimer._mean_run) * 0.25
            owner.slots.give()

    def _flush(self) -> None:
        try:
            self.outcomes.flush()
        except StorageError as exc:
            if not self._retry_delay:
                logger.error('%s: storage unavailable, retrying with back-off (nothing is '
                             'lost: finished outcomes wait): %s', self.owner.name, exc)
            self._retry_delay = min(RETRY_MAX_DELAY, max(RETRY_FIRST_DELAY,
                                                         self._retry_delay * 2))
            self._retry_at = time.monotonic() + self._retry_delay
        else:
            self._retry_at, self._retry_delay = 0.0, 0.0


class AsyncioWorker:
    """Runs a queue's tasks on an event loop, ``concurrency`` at once, until ``stop_event``
    is set (graceful: running tasks finish) or :meth:`interrupt` is called (running tasks are
    cancelled and go back to the queue)."""

    def __init__(self, queue: 'Queue', stop_event: Any, name: str = 'worker',
                 concurrency: int = 1, max_tasks: Optional[int] = None,
                 state: Optional[RunState] = None, idle_wait: float = IDLE_WAIT) -> None:
        self.queue = queue
        self.name = name
        self.concurrency = max(1, concurrency)
        self.state = state or RunState()
        self.slots = _Slots(self.concurrency)
        self.claimer = _Claimer(self, queue, stop_event, name, max_tasks, self.state,
                                idle_wait=idle_wait)
        self.committer = _Committer(self)
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self._running: Dict['asyncio.Task[None]', 'Delivery'] = {}
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=name + '-sync')
        #: The pool threads running a plain task now (interrupted by :meth:`interrupt`).
        self._sync_threads: Dict[int, threading.Thread] = {}
        self._interrupting = False
        self._claimer_done: Optional['asyncio.Future[None]'] = None
        #: Set once every run handed to the loop has its outcome committed (or the worker
        #: gave up on it): the claimer may then end its worker session.
        self.settled = threading.Event()

    # -- the loop thread -----------------------------------------------------------------------
    def run(self) -> None:
        """The worker's whole life, in the calling thread (which runs the event loop)."""
        try:
            asyncio.run(self._main())
        finally:
            self._pool.shutdown(wait=False)

    async def _main(self) -> None:
        loop = self.loop = asyncio.get_running_loop()
        self._claimer_done = loop.create_future()
        committer = threading.Thread(target=self.committer.run, daemon=True,
                                     name='%s-commit' % self.name)
        claimer = threading.Thread(target=self._claim, daemon=True, name='%s-claim' % self.name)
        committer.start()
        try:
            claimer.start()
            await self._claimer_done
            while self._running:  # graceful: the running tasks finish
                await asyncio.wait(list(self._running))
        finally:
            self.committer.put(None)
            await loop.run_in_executor(None, committer.join)
            self.settled.set()
            await loop.run_in_executor(None, claimer.join)

    def _claim(self) -> None:
        try:
            self.claimer.run()
        except BaseException:
            logger.exception('%s: its claimer stopped', self.name)
        finally:
            self.claims_done()

    def claims_done(self) -> None:
        """From the claimer: it hands over no more tasks."""
        assert self.loop is not None and self._claimer_done is not None
        self.loop.call_soon_threadsafe(_set_done, self._claimer_done)

    def dispatch(self, deliveries: List['Delivery']) -> None:
        """From the claimer: run these admitted tasks (each has a slot)."""
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self._start, deliveries)

    def _start(self, deliveries: List['Delivery']) -> None:
        running = self._running
        for delivery in deliveries:
            if self._interrupting:  # handed over as the stop began: straight back
                self.committer.put((delivery, None, 0.0))
                continue
            task = asyncio.ensure_future(self._run(delivery))
            running[task] = delivery
            task.add_done_callback(self._forget)

    def _forget(self, task: 'asyncio.Task[None]') -> None:
        self._running.pop(task, None)

    async def _run(self, delivery: 'Delivery') -> None:
        started = time.monotonic()
        ran: Optional[Ran]
        try:
            if delivery.task.is_async:
                ran = await self.queue.executor.ainvoke(delivery)
            else:
                assert self.loop is not None
                ran = await self.loop.run_in_executor(self._pool, self._invoke, delivery)
        except (asyncio.CancelledError, WorkerInterrupted) as exc:
            if self._interrupting:
                ran = None  # given back to the queue
            else:  # the task cancelled itself: its failure
                ran = (None, exc, _format(exc))
        self.committer.put((delivery, ran, time.monotonic() - started))

    def _invoke(self, delivery: 'Delivery') -> 'Ran':
        """A plain task's run, in a pool thread."""
        thread = threading.current_thread()
        self._sync_threads[thread.ident or 0] = thread
        try:
            return self.queue.executor.invoke(delivery)
        finally:
            self._sync_threads.pop(thread.ident or 0, None)

    # -- from the consumer ---------------------------------------------------------------------
    def interrupt(self) -> None:
        """Stop at once: cancel the running coroutines, interrupt the plain tasks' threads;
        their tasks go back to the queue (SIGNAL_INTERRUPTED). Set the stop event first."""
        self._interrupting = True
        loop = self.loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._cancel_all)
            except RuntimeError:
                pass  # the loop is closed: nothing runs
        for thread in list(self._sync_threads.values()):
            interrupt_thread(thread)

    def _cancel_all(self) -> None:
        for task in self._running:
            task.cancel()


def _set_done(future: 'asyncio.Future[None]') -> None:
    if not future.done():
        future.set_result(None)


def _format(exc: BaseException) -> str:
    import traceback
    return ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__))

