"""A worker: the loop that claims tasks from a queue and executes them.

The same loop runs in a thread, a forked process or a greenlet; the consumer decides which.
Workers stop gracefully when their stop event is set (the running task finishes) or at once
when interrupted (``WorkerInterrupted`` raised inside the running task, which is then given
back to the queue).
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Iterator, Optional

from . import _accel
from ._logging import flush_all, line_logger
from .exceptions import StorageCorruptError, StorageError, TaskTimeout
from .outcomes import OutcomeGroup

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue
    from .delivery import Delivery
    from .storage.types import Claim
    from .task import Task

logger = logging.getLogger('sqlq.worker')

# How long an idle worker waits for a change notification before checking its stop event.
IDLE_WAIT = 0.25
# Batch claims hold about this many seconds of work (by the measured run time), at most
# MAX_BATCH tasks: a short wait for a task claimed behind others, a short revoke window.
# (128 wrote a quarter less WAL per drained task -- fewer claim commits, each rewriting the
# same index pages, bench/wal_pages.py -- but an urgent task waited ~1 ms longer for a worker
# busy in its longer transactions, bench/scale.py: 64 it stays.)
BATCH_WINDOW = 0.005
MAX_BATCH = 64
# Finished tasks' outcomes are committed together once this many wait or the first has
# waited this long (seconds), or when the worker runs out of claimed tasks.
GROUP_MAX_SIZE = 128
GROUP_MAX_DELAY = 0.005
# Back-off while the storage is unreachable (seconds): first wait, then doubling up to the max.
RETRY_FIRST_DELAY = 0.1
RETRY_MAX_DELAY = 5.0
# Exit status of a process worker, and of ``sqlq consume``, that stopped because the database
# file is damaged (StorageCorruptError): EX_IOERR.
EXIT_STORAGE_CORRUPT = 74


class WorkerInterrupted(BaseException):
    """Raised inside a running task to stop its worker at once (immediate shutdown)."""


class ProcessStopEvent:
    """A multiprocessing Event whose ``is_set()`` reads a shared byte: no lock, no system
    call. Process workers check it before every task; ``Event.is_set()`` takes a
    cross-process lock each time."""

    def __init__(self, context: Any) -> None:
        self._event = context.Event()
        self._flag = context.RawValue('b', 0)

    def set(self) -> None:
        self._flag.value = 1
        self._event.set()

    def is_set(self) -> bool:
        return bool(self._flag.value)

    def wait(self, timeout: Optional[float] = None) -> bool:
        return bool(self._event.wait(timeout))


class RunState:
    """What a worker is running, readable by its consumer (shared memory for processes)."""

    def __init__(self, shared: Any = None) -> None:
        # [monotonic start of the running task or 0, its timeout or 0, tasks done]
        self.values = shared if shared is not None else [0.0, 0.0, 0.0]

    def started(self, task: 'Task') -> None:
        self.values[1] = float(task.options.timeout or 0.0)
        self.values[0] = time.monotonic()

    def finished(self) -> None:
        self.values[0] = 0.0
        self.values[2] = self.values[2] + 1

    @property
    def running_for(self) -> Optional[float]:
        start = self.values[0]
        return None if not start else time.monotonic() - start

    @property
    def timeout(self) -> Optional[float]:
        return self.values[1] or None

    @property
    def tasks_done(self) -> int:
        return int(self.values[2])


@contextlib.contextmanager
def alarm_timeout(task: 'Task') -> Iterator[None]:
    """Raise TaskTimeout inside ``task`` when it runs past its timeout (main thread only)."""
    timeout = task.options.timeout
    if not timeout:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise TaskTimeout('%s exceeded its timeout of %ss' % (task, timeout))

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Worker:
    """Claims and executes tasks until ``stop_event`` is set or ``max_tasks`` are done.

    When tasks are short, the worker claims several at once (one statement) into a local
    priority buffer and commits their outcomes in groups (see ``sqlq.outcomes``): the batch
    size follows the measured run time so that a batch holds about ``BATCH_WINDOW`` seconds
    of work, and is 1 for slow tasks. Unstarted claims go back to the queue when the worker
    stops. Only a claim recorded as started is charged a death if the process dies (see
    ``Storage.mark_started``): a claim of one is recorded when it is made; a batch's claims
    are not, so a death leaves the tasks buffered beside the running one uncharged, and a task
    taken back from a dead worker has its start recorded before it runs -- if it is the one
    killing workers, the next death counts against it and it alone.
    """

    def __init__(self, queue: 'Queue', stop_event: Any, name: str = 'worker',
                 max_tasks: Optional[int] = None, state: Optional[RunState] = None,
                 guard: Optional[Callable[['Task'], ContextManager[Any]]] = None,
                 idle_wait: float = IDLE_WAIT, parent_pid: Optional[int] = None,
                 max_batch: int = MAX_BATCH) -> None:
        self.queue = queue
        self.stop_event = stop_event
        self.name = name
        self.max_tasks = max_tasks
        self.state = state or RunState()
        self.guard = guard
        self.idle_wait = idle_wait
        self.parent_pid = parent_pid
        self.max_batch = max(1, max_batch)
        self.done = 0
        self.buffer = _accel.ClaimBuffer()
        self.outcomes = OutcomeGroup(queue.storage, max_size=GROUP_MAX_SIZE,
                                     max_delay=GROUP_MAX_DELAY)
        self._mean_run = BATCH_WINDOW  # seconds per task, moving average; starts at batch 1
        self._outage_since: Optional[float] = None
        self._log_info = line_logger(logger, logging.INFO)  # per-task lines, as huey logs them
        self._retry_delay = 0.0
        #: Receipts of claims that never reached the buffer, still to give back.
        self._unbuffered: list[Any] = []
        self._claim_outranking = queue.storage.claim_outranking

    def run(self) -> None:
        """The worker's whole life: startup hooks, the task loop, shutdown hooks."""
        self.queue.run_startup_hooks()
        try:
            # In a worker session the storage may hand this thread new tasks directly.
            with self.queue.outcome_writer.grouping(self.outcomes), \
                    self.queue.storage.worker_session():
                try:
                    self._loop()
                finally:
                    self._give_back()
        except WorkerInterrupted:
            logger.info('%s interrupted', self.name)
        finally:
            self.queue.run_shutdown_hooks()

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                logger.warning('%s: its consumer (pid %d) is gone; stopping', self.name,
                               self.parent_pid)
                break
            try:
                worked = self.run_once()
                if not worked and not self.stop_event.is_set():
                    self.queue.wait_for_change(self.idle_wait, topic='queue')
            except StorageCorruptError:
                raise  # not an outage: retrying cannot help (the consumer reports it)
            except StorageError as exc:
                self._storage_trouble(exc)
                continue
            if self._outage_since is not None:
                logger.info('%s: storage reachable again after %.1fs', self.name,
                            time.monotonic() - self._outage_since)
                self._outage_since, self._retry_delay = None, 0.0
            if worked and self.max_tasks and self.done >= self.max_tasks:
                logger.info('%s ran %d tasks (max-tasks): recycling', self.name, self.done)
                break

    def _storage_trouble(self, exc: StorageError) -> None:
        """Wait before trying again (0.1 s, doubling to 5 s); log once per outage."""
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            logger.error('%s: storage unavailable, retrying with back-off (nothing is lost: '
                         'claimed tasks and finished outcomes wait): %s', self.name, exc)
        self._retry_delay = min(RETRY_MAX_DELAY, max(RETRY_FIRST_DELAY, self._retry_delay * 2))
        self.stop_event.wait(self._retry_delay)

    def _give_back(self) -> None:
        """Commit the finished tasks' outcomes; return unstarted claims to the queue."""
        try:
            self.outcomes.flush()
        finally:
            self._release_buffer()

    def _release_buffer(self) -> None:
        """Give the unstarted claims back (kept, to try again, if the storage fails)."""
        self._release_unbuffered()
        unstarted = self.buffer.drain()
        if unstarted:
            try:
                self.queue.storage.release_unstarted([d.receipt for d in unstarted])
            except BaseException:
                for delivery in unstarted:
                    self.buffer.push(delivery.priority, delivery.seq, delivery)
                raise

    def _release_unbuffered(self) -> None:
        if self._unbuffered:
            self.queue.storage.release_unstarted(self._unbuffered)
            self._unbuffered = []

    def run_once(self) -> bool:
        """Claim (or take from the buffer) and execute one task; False if the queue had none."""
        delivery = self._next_delivery()
        if delivery is None:
            self.outcomes.flush()
            return False
        self.execute(delivery)
        if self.outcomes.due():
            self.outcomes.flush()
        return True

    def _next_delivery(self) -> Optional['Delivery']:
        buffer = self.buffer
        while True:
            if not buffer:
                if not self._claim():
                    return None
                if self.stop_event.is_set():
                    # The stop came while claiming: what the claim took is given back
                    # unstarted with the rest of the buffer (no task starts after a stop).
                    return None
                delivery: Delivery = buffer.pop()
            else:
                delivery = buffer.pop()
                if self._overtaken(delivery):
                    continue
            if delivery.recoveries and not delivery.start_recorded and \
                    delivery.receipt is not None and not self._record_start(delivery):
                continue  # its claim was taken over meanwhile: nothing to run
            return delivery

    def _overtaken(self, delivery: 'Delivery') -> bool:
        """Before a buffered task starts: claim what a producer made ready since with a
        higher priority (its wake-up says so), to run first; True if anything was claimed
        (``delivery`` is then back in the buffer)."""
        limit = self.max_batch
        if self.max_tasks:  # never more claims than it may still run (this one included)
            limit = min(limit, self.max_tasks - self.done - len(self.buffer) - 1)
        claims = self._claim_outranking(delivery.priority, limit)
        if not claims:
            return False
        self.buffer.push(delivery.priority, delivery.seq, delivery)
        self._buffer_claims(claims)
        return True

    def _record_start(self, delivery: 'Delivery') -> bool:
        """Record the start of a task taken back from a dead worker (it may have killed it),
        committing the waiting outcomes in the same transaction; False if its claim is gone."""
        storage, receipt = self.queue.storage, delivery.receipt
        try:
            started = bool(self.outcomes.flush_then(lambda: storage.mark_started(receipt)))
        except BaseException:
            self.buffer.push(delivery.priority, delivery.seq, delivery)  # still ours to run
            raise
        delivery.start_recorded = started
        return started

    def _claim(self) -> bool:
        """Claim the next batch into the buffer (committing waiting outcomes in the same
        transaction); False if the queue had nothing runnable."""
        limit = self.batch_size
        if self.max_tasks:
            limit = max(1, min(limit, self.max_tasks - self.done))
        storage = self.queue.storage
        self._release_unbuffered()  # claims an outage kept from going back, first
        while True:
            if len(self.outcomes):  # the flush joins the claim's transaction where it pays
                claims = self.outcomes.flush_then(lambda: storage.dequeue_many(limit))
            else:
                claims = storage.dequeue_many(limit)
            if not claims:
                return False
            if self._buffer_claims(claims):
                return True

    def _buffer_claims(self, claims: list['Claim']) -> bool:
        """Decode ``claims`` into the buffer; False if none was runnable."""
        queue = self.queue
        deliveries = []
        for index, claim in enumerate(claims):
            try:
                delivery = queue.deliver(claim)  # None: moved to the dead letters
            except BaseException:
                # Not buffered, so nobody would settle them: give them back (later, if
                # the storage fails now: never left claimed by this live worker).
                self._unbuffered.extend(c.receipt for c in claims[index:])
                with contextlib.suppress(Exception):
                    self._release_unbuffered()
                raise
            if delivery is not None:
                deliveries.append(delivery)
                self.buffer.push(claim.priority, claim.seq, delivery)
        if deliveries:
            queue.revocations.prefetch(
                deliveries, any(claim.flagged is not False for claim in claims))
            return True
        return False

    @property
    def batch_size(self) -> int:
        """How many tasks the next claim may take: about BATCH_WINDOW seconds of work."""
        return max(1, min(self.max_batch, int(BATCH_WINDOW / max(self._mean_run, 1e-6))))

    def execute(self, delivery: 'Delivery') -> None:
        task = delivery.task
        log = self._log_info
        if log is not None:
            log('Executing %s' % (task,))
        started = time.monotonic()
        self.state.started(task)
        try:
            self.queue.executor.run(delivery, guard=self.guard)
        except WorkerInterrupted:
            self.queue.executor.interrupt(delivery)
            logger.warning('%s interrupted; returned to the queue', task)
            raise
        except StorageCorruptError:
            raise
        except StorageError:
            if delivery.receipt is None:
                logger.exception('%s could not be executed', task)
            else:
                # Not started (a task's own errors are its outcome, written later by the
                # group): the checks before its start could not reach the storage. It runs
                # when the storage is back, not left claimed by this live worker.
                self.buffer.push(delivery.priority, delivery.seq, delivery)
                raise
        except Exception:
            # execute() records task failures itself; this is state-machine trouble.
            logger.exception('%s could not be executed; it stays claimed for recovery', task)
        finally:
            self.state.finished()
        self.done += 1
        elapsed = time.monotonic() - started
        self._mean_run += (elapsed - self._mean_run) * 0.25
        if log is not None:
            log('%s executed in %0.3fs' % (task, elapsed))


