"""The consumer: a pool of workers plus the scheduler, supervised until stopped.

Run it from the command line (``sqlq consume app.queue``) or inside an application::

    consumer = queue.create_consumer(workers=2, worker_type='thread')
    consumer.start()
    ...
    consumer.stop(graceful=True)

Workers wake on change notifications from the storage rather than polling with back-off,
so an idle consumer starts new work within milliseconds and costs next to no CPU.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, List, Optional, Tuple

from . import _spawn
from ._logging import flush_all
from .exceptions import ConfigurationError, StorageCorruptError, StorageError
from .recovery import HEARTBEAT_INTERVAL
from .scheduler import Scheduler
from .worker import (
    EXIT_STORAGE_CORRUPT,
    IDLE_WAIT,
    ProcessStopEvent,
    RunState,
    Worker,
    WorkerInterrupted,
    interrupt_thread,
    run_process_worker,
)

if TYPE_CHECKING:  # pragma: no cover
    from .api import Queue

logger = logging.getLogger('sqlq.consumer')

WORKER_TYPES = ('thread', 'process', 'greenlet', 'asyncio')
# Extra time a process worker gets past its task's timeout before it is killed outright.
TIMEOUT_GRACE = 5.0
# Seconds between two rounds of WAL checkpoint, incremental vacuum and expired-key purge.
MAINTENANCE_INTERVAL = 60.0
# The supervising loop's longest sleep: bounds how late it notices signals and exits.
LOOP_SLICE = 0.2
# While a consumer runs, its processes' commits leave folding the WAL into the database to
# the consumer's loop, every this many seconds (Storage.defer_checkpoints): a commit that
# ran SQLite's auto-checkpoint synced the file while other workers waited for the lock.
CHECKPOINT_INTERVAL = 0.2
# After a rewind of the WAL that gave up (busy writers or a long reader), the next try comes
# this much sooner: the WAL's bound is what one interval writes.
CHECKPOINT_RETRY = 0.05
# A checkpoint (which may sync the file for milliseconds) waits until after a scheduler tick
# due within this many seconds, so that an eta is not late by its length -- by at most one
# CHECKPOINT_INTERVAL, so that a stream of etas never starves it.
CHECKPOINT_CLEARANCE = 0.02


def checkpoint_time(now: float, next_checkpoint: float, next_tick: float) -> float:
    """When the loop should checkpoint, given the planned time and the next tick's: the plan,
    or just after a tick due within CHECKPOINT_CLEARANCE (unless that delays it more than a
    CHECKPOINT_INTERVAL past the plan)."""
    if next_tick - now < CHECKPOINT_CLEARANCE and \
            next_tick < next_checkpoint + CHECKPOINT_INTERVAL:
        return max(next_checkpoint, next_tick + 0.001)
    return next_checkpoint


def _restart_argv() -> List[str]:
    """The command line that started this process, to re-execute it on SIGHUP.

    ``sys.argv`` alone loses ``-m``: under ``python -m sqlq`` it is ``[.../sqlq/__main__.py,
    ...]``, which cannot run as a script (relative imports).
    """
    orig = getattr(sys, 'orig_argv', None)  # Python 3.10+
    if orig:
        return [sys.executable] + list(orig[1:])
    argv = list(sys.argv)
    main = sys.modules.get('__main__')
    spec = getattr(main, '__spec__', None)
    if spec is not None and spec.name:
        package = spec.name[:-len('.__main__')] if spec.name.endswith('.__main__') \
            else spec.name
        return [sys.executable, '-m', package] + argv[1:]
    return [sys.executable] + argv


class _WorkerHandle:
    """One worker slot: its thread/process/greenlet and what it reports."""

    def __init__(self, consumer: 'Consumer', index: int) -> None:
        self.consumer = consumer
        self.index = index
        self.name = 'worker-%d' % (index + 1)
        self.runner: Any = None
        self.state: Optional[RunState] = None
        self.worker: Any = None  # an asyncio worker (interrupted through it)

    def start(self) -> None:
        c = self.consumer
        if c.worker_type == 'process':
            shared = c._mp.Array('d', 3, lock=False)
            self.state = RunState(shared)
            args: Tuple[Any, ...] = (c._stop_event, self.name, c.max_tasks, shared,
                                     c.idle_wait, os.getpid())
            if c.start_method == 'fork':  # the child inherits the queue as it is
                target: Callable[..., None] = run_process_worker
                args = (c.queue,) + args
            else:  # a fresh interpreter: it imports the queue (see sqlq._spawn)
                target = _spawn.run_spawned_worker
                args = (c._queue_path, _spawn.logging_spec()) + args
            self.runner = c._mp.Process(target=target, name=self.name, daemon=True, args=args)
            self.runner.start()
        elif c.worker_type == 'asyncio':  # one event loop running `workers` tasks at once
            from .asyncio_worker import AsyncioWorker
            self.state = RunState()
            self.worker = AsyncioWorker(c.queue, c._stop_event, self.name, c.workers,
                                        c.max_tasks, self.state, idle_wait=c.idle_wait)
            self.runner = threading.Thread(target=self.worker.run, name=self.name, daemon=True)
            self.runner.start()
        elif c.worker_type == 'greenlet':
            import gevent  # checked at construction
            self.state = RunState()
            worker = Worker(c.queue, c._stop_event, self.name, c.max_tasks, self.state,
                            idle_wait=c.idle_wait)
            self.runner = gevent.spawn(c._run_worker, worker)
        else:
            self.state = RunState()
            worker = Worker(c.queue, c._stop_event, self.name, c.max_tasks, self.state,
                            idle_wait=c.idle_wait)
            self.runner = threading.Thread(target=c._run_worker, args=(worker,),
                                           name=self.name, daemon=True)
            self.runner.start()

    def is_alive(self) -> bool:
        if self.runner is None:
            return False
        if self.consumer.worker_type == 'greenlet':
            return not bool(self.runner.dead)
        return bool(self.runner.is_alive())

    def join(self, timeout: Optional[float]) -> None:
        if self.runner is None:
            return
        if self.consumer.worker_type == 'greenlet':
            self.runner.join(timeout)
        else:
            self.runner.join(timeout)

    def interrupt(self) -> None:
        """Stop the running task at once; it goes back to the queue."""
        if not self.is_alive():
            return
        kind = self.consumer.worker_type
        if kind == 'process':
            try:
                os.kill(self.runner.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        elif kind == 'greenlet':
            self.runner.kill(WorkerInterrupted, block=False)
        elif kind == 'asyncio':
            self.worker.interrupt()
        else:
            interrupt_thread(self.runner)

    def kill(self) -> None:
        if self.consumer.worker_type == 'process' and self.is_alive():
            self.runner.kill()  # SIGKILL; TerminateProcess on Windows
            self.runner.join(5)

    @property
    def exitcode(self) -> Any:
        return getattr(self.runner, 'exitcode', None)


class Consumer:
    """Runs a queue's tasks with ``workers`` threads, processes or greenlets, or on one event
    loop running up to ``workers`` tasks at once (``worker_type='asyncio'``: see
    :mod:`sqlq.asyncio_worker`).

    Options mirror huey_consumer's: ``periodic`` (fire periodic tasks), ``scheduler_interval``
    (longest sleep between schedule checks; new schedule entries wake it earlier),
    ``check_worker_health``/``health_check_interval`` (restart dead workers), ``flush_locks``
    and ``extra_locks`` (release locks at start), ``max_tasks`` (recycle a worker after that
    many tasks), ``shutdown_timeout`` (how long a graceful stop waits for running tasks before
    interrupting them). ``initial_delay``, ``backoff`` and ``max_delay`` are accepted for
    huey compatibility: workers are woken by notifications instead of back-off polling.
    ``start_method`` (process workers only): ``'fork'`` (Linux's default), ``'spawn'`` (the
    default elsewhere) or ``'forkserver'``; a spawned worker imports the queue from the module
    that defines it (see :mod:`sqlq._spawn`). Thread and greenlet workers use no start method
    and :meth:`start` installs no signal handler.
    """

    def __init__(self, queue: 'Queue', workers: int = 1, worker_type: str = 'thread',
                 periodic: bool = True, initial_delay: float = 0.1, backoff: float = 1.15,
                 max_delay: float = 10.0, scheduler_interval: float = 1.0, utc: bool = True,
                 check_worker_health: bool = True, health_check_interval: float = 10.0,
                 flush_locks: bool = False, extra_locks: Optional[Iterable[str]] = None,
                 max_tasks: Optional[int] = None, shutdown_timeout: Optional[float] = None,
                 idle_wait: float = IDLE_WAIT,
                 clock: Optional[Callable[[], float]] = None,
                 start_method: Optional[str] = None) -> None:
        if not isinstance(workers, int) or workers < 1:
            raise ConfigurationError('workers must be a positive int, not %r' % (workers,))
        if worker_type not in WORKER_TYPES:
            raise ConfigurationError('worker_type must be one of %s, not %r'
                                     % (', '.join(WORKER_TYPES), worker_type))
        if worker_type == 'greenlet':
            try:
                import gevent  # noqa: F401
            except ImportError:
                raise ConfigurationError(
                    "greenlet workers need gevent: pip install 'sqlq[gevent]'") from None
        if max_tasks is not None and (not isinstance(max_tasks, int) or max_tasks < 1):
            raise ConfigurationError('max_tasks must be a positive int, not %r' % (max_tasks,))
        if health_check_interval <= 0:
            raise ConfigurationError('health_check_interval must be positive')
        self.queue = queue
        self.workers = workers
        self.worker_type = worker_type
        self.periodic = periodic
        self.check_worker_health = check_worker_health
        self.health_check_interval = health_check_interval
        self.flush_locks = flush_locks
        self.extra_locks = [name for name in (extra_locks or ()) if name]
        self.max_tasks = max_tasks
        self.shutdown_timeout = shutdown_timeout
        self.idle_wait = idle_wait
        self.scheduler = Scheduler(queue, periodic=periodic, interval=scheduler_interval,
                                   clock=clock)
        self.start_method: Optional[str] = None
        if worker_type == 'process':
            self.start_method = _spawn.check_start_method(start_method)
            if self.start_method != 'fork':
                self._queue_path = _spawn.queue_path(queue)
            self._mp: Any = multiprocessing.get_context(self.start_method)
            self._stop_event: Any = ProcessStopEvent(self._mp)
        else:
            self._stop_event = threading.Event()
        self._shutdown = threading.Event()      # the supervising loop should end
        self._immediate = False
        self._restart = False
        self._handles: List[_WorkerHandle] = []
        self._loop_thread: Optional[threading.Thread] = None
        self._started = False
        self._next_maintenance = time.monotonic() + MAINTENANCE_INTERVAL
        #: What stopped the consumer on its own (a damaged database file), or None.
        self.error: Optional[BaseException] = None
        self._error_lock = threading.Lock()
        self._stopped = threading.Event()  # the workers were stopped

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the workers and, in a background thread, the scheduler and health checks.

        For embedding in an application: installs no signal handlers.
        """
        self._start_workers()
        self._loop_thread = threading.Thread(target=self._embedded_loop, name='sqlq-scheduler',
                                             daemon=True)
        self._loop_thread.start()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until the consumer has stopped -- by :meth:`stop`, or on its own when the
        database file turned out damaged (then :attr:`error` holds the StorageCorruptError);
        True if it has."""
        return self._stopped.wait(timeout)

    def _embedded_loop(self) -> None:
        self._loop()
        if self.error is not None:  # stopped on its own: nobody else stops the workers
            self._stop_workers(True, self.shutdown_timeout)

    def stop(self, graceful: bool = True, timeout: Optional[float] = None) -> None:
        """Stop taking tasks; let running ones finish (``graceful``) for up to ``timeout``
        seconds (default: the consumer's shutdown_timeout, else unbounded), then interrupt
        whatever still runs, returning it to the queue."""
        self._shutdown.set()
        self._stop_event.set()  # no worker claims a new task from now on
        if self._loop_thread is not None and self._loop_thread is not threading.current_thread():
            self._loop_thread.join(LOOP_SLICE * 10)
        self._stop_workers(graceful, self.shutdown_timeout if timeout is None else timeout)

    def run(self) -> int:
        """Run in the foreground until a signal stops it (the command line's mode).

        SIGINT and SIGTERM stop gracefully; a second one stops at once; SIGHUP restarts
        the consumer in place. Returns the process exit status.
        """
        self._install_signal_handlers()
        try:
            self._start_workers()
        except StorageCorruptError as exc:
            self._storage_corrupt(exc)
            return EXIT_STORAGE_CORRUPT
        try:
            self._loop()
        finally:
            self._stop_workers(not self._immediate, self.shutdown_timeout)
        if self.error is not None:
            logger.info('consumer stopped')
            return EXIT_STORAGE_CORRUPT
        if self._restart:
            logger.info('restarting (SIGHUP)')
            sys.stdout.flush()
            sys.stderr.flush()
            flush_all()
            os.execv(sys.executable, _restart_argv())
        logger.info('consumer stopped')
        return 0

    # -- internals -------------------------------------------------------------------------
    def _start_workers(self) -> None:
        if self._started:
            raise RuntimeError('consumer already started')
        self._started = True
        names = self.queue.registered_task_names()
        logger.info('sqlq consumer for %r: %d %s worker(s), periodic %s', self.queue,
                    self.workers, self.worker_type, 'on' if self.periodic else 'off')
        logger.info('The following tasks are available:%s',
                    ''.join('\n + %s' % n for n in names) if names else ' (none)')
        if self.worker_type != 'process':
            # An async task's timeout cancels its coroutine, whatever the worker type.
            timed = [t.name for t in self.queue.registered_tasks()
                     if t.default_options.timeout and not t.is_async]
            if timed:
                logger.warning('%s workers enforce task timeouts only cooperatively (the task '
                               'calls task.check_timeout()); use -k process to stop %s for real',
                               self.worker_type, ', '.join(timed))
        # Claims of consumers and workers that died are returned before new work starts.
        self.queue.heartbeat()
        recovered = self.queue.recover_claims()
        if recovered:
            logger.warning('returned %d task(s) of dead workers to the queue', recovered)
        if self.flush_locks or self.extra_locks:
            flushed = self.queue.flush_locks(*self.extra_locks)
            if flushed:
                logger.info('flushed locks: %s', ', '.join(sorted(flushed)))
        self.queue.storage.defer_checkpoints(True)
        slots = 1 if self.worker_type == 'asyncio' else self.workers
        self._handles = [_WorkerHandle(self, i) for i in range(slots)]
        for handle in self._handles:
            handle.start()

    def _loop(self) -> None:
        next_health = time.monotonic() + self.health_check_interval
        next_tick = 0.0
        next_upkeep = time.monotonic() + HEARTBEAT_INTERVAL
        next_checkpoint = 0.0
        while not self._shutdown.is_set():
            now = time.monotonic()
            if now >= next_upkeep:
                self._upkeep(now)
                next_upkeep = now + HEARTBEAT_INTERVAL
            if now >= next_tick:
                try:
                    next_tick = now + self.scheduler.tick()
                except StorageCorruptError as exc:
                    self._storage_corrupt(exc)
                except Exception:
                    logger.exception('scheduler tick failed; retrying in 1s')
                    next_tick = now + 1.0
            checkpoint_at = checkpoint_time(now, next_checkpoint, next_tick)
            if now >= checkpoint_at:
                # In this thread, which also forks the process workers: SQLite must not be
                # busy in another thread of this process when it forks.
                next_checkpoint = checkpoint_at = now + self._checkpoint()
            self._check_damaged_file()
            self._replace_recycled_workers()  # max-tasks recycling, health check or not
            if self.check_worker_health:
                if now >= next_health:
                    self._check_worker_health()
                    next_health = now + self.health_check_interval
            wait = min(max(min(next_tick, next_upkeep, checkpoint_at) - time.monotonic(), 0.0),
                       LOOP_SLICE)
            if wait > 0:
                try:
                    if self.queue.wait_for_change(wait, topic='schedule'):
                        next_tick = 0.0  # something was written: the schedule may have changed
                except StorageError:  # unreachable storage: the tick and upkeep report it
                    self._shutdown.wait(wait)

    def _checkpoint(self) -> float:
        """Checkpoint the WAL; returns the seconds until the next checkpoint."""
        try:
            # Only process workers leave this process's GIL free for finely polled lock waits.
            done = self.queue.storage.checkpoint(fine_waits=self.worker_type == 'process')
        except StorageCorruptError as exc:
            self._storage_corrupt(exc)
        except Exception as exc:
            logger.debug('checkpoint failed (retried shortly): %s', exc)
        else:
            if done and done.get('rewind_seconds') is not None:  # a rewind was tried
                logger.debug('checkpoint: %s', done)
                if not done.get('rewound'):
                    return CHECKPOINT_RETRY
        return CHECKPOINT_INTERVAL

    def _upkeep(self, now: float) -> None:
        """Heartbeat, give dead owners' claims back, and (now and then) database upkeep."""
        try:
            self.queue.heartbeat()
            self.queue.recover_claims()
            if now >= self._next_maintenance:
                self._next_maintenance = now + MAINTENANCE_INTERVAL
                done = self.queue.maintenance()
                logger.debug('maintenance: %s', done)
        except StorageCorruptError as exc:
            self._storage_corrupt(exc)
        except Exception:
            logger.exception('consumer upkeep failed; retrying in %ss', HEARTBEAT_INTERVAL)

    # -- a damaged database file: stop claiming, report it once ------------------------------
    def _run_worker(self, worker: Worker) -> None:
        """A thread or greenlet worker's life."""
        try:
            worker.run()
        except StorageCorruptError as exc:
            self._storage_corrupt(exc)

    def _check_damaged_file(self) -> None:
        """A process worker that exited because the file is damaged."""
        for handle in self._handles:
            if self.worker_type == 'process' and handle.exitcode == EXIT_STORAGE_CORRUPT:
                storage = self.queue.storage
                self._storage_corrupt(StorageCorruptError.of_file(
                    getattr(storage, 'filename', repr(storage)),
                    '%s stopped on it with exit status %d' % (handle.name,
                                                             EXIT_STORAGE_CORRUPT)))
                return

    def _storage_corrupt(self, exc: BaseException) -> None:
        """Stop taking tasks; log the first such error (one line: the file, what to do)."""
        with self._error_lock:
            first = self.error is None
            if first:
                self.error = exc
        if first:
            logger.error('stopping the consumer: %s', exc)
        self._begin_shutdown()

    def _replace_recycled_workers(self) -> None:
        """Restart workers that exited cleanly (max-tasks recycling) without waiting for the
        periodic health check."""
        for handle in self._handles:
            if not handle.is_alive() and not self._shutdown.is_set() and \
                    handle.exitcode in (0, None):
                handle.start()

    def _check_worker_health(self) -> None:
        for handle in self._handles:
            if self._shutdown.is_set():
                return
            if not handle.is_alive():
                logger.error('%s died (exit code %s); starting a new one', handle.name,
                             handle.exitcode)
                handle.start()
            elif self.worker_type == 'process' and handle.state is not None:
                running, timeout = handle.state.running_for, handle.state.timeout
                if running is not None and timeout and running > timeout + TIMEOUT_GRACE:
                    logger.error('%s ignored its task timeout (%ss, running %.1fs): killing it',
                                 handle.name, timeout, running)
                    handle.kill()
                    handle.start()

    def _stop_workers(self, graceful: bool, timeout: Optional[float]) -> None:
        self._stop_event.set()
        if graceful:
            deadline = None if timeout is None else time.monotonic() + timeout
            for handle in self._handles:
                while handle.is_alive():
                    if self._immediate:
                        break
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    handle.join(LOOP_SLICE if remaining is None else min(LOOP_SLICE, remaining))
        for handle in self._handles:
            if handle.is_alive():
                handle.interrupt()
        for handle in self._handles:
            handle.join(10)
            if handle.is_alive():
                logger.error('%s did not stop after interruption', handle.name)
                handle.kill()
        try:
            self.queue.storage.defer_checkpoints(False)
            if self.error is None:
                self.queue.storage.checkpoint()
        except Exception as exc:
            logger.warning('final checkpoint failed: %s', exc)
        self._stopped.set()

    def _begin_shutdown(self) -> None:
        """From a signal handler: stop the loop and let no worker claim another task.

        The stop event is set here rather than when the loop notices, so a task finishing
        between the signal and the loop's next turn does not let its worker start another.
        The main thread only touches the stop event (a lock, for process workers) after
        ``_shutdown`` is set, so setting it here, before ``_shutdown``, cannot deadlock.
        """
        if not self._shutdown.is_set():
            self._stop_event.set()
        self._shutdown.set()

    def _install_signal_handlers(self) -> None:
        def graceful(signum: int, frame: Any) -> None:
            if self._shutdown.is_set():
                logger.warning('received %s again: stopping at once', signal.Signals(signum).name)
                self._immediate = True
                return
            self._begin_shutdown()
            logger.info('received %s: stopping gracefully (again to stop at once)',
                        signal.Signals(signum).name)

        def immediate(signum: int, frame: Any) -> None:
            self._immediate = True
            self._begin_shutdown()
            logger.warning('received %s: stopping at once', signal.Signals(signum).name)

        def restart(signum: int, frame: Any) -> None:
            self._restart = True
            self._begin_shutdown()
            logger.info('received SIGHUP: restarting')

        for signum in (signal.SIGINT, signal.SIGTERM):
            handler = graceful
            if self.graceful_signal is not None and signum != self.graceful_signal:
                handler = immediate
            signal.signal(signum, handler)
        if hasattr(signal, 'SIGHUP'):  # not on Windows
            signal.signal(signal.SIGHUP, restart)

    graceful_signal: Optional[int] = None
