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
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Iterator, Optional

from ._logging import flush_all
from .exceptions import TaskTimeout

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue
    from .task import Task

logger = logging.getLogger('sqlq.worker')

# How long an idle worker waits for a change notification before checking its stop event.
IDLE_WAIT = 0.25


class WorkerInterrupted(BaseException):
    """Raised inside a running task to stop its worker at once (immediate shutdown)."""


class RunState:
    """What a worker is running, readable by its consumer (shared memory for processes)."""

    def __init__(self, shared: Any = None) -> None:
        # [monotonic start of the running task or 0, its timeout or 0, tasks done]
        self.values = shared if shared is not None else [0.0, 0.0, 0.0]

    def started(self, task: 'Task') -> None:
        self.values[1] = float(task.timeout or 0.0)
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
    if not task.timeout:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise TaskTimeout('%s exceeded its timeout of %ss' % (task, task.timeout))

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, task.timeout)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Worker:
    """Claims and executes tasks until ``stop_event`` is set or ``max_tasks`` are done."""

    def __init__(self, queue: 'Queue', stop_event: Any, name: str = 'worker',
                 max_tasks: Optional[int] = None, state: Optional[RunState] = None,
                 guard: Optional[Callable[['Task'], ContextManager[Any]]] = None,
                 idle_wait: float = IDLE_WAIT, parent_pid: Optional[int] = None) -> None:
        self.queue = queue
        self.stop_event = stop_event
        self.name = name
        self.max_tasks = max_tasks
        self.state = state or RunState()
        self.guard = guard
        self.idle_wait = idle_wait
        self.parent_pid = parent_pid
        self.done = 0

    def run(self) -> None:
        """The worker's whole life: startup hooks, the task loop, shutdown hooks."""
        self.queue.run_startup_hooks()
        try:
            while not self.stop_event.is_set():
                if self.parent_pid is not None and os.getppid() != self.parent_pid:
                    logger.warning('%s: its consumer (pid %d) is gone; stopping', self.name,
                                   self.parent_pid)
                    break
                if not self.run_once():
                    self.queue.wait_for_change(self.idle_wait, topic='queue')
                elif self.max_tasks and self.done >= self.max_tasks:
                    logger.info('%s ran %d tasks (max-tasks): recycling', self.name, self.done)
                    break
        except WorkerInterrupted:
            logger.info('%s interrupted', self.name)
        finally:
            self.queue.run_shutdown_hooks()

    def run_once(self) -> bool:
        """Claim and execute one task; False if the queue had none."""
        task = self.queue.dequeue()
        if task is None:
            return False
        self.execute(task)
        return True

    def execute(self, task: 'Task') -> None:
        logger.info('Executing %s', task)
        started = time.monotonic()
        self.state.started(task)
        try:
            self.queue.execute(task, guard=self.guard)
        except WorkerInterrupted:
            self.queue.interrupt(task)
            logger.warning('%s interrupted; returned to the queue', task)
            raise
        except Exception:
            # execute() records task failures itself; this is storage or state-machine trouble.
            logger.exception('%s could not be executed; it stays claimed for recovery', task)
        finally:
            self.state.finished()
        self.done += 1
        logger.info('%s executed in %0.3fs', task, time.monotonic() - started)


def run_process_worker(queue: 'Queue', stop_event: Any, name: str, max_tasks: Optional[int],
                       shared_state: Any, idle_wait: float, parent_pid: int) -> None:
    """Entry point of a forked worker process; it stops (after its current task) if its
    consumer process disappears, rather than claiming tasks as an orphan."""
    # The consumer coordinates shutdown: a terminal's Ctrl-C reaches the whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def on_term(signum: int, frame: Any) -> None:
        raise WorkerInterrupted()

    signal.signal(signal.SIGTERM, on_term)
    start_heartbeat(queue)
    worker = Worker(queue, stop_event, name=name, max_tasks=max_tasks,
                    state=RunState(shared_state), guard=alarm_timeout, idle_wait=idle_wait,
                    parent_pid=parent_pid)
    try:
        worker.run()
    except WorkerInterrupted:
        pass
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
    return count == 1