def run_process_worker(queue: 'Queue', stop_event: Any, name: str, max_tasks: Optional[int],
                       shared_state: Any, idle_wait: float, parent_pid: int) -> None:
    """Entry point of a worker process (forked; a spawned one comes through
    :func:`sqlq._spawn.run_spawned_worker`); it stops (after its current task) if its consumer
    process disappears, rather than claiming tasks as an orphan."""
    # The consumer coordinates shutdown: a terminal's Ctrl-C reaches the whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, 'SIGHUP'):  # not on Windows
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def on_term(signum: int, frame: Any) -> None:
        raise WorkerInterrupted()

    signal.signal(signal.SIGTERM, on_term)
    start_heartbeat(queue)
    # Without SIGALRM (Windows) the consumer's health check kills a worker past its timeout.
    worker = Worker(queue, stop_event, name=name, max_tasks=max_tasks,
                    state=RunState(shared_state),
                    guard=alarm_timeout if hasattr(signal, 'setitimer') else None,
                    idle_wait=idle_wait, parent_pid=parent_pid)
    try:
        worker.run()
    except WorkerInterrupted:
        pass
    except StorageCorruptError:
        sys.exit(EXIT_STORAGE_CORRUPT)  # the consumer reports it, once
    finally:
        flush_all()  # the process ends with os._exit: write queued log lines first


def start_heartbeat(queue: 'Queue') -> threading.Thread:
    """A daemon thread recording that this process (an owner of claims) is alive."""
    from .recovery import HEARTBEAT_INTERVAL

    def beat() -> None:
        while True:
            try:
                queue.heartbeat()
            except Exception:
                logger.exception('heartbeat failed')
            time.sleep(HEARTBEAT_INTERVAL)  # a timer, not synchronisation

    thread = threading.Thread(target=beat, name='sqlq-heartbeat', daemon=True)
    thread.start()
    return thread


def interrupt_thread(thread: threading.Thread) -> bool:
    """Raise WorkerInterrupted inside ``thread`` (at its next Python instruction)."""
    import ctypes
    if thread.ident is None or not thread.is_alive():
        return False
    count = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident),
                                                       ctypes.py_object(WorkerInterrupted))
    return bool(count == 1)


